"""Tiled encode and decode: bounded memory for large images.

The recurrent codec (Toderici et al. 2017, :mod:`tfrnncomp.models.toderici2017`)
keeps every layer's activations and recurrent states of the whole image: about
1.2 KB of memory per pixel with the shipped model, so a 4000 x 3000 image
would need about 14 GB. Above :data:`MAX_UNTILED_PIXELS` (padded) pixels,
:class:`tfrnncomp.cli.SavedCodec` therefore encodes and decodes in tiles:

- the image is cut, on the 16 x 16 block grid of the codes, into *cores* of
  ``tile`` x ``tile`` pixels (:data:`TILE`; the last row and column of tiles
  take what is left), and each core is run with a *context* margin of
  ``margin`` pixels (:data:`MARGIN`) on every side that the image has;
- encoding: each core plus its context is encoded on its own (all
  ``iterations``), and only the codes of the core's blocks are kept, so the
  stream holds the codes of every block exactly once (the same shape, rate
  and format as an untiled encoding);
- decoding: each core plus its context is decoded from the *stream's* codes
  of those blocks (the margin's codes were written by the neighbouring
  tiles), and only the core's pixels x_hat are kept.

Memory is then that of one tile plus its context (and the codes and x_hat of
the whole image), whatever the image size, and the cost grows by the
context's share, ((tile + 2 margin) / tile)^2 at most (1.27 with the
defaults).

Why a context margin. The networks' convolutions see beyond a block: one
iteration of the decoder reaches about 30 pixels (2x2 and 3x3 kernels at
1/16 to 1/2 resolution), and the 3x3 hidden convolutions of D-RNN#3 and #4
spread a little further each iteration. Without context, a core's edge would
be decoded against the convolutions' zero padding instead of its neighbours,
and a seam would show. With it, the core's pixels differ from an untiled
decoding only through what lies beyond the margin and through the margin's
codes, which the encoder of that tile computed itself while the decoder
takes the neighbour's (the encoder's recurrent loop assumed its own
reconstruction; the decoder's differs slightly near the core's edge, see
``tests/test_tiling.py`` for the measured bounds). Measured with the shipped
model on kodim01, 8 iterations, 256-pixel tiles: tiled encode and decode
give the PSNR of untiled ones within 0.003 dB, and the tiled decoding of
untiled codes differs from the untiled decoding by one level on fewer than
one pixel in a million (with a 32-pixel margin: 0.0014 levels on average).
A 4000 x 3000 image at 0.25 bpp peaks at 3.8 GB (12 tiles).

Encoder and decoder agree on the tiles because :func:`plan` depends only on
the image size (and the constants here); nothing about tiling is written in
the stream. Images of at most :data:`MAX_UNTILED_PIXELS` padded pixels (every
Kodak image, and up to 2048 x 2048) are coded in one piece, exactly as
without this module.
"""

import dataclasses
from typing import Callable, List, Tuple

import numpy as np

from tfrnncomp.codes_io import BLOCK

__all__ = ["BLOCK", "TILE", "MARGIN", "MAX_UNTILED_PIXELS", "Tile", "plan",
           "needs_tiling", "encode", "decode"]

TILE = 1024
"""Default core size of a tile, in pixels (a multiple of :data:`BLOCK`)."""

MARGIN = 64
"""Default context margin around a core, in pixels (a multiple of
:data:`BLOCK`)."""

MAX_UNTILED_PIXELS = 2 ** 22
"""Largest image (padded to multiples of 16, in pixels: 2048 x 2048) that is
coded in one piece; larger ones are tiled. About 5 GB with the shipped
model."""


@dataclasses.dataclass(frozen=True)
class Tile:
  """One tile, in code positions (blocks): [row0, row1) x [column0, column1).

  ``core`` is the part whose codes (encoder) or pixels (decoder) are kept;
  ``context`` contains it, with up to the margin on each side.
  """

  core: Tuple[int, int, int, int]  # row0, row1, column0, column1.
  context: Tuple[int, int, int, int]

  def pixels(self, box, height, width):
    """A box of blocks as pixel slices of a height x width image."""
    row0, row1, column0, column1 = box
    return (slice(row0 * BLOCK, min(height, row1 * BLOCK)),
            slice(column0 * BLOCK, min(width, column1 * BLOCK)))

  def core_in_context(self):
    """The core's blocks as slices of the context's codes."""
    return (slice(self.core[0] - self.context[0],
                  self.core[1] - self.context[0]),
            slice(self.core[2] - self.context[2],
                  self.core[3] - self.context[2]))


def _blocks(pixels, name):
  if pixels <= 0 or pixels % BLOCK:
    raise ValueError(f"{name} must be a positive multiple of {BLOCK} "
                     f"pixels, got {pixels}")
  return pixels // BLOCK


