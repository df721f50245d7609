"""Lossless coding of the Akbari 2020 code map, and the whole-image API.

Akbari et al. 2020 code the quantized code map with FLIF, which is not
available here. :func:`encode_code_map` replaces it with range coding
(``tfc`` range coder ops, 16-bit probabilities) under a *backward-adaptive,
context-conditioned* model: nothing but the code map's shape and B is needed
to decode, and the decoder rebuilds every probability from what it has
already decoded, with integer arithmetic only (bit-exact on any machine).

Model. With L = 2^B levels, symbol q[y, x, c] is coded with the histogram of
context (c, k), where k depends on the symbol above it:

    k = 0                                  on the first row
    k = 1 + floor(q[y - 1, x, c] * K / L)  otherwise, K = min(L, 8) buckets

Every histogram starts at 1 for each level, and each coded symbol adds
:data:`INCREMENT` to its bin (a Krichevsky-Trofimov-like estimator with a
1/32 pseudo-count). Since tfc's coder takes fixed tables, the rows are cut
into segments of doubling height (rows [0,1), [1,2), [2,4), [4,8), ...);
each segment is a separate range-coded stream, coded with the histograms as
they were at its start, and the histograms are updated after it. A
segment's bytes are preceded by their length (LEB128 varint).

Within a segment the decoder decodes row by row (the contexts of a row need
the row above), passing the same tfc decoder handle along.

:func:`compress` / :func:`decompress` run the whole system on one image:
the network's ``encode`` / ``decode`` signatures (a SavedModel loaded with
``tf.saved_model.load``, or :class:`tfrnncomp.export.VariableRateModule`),
the side information (per-channel min/max as float16), this code-map coder
and the optional HEVC enhancement layer (:mod:`tfrnncomp.enhancement`). They
return and take the parts as bytes; the container format that stores them
(and the image size, C and B) belongs to :mod:`tfrnncomp.bitstream`.
"""

import dataclasses
from typing import Optional

import numpy as np

__all__ = ["PRECISION", "INCREMENT", "encode_code_map", "decode_code_map",
           "pack_side_info", "unpack_side_info", "Compressed", "compress",
           "decompress", "code_map_entropy_bits"]

PRECISION = 16
"""Probability precision of the range coder (bits; tfc allows 1..16)."""

INCREMENT = 32
"""Count added to a histogram bin per coded symbol (each bin starts at 1)."""

_MAX_BUCKETS = 8


def _buckets(bits):
  return min(1 << bits, _MAX_BUCKETS)


def _contexts(above, bits, channels):
  """Histogram index (c, k) of each symbol of a row, from the row above."""
  channel = np.arange(channels)[None, :]
  contexts = _buckets(bits) + 1
  if above is None:
    k = np.zeros_like(channel)
  else:
    k = 1 + ((above.astype(np.int64) * _buckets(bits)) >> bits)
  return (channel * contexts + k).astype(np.int32)


def _segments(rows):
  """Row ranges of doubling height: [0, 1), [1, 2), [2, 4), [4, 8), ..."""
  start, size, out = 0, 1, []
  while start < rows:
    out.append((start, min(rows, start + size)))
    start += size
    size = max(size, start)
  return out


def _lookup(counts):
  """tfc CDF lookup table [n, L + 2] (precision, 0, cdf...) of histograms.

  Each level gets at least one of the 2^PRECISION slots; the rest are shared
  in proportion to the counts, rounding down, and what rounding leaves goes
  to the first most probable level. Integer arithmetic only.
  """
  counts = counts.astype(np.int64)
  n, levels = counts.shape
  total = 1 << PRECISION
  spare = total - levels
  freq = 1 + counts * spare // counts.sum(axis=1, keepdims=True)
  freq[np.arange(n), counts.argmax(axis=1)] += total - freq.sum(axis=1)
  cdf = np.concatenate([np.zeros([n, 1], np.int64), np.cumsum(freq, 1)], 1)
  return np.concatenate([np.full([n, 1], PRECISION), cdf], 1).astype(np.int32)


