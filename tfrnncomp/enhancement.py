"""HEVC enhancement layer of the Akbari 2020 codec.

Akbari et al. 2020 (Sec. 2.4) code the residual between the input and the
network's reconstruction with BPG as an enhancement layer. BPG is HEVC intra
coding, so here the residual is coded by HEVC (x265, 4:4:4, in a HEIF file)
through pillow-heif, as :class:`tfrnncomp.codecs.HevcCodec` does:

    r   = x - x_hat                                   int, per channel c
    r8  = round((r - m_c) * 255 / (M_c - m_c))        uint8, m_c / M_c the
                                                      channel's min / max
    data = [m_0 M_0 m_1 M_1 m_2 M_2] (int16 LE) + HEIF(HEVC(r8, quality))
    x_enh = clip(round(x_hat + m_c + r8_hat (M_c - m_c) / 255), 0, 255)

The returned bytes are the whole layer: the 12-byte range header and the HEIF
file (whose container overhead, a few hundred bytes, is counted; BPG's
header is smaller). A constant channel (M_c = m_c) codes r8 = 0.
"""

import struct

import numpy as np

__all__ = ["HEADER_BYTES", "encode_residual", "decode_residual"]

HEADER_BYTES = 12
"""Bytes of the per-channel residual range (3 x min, max as int16)."""


def _check(image, name):
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"{name} must be uint8 [H, W, 3], got {image.dtype} "
                     f"{image.shape}")
  return image


def encode_residual(image, reconstruction, quality):
  """Codes image - reconstruction (uint8 [H, W, 3] each) with HEVC."""
  from tfrnncomp import codecs  # pylint: disable=g-import-not-at-top
  image = _check(image, "image")
  reconstruction = _check(reconstruction, "reconstruction")
  if image.shape != reconstruction.shape:
    raise ValueError(f"image {image.shape} and reconstruction "
                     f"{reconstruction.shape} differ in shape")
  residual = image.astype(np.int16) - reconstruction.astype(np.int16)
  low = residual.min(axis=(0, 1)).astype(np.int64)
  high = residual.max(axis=(0, 1)).astype(np.int64)
  span = np.maximum(high - low, 1)
  scaled = np.floor((residual - low) * 255. / span + .5)
  scaled = np.clip(scaled, 0, 255).astype(np.uint8)
  header = struct.pack("<6h", *[int(v) for pair in zip(low, high)
                                 for v in pair])
  return header + codecs.get_codec("hevc").compress(scaled, int(quality))


def decode_residual(data, reconstruction):
  """Adds the coded residual to ``reconstruction``; returns uint8 [H, W, 3]."""
  from tfrnncomp import codecs  # pylint: disable=g-import-not-at-top
  reconstruction = _check(reconstruction, "reconstruction")
  if len(data) <= HEADER_BYTES:
    raise ValueError("enhancement layer data is truncated")
  values = np.array(struct.unpack("<6h", data[:HEADER_BYTES]), np.float64)
  low, high = values[0::2], values[1::2]
  scaled = codecs.get_codec("hevc").decompress(data[HEADER_BYTES:])
  if scaled.shape != reconstruction.shape:
    raise ValueError(f"enhancement layer is {scaled.shape}, the "
                     f"reconstruction {reconstruction.shape}")
  residual = low + scaled.astype(np.float64) * (high - low) / 255.
  out = np.floor(reconstruction.astype(np.float64) + residual + .5)
  return np.clip(out, 0, 255).astype(np.uint8)
