"""Training data: random patches from a folder of images.

Toderici et al. 2017 (Sec. 4) train on 32x32 patches; for their "high entropy"
set they keep, of many random patches, those that PNG compresses worst.
:class:`PatchSampler` does the same online: with ``candidates = k`` it draws
k x batch random patches and keeps the batch whose DEFLATE-compressed bytes
(PNG's coder, without its row filters) are largest.
"""

import os
import zlib

import numpy as np
from PIL import Image

__all__ = ["IMAGE_EXTENSIONS", "list_images", "load_images", "PatchSampler",
           "patch_dataset"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff",
                    ".webp")


def list_images(folder):
  """Sorted paths of the image files below ``folder`` (recursively)."""
  paths = []
  for root, _, files in os.walk(folder):
    paths.extend(os.path.join(root, f) for f in files
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  return sorted(paths)


def load_images(folder, min_size=32):
  """All images below ``folder`` as RGB uint8 arrays, skipping small ones."""
  paths = list_images(folder)
  if not paths:
    raise ValueError(f"no images found in {folder!r}")
  images = []
  for path in paths:
    with Image.open(path) as image:
      array = np.asarray(image.convert("RGB"))
    if min(array.shape[:2]) >= min_size:
      images.append(array)
  if not images:
    raise ValueError(f"no image in {folder!r} is at least {min_size} pixels")
  return images


class PatchSampler:
  """Draws batches of random (optionally high-entropy) patches, flipped at random."""

  def __init__(self, images, patch_size=32, candidates=1, seed=0):
    if candidates < 1:
      raise ValueError("candidates must be >= 1")
    self.images = images
    self.patch_size = patch_size
    self.candidates = candidates
    self.rng = np.random.default_rng(seed)
    sizes = np.array([img.shape[0] * img.shape[1] for img in images], float)
    self.weights = sizes / sizes.sum()  # Uniform over pixels, not images.

  def _patch(self):
    p = self.patch_size
    image = self.images[self.rng.choice(len(self.images), p=self.weights)]
    y = self.rng.integers(0, image.shape[0] - p + 1)
    x = self.rng.integers(0, image.shape[1] - p + 1)
    patch = image[y:y + p, x:x + p]
    if self.rng.random() < 0.5:
      patch = patch[:, ::-1]
    return patch

  def sample(self, batch_size):
    patches = [self._patch() for _ in range(batch_size * self.candidates)]
    if self.candidates > 1:
      cost = [len(zlib.compress(np.ascontiguousarray(p).tobytes(), 6))
              for p in patches]
      keep = np.argsort(cost)[::-1][:batch_size]
      patches = [patches[i] for i in sorted(keep)]
    return np.stack(patches)


def patch_dataset(images, batch_size, patch_size=32, candidates=1, seed=0):
  """An endless ``tf.data.Dataset`` of uint8 patch batches [B, p, p, 3]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  sampler = PatchSampler(images, patch_size, candidates, seed)

  def generate():
    while True:
      yield sampler.sample(batch_size)

  spec = tf.TensorSpec([batch_size, patch_size, patch_size, 3], tf.uint8)
  dataset = tf.data.Dataset.from_generator(generate, output_signature=spec)
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.OFF)
  return dataset.with_options(options).prefetch(2)