def _varint(n):
  out = bytearray()
  while True:
    byte = n & 0x7f
    n >>= 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _read_varint(data, pos):
  n, shift = 0, 0
  while True:
    if pos >= len(data):
      raise ValueError("code map data ends inside a segment length")
    byte = data[pos]
    pos += 1
    n |= (byte & 0x7f) << shift
    shift += 7
    if not byte & 0x80:
      return n, pos
    if shift > 35:
      raise ValueError("corrupt segment length in code map data")


def _check_bits(bits):
  if not 1 <= int(bits) <= 8:
    raise ValueError(f"bits must be in [1, 8], got {bits}")
  return int(bits)


def encode_code_map(code_map, bits):
  """Losslessly codes an integer code map [h, w, C] with levels < 2^bits."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_compression as tfc  # pylint: disable=g-import-not-at-top
  bits = _check_bits(bits)
  q = np.asarray(code_map)
  if q.ndim != 3 or 0 in q.shape:
    raise ValueError(f"code map must be [h, w, C], got shape {q.shape}")
  q = q.astype(np.int64)
  if q.min() < 0 or q.max() >= 1 << bits:
    raise ValueError(f"code map levels must be in [0, {(1 << bits) - 1}]")
  rows, _, channels = q.shape
  counts = np.ones([channels * (_buckets(bits) + 1), 1 << bits], np.int64)
  out = bytearray()
  for start, stop in _segments(rows):
    index = np.stack([
        np.broadcast_to(_contexts(q[y - 1] if y else None, bits, channels),
                        q[y].shape) for y in range(start, stop)])
    handle = tfc.create_range_encoder([], tf.constant(_lookup(counts)))
    handle = tfc.entropy_encode_index(handle, tf.constant(index.ravel()),
                                      tf.constant(q[start:stop].ravel(),
                                                  tf.int32))
    data = tfc.entropy_encode_finalize(handle).numpy()
    out += _varint(len(data)) + data
    np.add.at(counts, (index.ravel(), q[start:stop].ravel()), INCREMENT)
  return bytes(out)


def decode_code_map(data, height, width, channels, bits):
  """Inverse of :func:`encode_code_map`: int32 code map [height, width, C]."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_compression as tfc  # pylint: disable=g-import-not-at-top
  bits = _check_bits(bits)
  if min(height, width, channels) < 1:
    raise ValueError("code map dimensions must be positive")
  data = bytes(data)
  q = np.zeros([height, width, channels], np.int64)
  counts = np.ones([channels * (_buckets(bits) + 1), 1 << bits], np.int64)
  pos = 0
  for start, stop in _segments(height):
    size, pos = _read_varint(data, pos)
    if pos + size > len(data):
      raise ValueError("code map data is truncated")
    segment = data[pos:pos + size]
    pos += size
    handle = tfc.create_range_decoder(tf.constant(segment),
                                      tf.constant(_lookup(counts)))
    indices = []
    for y in range(start, stop):
      index = np.broadcast_to(_contexts(q[y - 1] if y else None, bits,
                                        channels), (width, channels))
      handle, row = tfc.entropy_decode_index(
          handle, tf.constant(index.ravel()), tf.constant([width * channels]),
          tf.int32)
      q[y] = row.numpy().reshape(width, channels)
      indices.append(index)
    if not bool(tfc.entropy_decode_finalize(handle).numpy()):
      raise ValueError("code map data is corrupt (range decoder check failed)")
    np.add.at(counts, (np.stack(indices).ravel(), q[start:stop].ravel()),
              INCREMENT)
  if pos != len(data):
    raise ValueError(f"{len(data) - pos} bytes left after the code map")
  return q.astype(np.int32)


def code_map_entropy_bits(code_map, bits):
  """Ideal code length (bits) of the code map under the adaptive model.

  The same model as :func:`encode_code_map`, with exact (not 16-bit)
  probabilities; the coded size exceeds it by the range coder's overhead.
  """
  q = np.asarray(code_map).astype(np.int64)
  rows, _, channels = q.shape
  counts = np.ones([channels * (_buckets(bits) + 1), 1 << bits], np.int64)
  total = 0.
  for start, stop in _segments(rows):
    index = np.stack([
        np.broadcast_to(_contexts(q[y - 1] if y else None, bits, channels),
                        q[y].shape) for y in range(start, stop)]).ravel()
    values = q[start:stop].ravel()
    p = counts[index, values] / counts[index].sum(axis=1)
    total -= float(np.log2(p).sum())
    np.add.at(counts, (index, values), INCREMENT)
  return total


