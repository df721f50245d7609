"""Any folder of images as a dataset of ``{"image", "filename"}`` examples.

The generic counterpart of the :mod:`~tfrnncomp.datasets.kodak` builder, for
test sets that have no TFDS builder (CLIC, Tecnick, your own photos): the
files below a folder with an image extension
(:data:`tfrnncomp.data.IMAGE_EXTENSIONS`), in sorted path order, decoded to
8-bit RGB by :func:`tfrnncomp.image_io.read_image`'s rules (EXIF orientation
applied, grayscale replicated, alpha composited over white). The
``filename`` is the path relative to the folder.
"""

import os

from tfrnncomp import data
from tfrnncomp import errors
from tfrnncomp import image_io

__all__ = ["list_folder", "iterate_folder", "load_folder"]


def list_folder(folder):
  """Sorted paths of the images below ``folder``.

  Raises:
    InputError: if ``folder`` is not a folder or holds no image.
  """
  if not os.path.isdir(folder):
    raise errors.InputError(f"{folder} is not a folder")
  paths = data.list_images(folder)
  if not paths:
    raise errors.InputError(f"no images ({', '.join(data.IMAGE_EXTENSIONS)}) "
                            f"in {folder}")
  return paths


def iterate_folder(folder):
  """Yields ``(filename, uint8 [H, W, 3] image)`` for each image, as NumPy."""
  for path in list_folder(folder):
    yield os.path.relpath(path, folder), image_io.read_image(path)


def load_folder(folder):
  """A ``tf.data.Dataset`` of ``{"image": uint8 [H, W, 3], "filename"}``.

  The examples have the same structure as ``tfds.load("kodak")``'s.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  list_folder(folder)  # Fails here, not at iteration, on a bad folder.

  def generate():
    for filename, image in iterate_folder(folder):
      yield {"image": image, "filename": filename}

  return tf.data.Dataset.from_generator(generate, output_signature={
      "image": tf.TensorSpec([None, None, 3], tf.uint8),
      "filename": tf.TensorSpec([], tf.string)})
