"""Test inputs shared by the test suite: small real photos and made images.

Like ``numpy.testing`` or ``tf.test``, this module serves tests only; nothing
in the library imports it. It needs the training photos of ``../shared``
(beside the project root) and falls back to smooth synthetic images where
they are missing, so the tests also run on a bare checkout.
"""

import glob
import os
import textwrap

import numpy as np

__all__ = ["SHARED_DATA", "photo_crops", "halves_image", "gradient_image",
           "random_entropy_model", "plain_tensorflow_check"]

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "..", "shared", "data")
"""The shared data folder beside the project root (train/ and kodak/)."""


def photo_crops(count, size, offset=0, at=0):
  """``count`` uint8 crops [size, size, 3] of the training photos.

  Photo ``offset`` onwards (sorted by path), cropped at (``at``, ``at``);
  smooth synthetic images (seeded by ``offset``) make up for missing photos.
  """
  paths = sorted(glob.glob(os.path.join(SHARED_DATA, "train", "*", "*.png")))
  from PIL import Image  # pylint: disable=g-import-not-at-top
  crops = []
  for path in paths[offset:offset + count]:
    with Image.open(path) as image:
      crops.append(np.asarray(image.convert("RGB"))[at:at + size,
                                                     at:at + size])
  rng = np.random.default_rng(offset)
  while len(crops) < count:
    yy, xx = np.mgrid[:size, :size] / size
    base = np.stack([np.sin(6 * yy + rng.random() * 6), np.cos(4 * xx),
                     np.sin(3 * (xx + yy))], -1)
    crops.append(((base + 1) * 127.5).astype(np.uint8))
  return crops


def halves_image(height=48, width=64, seed=0):
  """A uint8 image whose left half is a smooth ramp and right half noise.

  Its 16x16 blocks differ in how hard they are to code.
  """
  rng = np.random.default_rng(seed)
  image = rng.integers(0, 256, [height, width, 3])
  image[:, :width // 2] = 128 + (np.arange(width // 2) * 2)[None, :, None]
  return image.astype(np.uint8)


def gradient_image(height, width, seed=0, noise=8., period=64):
  """A uint8 image: smooth ramps in red and green, stripes in blue, noise.

  Red rises down the rows and green across the columns (from 0 to 255),
  blue repeats every ``period`` diagonals, and Gaussian noise of standard
  deviation ``noise`` (seeded) lies on top.
  """
  rng = np.random.default_rng(seed)
  rows, cols = np.mgrid[:height, :width]
  x = np.stack([rows * 255. / max(height - 1, 1),
                cols * 255. / max(width - 1, 1),
                (rows + cols) % period * (256. / period)], axis=-1)
  x += rng.normal(0., noise, x.shape)
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def random_entropy_model(config, seed, stddev=0.3):
  """A BinaryPixelRNN of ``config`` with every weight drawn from N(0, stddev²).

  Also where initializers put zeros (biases), so that every path of the
  network matters.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp.entropy import pixelrnn  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(seed)
  model = pixelrnn.BinaryPixelRNN(config).build_variables()
  for v in model.variables:
    v.assign(tf.random.normal(v.shape, stddev=stddev))
  return model


def plain_tensorflow_check(directory):
  """Python source that asserts a SavedModel needs only stock TensorFlow.

  Meant for a script run in a fresh process that has loaded ``directory``
  with ``tf.saved_model.load`` without importing tfrnncomp or
  tensorflow_compression: every op of the graph and of its functions must
  be registered, and neither package may have been imported.
  """
  return textwrap.dedent(f"""
      import sys as _sys
      from tensorflow.core.protobuf import saved_model_pb2
      from tensorflow.python.framework import op_def_registry
      _proto = saved_model_pb2.SavedModel()
      with open({directory!r} + "/saved_model.pb", "rb") as _f:
        _proto.ParseFromString(_f.read())
      _graph = _proto.meta_graphs[0].graph_def
      _ops = {{node.op for node in _graph.node}}
      for _function in _graph.library.function:
        _ops |= {{node.op for node in _function.node_def}}
      _ops -= {{f.signature.name for f in _graph.library.function}}
      _unknown = sorted(op for op in _ops if op_def_registry.get(op) is None)
      assert not _unknown, _unknown
      assert not [m for m in _sys.modules
                  if m.startswith(("tfrnncomp", "tensorflow_compression"))]
      """)