def pack_side_info(minimum, maximum):
  """Per-channel min and max (float16-representable) -> 4 C bytes."""
  minimum = np.asarray(minimum, np.float32)
  maximum = np.asarray(maximum, np.float32)
  packed = np.concatenate([minimum, maximum]).astype("<f2")
  if not np.array_equal(packed.astype(np.float32),
                        np.concatenate([minimum, maximum])):
    raise ValueError("side information is not float16-representable")
  return packed.tobytes()


def unpack_side_info(data, channels):
  """Inverse of :func:`pack_side_info`: (minimum, maximum) float32 [C]."""
  if len(data) != 4 * channels:
    raise ValueError(f"side information must be {4 * channels} bytes, got "
                     f"{len(data)}")
  values = np.frombuffer(data, "<f2").astype(np.float32)
  return values[:channels], values[channels:]


@dataclasses.dataclass(frozen=True)
class Compressed:
  """One image coded by the Akbari 2020 system, as its byte parts.

  ``side_info`` holds the per-channel min/max, ``code_map`` the losslessly
  coded code map, ``enhancement`` the HEVC residual layer (empty if none).
  The container must also store height, width, bits (and C, from the model).
  """
  height: int
  width: int
  bits: int
  channels: int
  side_info: bytes
  code_map: bytes
  enhancement: bytes = b""

  @property
  def num_bytes(self):
    """Bytes of the three parts (without a container's header)."""
    return len(self.side_info) + len(self.code_map) + len(self.enhancement)

  def bits_per_pixel(self):
    return 8. * self.num_bytes / (self.height * self.width)


def _call(function, **inputs):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return function(**{k: tf.constant(v) for k, v in inputs.items()})


def compress(codec, image, bits, enhancement_quality: Optional[int] = None):
  """Codes a uint8 image [H, W, 3] with B = ``bits`` bits per channel.

  Args:
    codec: an object with the ``encode`` and ``decode`` functions of
      :class:`tfrnncomp.export.VariableRateModule` (e.g. a loaded SavedModel).
    image: uint8 [H, W, 3].
    bits: B in [1, 8].
    enhancement_quality: HEVC quality of the enhancement layer (0..100), or
      None for none.

  Returns:
    A :class:`Compressed`.
  """
  image = np.asarray(image)
  bits = _check_bits(bits)
  out = _call(codec.encode, image=image, bits_per_channel=np.int32(bits))
  code_map = out["code_map"].numpy()
  minimum, maximum = out["minimum"].numpy(), out["maximum"].numpy()
  enhancement = b""
  if enhancement_quality is not None:
    from tfrnncomp import enhancement as enhancement_lib  # pylint: disable=g-import-not-at-top
    x_hat = _decode(codec, code_map, minimum, maximum, bits, *image.shape[:2])
    enhancement = enhancement_lib.encode_residual(image, x_hat,
                                                  enhancement_quality)
  return Compressed(height=image.shape[0], width=image.shape[1], bits=bits,
                    channels=code_map.shape[-1],
                    side_info=pack_side_info(minimum, maximum),
                    code_map=encode_code_map(code_map, bits),
                    enhancement=enhancement)


def _decode(codec, code_map, minimum, maximum, bits, height, width):
  return _call(codec.decode, code_map=code_map.astype(np.uint8),
               minimum=minimum, maximum=maximum,
               bits_per_channel=np.int32(bits), height=np.int32(height),
               width=np.int32(width))["x_hat"].numpy()


def decompress(codec, compressed: Compressed):
  """The uint8 image [H, W, 3] of a :class:`Compressed`."""
  c = compressed
  minimum, maximum = unpack_side_info(c.side_info, c.channels)
  h, w = -(-c.height // 16), -(-c.width // 16)
  code_map = decode_code_map(c.code_map, h, w, c.channels, c.bits)
  x_hat = _decode(codec, code_map, minimum, maximum, c.bits, c.height,
                  c.width)
  if c.enhancement:
    from tfrnncomp import enhancement as enhancement_lib  # pylint: disable=g-import-not-at-top
    x_hat = enhancement_lib.decode_residual(c.enhancement, x_hat)
  return x_hat
