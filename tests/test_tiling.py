"""Tiled encode and decode (tfrnncomp.tiling) with the untrained tiny codec.

Small images and small tiles force tiling; the bounds below were measured
with the ``tiny`` fixture (seeded) and have head room.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import tiling

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH = 96, 160
ITERATIONS = 4


def _image(height=HEIGHT, width=WIDTH):
  """A deterministic image with structure at several scales, and noise."""
  rows, columns = np.mgrid[0:height, 0:width]
  image = np.stack([128 + 60 * np.sin(columns / 9.), 128 + 60 * np.cos(
      rows / 7.), (columns + rows) % 256], axis=-1)
  noise = np.random.default_rng(0).normal(0, 10, image.shape)
  return np.clip(image + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def codec(tiny_model_dir):
  return cli.load_codec(tiny_model_dir)


@pytest.fixture(scope="module")
def untiled(codec):
  """Codes and x_hat of the untiled codec."""
  codes = codec._encode_whole(_image(), ITERATIONS)
  return codes, codec._decode_whole(codes, HEIGHT, WIDTH)


def test_plan_cores_cover_every_block_once():
  height, width = 1000, 1500  # Not multiples of 16 or of the tile.
  tiles = tiling.plan(height, width, tile=256, margin=64)
  rows, columns = -(-height // 16), -(-width // 16)
  count = np.zeros([rows, columns], int)
  for part in tiles:
    r0, r1, c0, c1 = part.core
    count[r0:r1, c0:c1] += 1
    cr0, cr1, cc0, cc1 = part.context
    assert (cr0, cc0) == (max(0, r0 - 4), max(0, c0 - 4))
    assert (cr1, cc1) == (min(rows, r1 + 4), min(columns, c1 + 4))
  assert (count == 1).all()
  assert tiles == tiling.plan(height, width, tile=256, margin=64)


@pytest.mark.parametrize("tile, margin", [(15, 0), (0, 16), (32, 8),
                                          (32, -16)])
def test_plan_rejects_sizes_off_the_block_grid(tile, margin):
  with pytest.raises(ValueError):
    tiling.plan(64, 64, tile, margin)


def test_needs_tiling_counts_padded_pixels():
  assert not tiling.needs_tiling(2048, 2048)
  assert tiling.needs_tiling(2048, 2049)  # Padded to 2048 x 2064.
  assert not tiling.needs_tiling(512, 768)  # Kodak.
  assert tiling.needs_tiling(16, 16, max_untiled_pixels=0)


def test_one_tile_over_the_whole_image_is_the_untiled_result(codec, untiled):
  codes, x_hat = untiled
  for tile in (WIDTH, 1024):  # Exactly the image, and larger.
    assert np.array_equal(tiling.encode(
        codec._encode_whole, _image(), ITERATIONS, tile=tile, margin=64,
        max_untiled_pixels=0), codes)
    assert np.array_equal(tiling.decode(
        codec._decode_whole, codes, HEIGHT, WIDTH, tile=tile, margin=64,
        max_untiled_pixels=0), x_hat)


def test_images_under_the_limit_are_coded_untiled(codec, untiled):
  codes, x_hat = untiled
  assert not tiling.needs_tiling(HEIGHT, WIDTH, codec.max_untiled_pixels)
  assert np.array_equal(codec.encode(_image(), ITERATIONS), codes)
  assert np.array_equal(codec.decode(codes, HEIGHT, WIDTH), x_hat)


def _step(x_hat, positions, axis):
  """Mean |x[p] - x[p - 1]| along ``axis`` over the positions ``p``."""
  x_hat = x_hat.astype(np.int32)
  before = [p - 1 for p in positions]
  return np.abs(np.take(x_hat, positions, axis) -
                np.take(x_hat, before, axis)).mean()


def test_tiled_decode_is_close_to_untiled_and_has_no_seams(codec, untiled):
  codes, x_hat = untiled
  tile = 32
  tiled = tiling.decode(codec._decode_whole, codes, HEIGHT, WIDTH, tile=tile,
                        margin=32, max_untiled_pixels=0)
  assert len(tiling.plan(HEIGHT, WIDTH, tile, 32)) == 15
  difference = np.abs(tiled.astype(int) - x_hat.astype(int))
  # Measured: at most 3 levels, 0.011 on average (4 iterations).
  assert difference.max() <= 8
  assert difference.mean() <= 0.05
  # Seams: the step across tile boundaries is that of the untiled decoding
  # there (measured: 25.30 vs 25.31 across columns), and like elsewhere.
  for axis, size in ((2, WIDTH), (1, HEIGHT)):
    boundaries = list(range(tile, size, tile))
    inside = [p for p in range(1, size) if p % tile]
    assert _step(tiled, boundaries, axis) <= 1.05 * _step(
        x_hat, boundaries, axis) + 0.1
    assert _step(tiled, boundaries, axis) <= 1.5 * _step(tiled, inside, axis)


def test_without_context_the_tiles_differ_more(codec, untiled):
  codes, x_hat = untiled
  errors = {}
  for margin in (0, 32):
    tiled = tiling.decode(codec._decode_whole, codes, HEIGHT, WIDTH, tile=32,
                          margin=margin, max_untiled_pixels=0)
    errors[margin] = np.abs(tiled.astype(int) - x_hat.astype(int)).mean()
  assert errors[0] > 10 * errors[32]


def test_tiled_encode_keeps_the_shape_and_most_codes(codec, untiled):
  codes, _ = untiled
  tiled = tiling.encode(codec._encode_whole, _image(), ITERATIONS, tile=32,
                        margin=32, max_untiled_pixels=0)
  assert tiled.shape == codes.shape and tiled.dtype == np.int8
  assert set(np.unique(tiled)) <= {-1, 1}
  # Measured: 3.6% of the bits differ (the encoder's loop runs per tile).
  assert (tiled != codes).mean() < 0.1


def test_large_images_go_through_the_tiles_in_a_stream(tiny_model_dir):
  codec = cli.load_codec(tiny_model_dir)
  codec.max_untiled_pixels, codec.tile, codec.margin = 64 * 64, 32, 32
  image = _image()
  data = cli.compress(codec, image, ITERATIONS)
  decompressed = cli.decompress(codec, data)
  header, _ = bitstream.read(data)
  assert (header.height, header.width) == (HEIGHT, WIDTH)
  assert np.array_equal(decompressed.codes, tiling.encode(
      codec._encode_whole, image, ITERATIONS, 32, 32, 0))
  assert np.array_equal(decompressed.x_hat, tiling.decode(
      codec._decode_whole, decompressed.codes, HEIGHT, WIDTH, 32, 32, 0))


_MEMORY_SCRIPT = """
import json, os, sys
import numpy as np
from tfrnncomp import cli