def _check_margin(margin):
  if margin < 0 or margin % BLOCK:
    raise ValueError(f"the margin must be a multiple of {BLOCK} pixels >= 0, "
                     f"got {margin}")
  return margin // BLOCK


def plan(height, width, tile=TILE, margin=MARGIN) -> List[Tile]:
  """The tiles of a height x width image, in raster order.

  Cores of ``tile`` x ``tile`` pixels from the top left (the last ones
  smaller), each with a context of ``margin`` pixels where the image
  extends. Depends on the sizes only, so encoder and decoder agree.
  """
  step = _blocks(tile, "the tile size")
  extra = _check_margin(margin)
  rows, columns = -(-height // BLOCK), -(-width // BLOCK)
  tiles = []
  for row0 in range(0, rows, step):
    row1 = min(rows, row0 + step)
    for column0 in range(0, columns, step):
      column1 = min(columns, column0 + step)
      tiles.append(Tile(
          core=(row0, row1, column0, column1),
          context=(max(0, row0 - extra), min(rows, row1 + extra),
                   max(0, column0 - extra), min(columns, column1 + extra))))
  return tiles


def needs_tiling(height, width, max_untiled_pixels=MAX_UNTILED_PIXELS):
  """True if a height x width image is over the untiled limit (padded)."""
  padded = -(-height // BLOCK) * -(-width // BLOCK) * BLOCK ** 2
  return padded > max_untiled_pixels


EncodeFn = Callable[[np.ndarray, int], np.ndarray]
DecodeFn = Callable[[np.ndarray, int, int], np.ndarray]


def encode(encode_fn: EncodeFn, image, iterations, tile=TILE, margin=MARGIN,
           max_untiled_pixels=MAX_UNTILED_PIXELS):
  """Codes [iterations, ceil(H/16), ceil(W/16), bits] of image x, in tiles.

  Args:
    encode_fn: ``(uint8 [h, w, 3], iterations) -> int8 codes [T, ceil(h/16),
      ceil(w/16), bits]``, e.g. an untiled codec's encode.
    image: uint8 [H, W, 3].
    iterations: the number of iterations.
    tile, margin: the core size and context margin, in pixels (multiples of
      16).
    max_untiled_pixels: images of at most this many padded pixels are
      encoded in one call to ``encode_fn`` (0: every image is tiled).

  Returns:
    The codes: each block's are those of the tile whose core holds it.
  """
  image = np.asarray(image)
  height, width = image.shape[:2]
  if not needs_tiling(height, width, max_untiled_pixels):
    return encode_fn(image, iterations)
  codes = None
  for part in plan(height, width, tile, margin):
    rows, columns = part.pixels(part.context, height, width)
    tile_codes = np.asarray(encode_fn(image[rows, columns], iterations))
    if codes is None:
      codes = np.zeros([tile_codes.shape[0], -(-height // BLOCK),
                        -(-width // BLOCK), tile_codes.shape[-1]],
                       tile_codes.dtype)
    core_rows, core_columns = part.core_in_context()
    codes[:, part.core[0]:part.core[1], part.core[2]:part.core[3]] = (
        tile_codes[:, core_rows, core_columns])
  return codes


def decode(decode_fn: DecodeFn, codes, height, width, tile=TILE,
           margin=MARGIN, max_untiled_pixels=MAX_UNTILED_PIXELS):
  """x_hat uint8 [T, height, width, 3] after each iteration, in tiles.

  Args:
    decode_fn: ``(int8 codes [T, h, w, bits], height, width) -> uint8
      [T, height, width, 3]``, e.g. an untiled codec's decode.
    codes: int8 [T, ceil(height/16), ceil(width/16), bits], the stream's.
    height, width: the image size.
    tile, margin, max_untiled_pixels: as for :func:`encode` (the same values
      give the same tiles).

  Returns:
    The reconstructions: each pixel is that of the tile whose core holds it,
    decoded with the codes of its context (the core's and its neighbours').
  """
  codes = np.asarray(codes)
  if not needs_tiling(height, width, max_untiled_pixels):
    return decode_fn(codes, height, width)
  x_hat = np.zeros([codes.shape[0], height, width, 3], np.uint8)
  for part in plan(height, width, tile, margin):
    row0, row1, column0, column1 = part.context
    rows, columns = part.pixels(part.context, height, width)
    tile_x_hat = np.asarray(decode_fn(
        codes[:, row0:row1, column0:column1], rows.stop - rows.start,
        columns.stop - columns.start))
    core_rows, core_columns = part.pixels(part.core, height, width)
    x_hat[:, core_rows, core_columns] = tile_x_hat[
        :, core_rows.start - rows.start:core_rows.stop - rows.start,
        core_columns.start - columns.start:core_columns.stop - columns.start]
  return x_hat
