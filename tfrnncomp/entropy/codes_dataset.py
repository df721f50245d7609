"""Codes for training the entropy model, made by a codec from training images.

Random ``crop`` x ``crop`` crops of the training images (never Kodak: files
named ``kodim*`` are refused), one per image in a fixed, seeded order, are
encoded by the codec SavedModel to T iterations of codes
[T, crop/16, crop/16, K]. Encoding is the costly part, so the codes are
cached in ``TRAIN_DIR/codes.npz`` with the codec's weights hash and extended,
not recomputed, when more images are asked for; a cache made by another codec
(or crop size, or T) is discarded. TensorFlow is not imported here (the codec
runs in its SavedModel), so the checks answer at once.
"""

import io
import json
import os
import time

import numpy as np

from tfrnncomp import data as data_lib
from tfrnncomp import errors

__all__ = ["CODES_FILE", "training_images", "generate_codes", "split"]

CODES_FILE = "codes.npz"


def _crop(image, size, rng):
  height, width = image.shape[:2]
  top = rng.integers(0, height - size + 1)
  left = rng.integers(0, width - size + 1)
  return image[top:top + size, left:left + size]


def _meta(codec, crop, iterations, search_steps):
  meta = {"codec_sha256": codec.weights_sha256, "crop": crop,
          "iterations": iterations}
  if search_steps:  # Absent for the encoder's codes, as in older caches.
    meta["search_steps"] = search_steps
  return meta


def _load_cache(path, codec, crop, iterations, search_steps):
  if not os.path.exists(path):
    return [], []
  with np.load(path, allow_pickle=False) as cache:
    meta = json.loads(str(cache["meta"]))
    if meta != _meta(codec, crop, iterations, search_steps):
      return [], []
    return list(cache["codes"]), list(cache["sources"])


def training_images(data_dir):
  """The image files below ``data_dir``; Kodak's are refused.

  Raises:
    InputError: if there are none, or any is named ``kodim*``.
  """
  paths = data_lib.list_images(data_dir)
  kodak = [p for p in paths if os.path.basename(p).lower().startswith("kodim")]
  if kodak:
    raise errors.InputError(f"{data_dir} holds Kodak images ({kodak[0]}); the "
                            f"entropy model must not be trained on them")
  if not paths:
    raise errors.InputError(f"no images in {data_dir}")
  return paths


def generate_codes(codec, data_dir, train_dir, images, crop=256, iterations=16,
                   seed=0, log=print, search_steps=0):
  """Codes [N, T, crop/16, crop/16, K] int8 of N = ``images`` crops (cached).

  Args:
    codec: a :class:`tfrnncomp.cli.SavedCodec`.
    data_dir: folder of training images (searched recursively).
    train_dir: where ``codes.npz`` is cached.
    images: how many crops (one per image, images in a seeded random order;
      images smaller than ``crop`` are skipped).
    crop: crop size in pixels, a multiple of 16.
    iterations: T.
    seed: the order of images and crop positions.
    log: a print-like function for progress.
    search_steps: encode with the code search (:mod:`tfrnncomp.code_search`),
      for an entropy model of the codes the searching encoder writes.
  """
  if crop % 16:
    raise errors.InputError(f"crop must be a multiple of 16, got {crop}")
  paths = training_images(data_dir)
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(paths))
  cache_path = os.path.join(train_dir, CODES_FILE)
  codes, sources = _load_cache(cache_path, codec, crop, iterations,
                               search_steps)
  done = set(sources)
  from tfrnncomp import image_io  # pylint: disable=g-import-not-at-top
  start, last_save = time.time(), time.time()
  for index in order:
    if len(codes) >= images:
      break
    path = paths[index]
    relative = os.path.relpath(path, data_dir)
    crop_rng = np.random.default_rng([seed, int(index)])
    if relative in done:
      continue
    image = image_io.read_image(path)
    if min(image.shape[:2]) < crop:
      continue
    codes.append(codec.encode(_crop(image, crop, crop_rng), iterations,
                              search_steps=search_steps))
    sources.append(relative)
    done.add(relative)
    if time.time() - last_save > 60 or len(codes) == images:
      _save_cache(cache_path, codes, sources,
                  _meta(codec, crop, iterations, search_steps))
      last_save = time.time()
      log(f"codes: {len(codes)}/{images} crops ({time.time() - start:.0f} s)")
  if len(codes) < images:
    log(f"codes: only {len(codes)} images of at least {crop} pixels")
  _save_cache(cache_path, codes, sources,
              _meta(codec, crop, iterations, search_steps))
  return np.stack(codes[:images])


def _save_cache(path, codes, sources, meta):
  from tfrnncomp.export import write_atomic  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  np.savez_compressed(
      buffer, codes=np.stack(codes), sources=np.array(sources),
      meta=np.array(json.dumps(meta)))
  write_atomic(path, buffer.getvalue())


def split(codes, validation_fraction):
  """(training, validation) crops; validation = the last fraction (>= 1)."""
  held_out = max(1, int(round(len(codes) * validation_fraction)))
  if held_out >= len(codes):
    raise errors.InputError(f"{len(codes)} crops are too few to hold out "
                            f"{held_out} for validation")
  return codes[:-held_out], codes[-held_out:]