def status(key):
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(key + ":"):
        return int(line.split()[1]) * 1024

codec = cli.load_codec(sys.argv[1])
codec.tile, codec.margin = 256, 64
codec.max_untiled_pixels = int(sys.argv[2])
small = np.zeros([64, 64, 3], np.uint8)
codec.decode(codec.encode(small, 2), 64, 64)  # Loads and warms up.
before = status("VmRSS")
size = 1024
image = np.random.default_rng(0).integers(0, 256, [size, size, 3], np.uint8)
x_hat = codec.decode(codec.encode(image, 2), size, size)
assert x_hat.shape == (2, size, size, 3)
print(json.dumps({"peak_increase": status("VmHWM") - before}))
"""


def _peak_increase(model_dir, max_untiled_pixels):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
             TF_ENABLE_ONEDNN_OPTS="1")
  result = subprocess.run(
      [sys.executable, "-c", _MEMORY_SCRIPT, model_dir,
       str(max_untiled_pixels)], capture_output=True, text=True, env=env,
      timeout=120, check=True)
  return json.loads(result.stdout.strip().splitlines()[-1])["peak_increase"]


def test_tiling_bounds_peak_memory(tiny_model_dir):
  # A 1024 x 1024 image at 2 iterations with the tiny codec. Measured:
  # +206 MB untiled, +54 MB in 256-pixel tiles with 64-pixel margins (the
  # image, codes and x_hat of the whole image included).
  bound = 120 * 2 ** 20
  assert _peak_increase(tiny_model_dir, 0) < bound
  assert _peak_increase(tiny_model_dir, 2 ** 40) > bound
