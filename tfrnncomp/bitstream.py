"""The compressed-image container: a progressive, versioned bitstream.

One image, coded by a recurrent codec in T iterations, is a header followed by
one *chunk* per iteration. Chunk t holds iteration t's codes [h, w, K] (h x w
code positions of 16 x 16 pixels, K bits each), either range-coded with the
entropy model the header names (:mod:`tfrnncomp.entropy`) or raw; it depends on
the chunks before it only. So a stream cut after any chunk is a valid stream
of fewer iterations: a sender can stop anywhere at a chunk boundary and the
receiver decodes what it got (progressive transmission), and a decoder reading
the header knows every chunk boundary before reading a chunk.

Layout (integers big-endian; offsets after the two names depend on their
lengths):

    size  field
    4     magic  b"\\x89RNC"  (the high bit catches 7-bit transfers, as PNG's)
    1     format version, 1 (2 for system "akbari2020", see below)
    1     flags, 0 (reserved: readers reject other values)
    1     S, then S bytes: codec *system*, ASCII, 1 <= S <= 32: the paper
          system whose decoder applies ("toderici2017"; later "islam2021",
          "akbari2020"), so other systems share the container
    1     N, then N bytes: codec model name, UTF-8, 1 <= N <= 64 (the
          codec's model.json "name")
    32    codec weights SHA-256 (model.json "weights_sha256")
    1     E, then E bytes: entropy model name, UTF-8, 0 <= E <= 64 (0: none)
    32    entropy model weights SHA-256 (entropy.json; zeros if E = 0)
    4     image height H, 1 <= H
    4     image width W, 1 <= W; ceil(H/16) * ceil(W/16) * 256 <= 2^28 pixels
    2     K, code bits per position, 1 <= K <= 1024
    1     T, iterations, 1 <= T <= 64
    9 T   per iteration t: chunk length (uint32), CRC-32 of the chunk
          (uint32), coding (uint8: 0 = raw, 1 = range-coded)
    4     CRC-32 of every header byte above, from the magic on
    ...   chunk 0, chunk 1, ..., chunk T-1, back to back

A raw chunk is ``np.packbits`` of the codes [h, w, K] mapped to {0, 1} (1 for
+1), in C order, the last byte zero-padded: exactly ceil(h w K / 8) bytes,
with h = ceil(H / 16) and w = ceil(W / 16). A range-coded chunk is the string
``tfc.entropy_encode_finalize`` returns for that iteration (at most
16 ceil(h w K / 8) + 64 bytes: 16 bits per bit with 16-bit tables); coding 1
needs an entropy model (E > 0). CRC-32 is zlib's (ISO 3309).

Reading rules (:func:`read`; every violation is a
:class:`~tfrnncomp.errors.FormatError` with a one-line message): the magic
and version are checked first, then the header's bounds and CRC, then its
values against the limits above; caps are checked before anything is
allocated. The chunks present follow: a stream that ends exactly at a chunk
boundary holds that many iterations (at least one); one that ends inside a
chunk, or goes on after chunk T-1, is corrupt unless the caller asks only for
the complete chunks before the cut. Each chunk read is checked against its
CRC-32. Matching the codec and entropy model against the header is the
caller's (:mod:`tfrnncomp.cli`).

Format versions and the akbari2020 layout. Version 1 is the layout above,
for the recurrent systems ("toderici2017", "islam2021"). Version 2 adds the
layout of the variable-rate system "akbari2020" (Akbari et al. 2020,
"Learned Variable-Rate Image Compression with Residual Divisive
Normalization", ICME 2020; :mod:`tfrnncomp.models.akbari2020`): one code map
[h, w, C] of B-bit levels per image, h = ceil(H/16), w = ceil(W/16), and an
optional enhancement layer. A stream carries the version that introduced its
system's layout (:func:`version_of`: 1 for the recurrent systems, so their
streams are byte for byte those of version 1, and 2 for akbari2020); any
other pairing is rejected, so every stream has one valid encoding and a
version-1 reader refuses akbari2020 streams as of an unsupported version.
The header is the same, with these fields meaning:

    field   for system "akbari2020"
    E       0: the code map's coder is part of the system (no entropy model)
    K       B, bits per channel of the code map, 1 <= B <= 8 (its rate)
    T       chunks, 1 (the base layer) or 2 (base and enhancement layer)
    coding  chunk 0: 2 (code map), chunk 1: 3 (enhancement); no other

    chunk 0, the base layer (coding 2):
      2     C, code map channels (the model's code_channels), 1 <= C <= 256
      4 C   side information: the code map's per-channel minima, then
            maxima, as float16 little-endian (akbari2020_coding.pack_side_info)
      ...   the code map, range-coded with the backward-adaptive model of
            akbari2020_coding.encode_code_map (the paper's FLIF replaced):
            segments of doubling height, each after its LEB128 length
    chunk 1, the enhancement layer (coding 3): the HEVC-coded residual
      x - x_hat of :mod:`tfrnncomp.enhancement` (its 12-byte range header,
      then a HEIF file; BPG in the paper), added to chunk 0's image

Chunks keep their CRC-32s, and the cut rules apply: a stream cut after
chunk 0 is the base layer alone. Caps: chunk 0 at most
:func:`max_code_map_chunk_size` (16-bit probabilities: at most 2 bytes per
level, for any C), chunk 1 at most :func:`max_enhancement_chunk_size`
(4 bytes per sample of the padded image, plus 64 KiB).
"""

import dataclasses
import struct
import zlib
from typing import Tuple

import numpy as np

from tfrnncomp import errors

__all__ = ["MAGIC", "VERSION", "RAW", "RANGE_CODED", "MAX_ITERATIONS",
           "MAX_BITS", "MAX_PIXELS", "BLOCK", "Chunk", "Header",
           "is_bitstream", "raw_chunk_size", "max_chunk_size", "pack_raw",
           "unpack_raw", "write", "read", "truncate", "VARIABLE_RATE_SYSTEM",
           "VARIABLE_RATE_VERSION", "LATEST_VERSION", "CODE_MAP",
           "ENHANCEMENT", "MAX_CHANNELS", "MAX_BITS_PER_CHANNEL",
           "version_of", "max_code_map_chunk_size",
           "max_enhancement_chunk_size", "pack_code_map_chunk",
           "unpack_code_map_chunk"]

MAGIC = b"\x89RNC"
VERSION = 1
"""The format version of the recurrent systems' streams (the first one)."""
VARIABLE_RATE_SYSTEM = "akbari2020"
VARIABLE_RATE_VERSION = 2
"""The format version that added the akbari2020 layout."""
LATEST_VERSION = VARIABLE_RATE_VERSION
RAW = 0
RANGE_CODED = 1
CODE_MAP = 2
ENHANCEMENT = 3
CODINGS = {RAW: "raw", RANGE_CODED: "range-coded"}
"""The chunk codings of the recurrent layout."""
LAYERS = (CODE_MAP, ENHANCEMENT)
"""The coding of each chunk of the akbari2020 layout, in order."""
MAX_CHANNELS = 256
MAX_BITS_PER_CHANNEL = 8
MAX_ITERATIONS = 64
MAX_BITS = 1024
MAX_PIXELS = 2 ** 28
BLOCK = 16
MAX_SYSTEM = 32
MAX_NAME = 64
_HASH = 32
_CHUNK = struct.Struct(">IIB")
_SIZE = struct.Struct(">IIHB")


@dataclasses.dataclass(frozen=True)
class Chunk:
  """One iteration's entry in the header's chunk table."""

  length: int
  crc32: int
  coding: int  # RAW or RANGE_CODED; akbari2020: CODE_MAP, ENHANCEMENT.


@dataclasses.dataclass(frozen=True)
class Header:
  """A stream's header (see the module docstring for the layout)."""

  system: str
  codec_name: str
  codec_sha256: str   # 64 hex digits.
  entropy_name: str   # "" if the stream uses no entropy model.
  entropy_sha256: str  # 64 hex digits, "" if entropy_name is "".
  height: int
  width: int
  bits: int
  chunks: Tuple[Chunk, ...]
  size: int = 0       # Bytes of the header (set by read and write).
  version: int = VERSION

  @property
  def iterations(self):
    """Iterations the header declares (the stream may hold fewer).

    For akbari2020 streams: the chunks (layers) it declares, 1 or 2.
    """
    return len(self.chunks)

  @property
  def variable_rate(self):
    """Whether the stream has the akbari2020 layout."""
    return self.system == VARIABLE_RATE_SYSTEM

  @property
  def bits_per_channel(self):
    """B of an akbari2020 stream (its K field); None for the others."""
    return self.bits if self.variable_rate else None

  @property
  def rows(self):
    return -(-self.height // BLOCK)

  @property
  def columns(self):
    return -(-self.width // BLOCK)

  def stream_size(self, iterations):
    """Bytes of the stream cut after ``iterations`` chunks."""
    return self.size + sum(c.length for c in self.chunks[:iterations])


def is_bitstream(prefix):
  """Whether bytes start like a stream of this format (any version)."""
  return bytes(prefix[:len(MAGIC)]) == MAGIC


def raw_chunk_size(rows, columns, bits):
  return -(-rows * columns * bits // 8)


def max_chunk_size(rows, columns, bits):
  """The largest range-coded chunk the format allows."""
  return 16 * raw_chunk_size(rows, columns, bits) + 64


def version_of(system):
  """The format version of ``system``'s streams."""
  return VARIABLE_RATE_VERSION if system == VARIABLE_RATE_SYSTEM else VERSION


def max_code_map_chunk_size(rows, columns):
  """The largest akbari2020 chunk 0 (code map) the format allows, any C.

  C, side info, and at most 2 bytes per level (16-bit probabilities), plus
  1 KiB for the segments' lengths and the range coder's flushes.
  """
  return 2 + 4 * MAX_CHANNELS + 2 * rows * columns * MAX_CHANNELS + 1024


def max_enhancement_chunk_size(rows, columns):
  """The largest akbari2020 chunk 1 (enhancement layer) the format allows."""
  return 4 * 3 * rows * columns * BLOCK * BLOCK + 65536


def pack_code_map_chunk(channels, side_info, code_map):
  """Chunk 0 of an akbari2020 stream: C, side info and the coded code map.

  Raises:
    InputError: if C is out of range or the side info is not 4 C bytes.
  """
  if not 1 <= channels <= MAX_CHANNELS:
    raise errors.InputError(f"{channels} code map channels are outside 1 to "
                            f"{MAX_CHANNELS}")
  if len(side_info) != 4 * channels:
    raise errors.InputError(f"side information has {len(side_info)} bytes, "
                            f"{channels} channels need {4 * channels}")
  return struct.pack(">H", channels) + bytes(side_info) + bytes(code_map)


def unpack_code_map_chunk(chunk):
  """Inverse of :func:`pack_code_map_chunk`: (C, side info, code map bytes).

  Raises:
    FormatError: if C is out of range or the chunk ends inside the side info.
  """
  chunk = bytes(chunk)
  if len(chunk) < 2:
    raise errors.FormatError("code map chunk is shorter than its channel "
                             "count")
  (channels,) = struct.unpack(">H", chunk[:2])
  if not 1 <= channels <= MAX_CHANNELS:
    raise errors.FormatError(f"code map chunk declares {channels} channels, "
                             f"outside 1 to {MAX_CHANNELS}")
  end = 2 + 4 * channels
  if len(chunk) <= end:
    raise errors.FormatError(f"code map chunk has {len(chunk)} bytes, too few "
                             f"for {channels} channels' side information and "
                             f"a code map")
  return channels, chunk[2:end], chunk[end:]


def _check_layers(system, entropy_name, bits, codings, sizes, rows, columns,
                  error):
  """The akbari2020 layout's rules (see the module docstring)."""
  if entropy_name:
    raise error(f"{system} streams name no entropy model, this one names "
                f"{entropy_name!r}")
  if not 1 <= bits <= MAX_BITS_PER_CHANNEL:
    raise error(f"{bits} bits per channel are outside 1 to "
                f"{MAX_BITS_PER_CHANNEL}")
  if not 1 <= len(codings) <= len(LAYERS):
    raise error(f"{system} streams hold 1 or 2 chunks, not {len(codings)}")
  limits = (max_code_map_chunk_size(rows, columns),
            max_enhancement_chunk_size(rows, columns))
  for t, (coding, size) in enumerate(zip(codings, sizes)):
    if coding != LAYERS[t]:
      raise error(f"chunk {t} of this {system} stream has coding {coding}, "
                  f"not {LAYERS[t]} ({('code map', 'enhancement')[t]})")
    if size > limits[t]:
      raise error(f"chunk {t} claims {size} bytes, more than the format "
                  f"allows")


def pack_raw(codes):
  """+-1 codes [h, w, K] -> a raw chunk."""
  return np.packbits(np.asarray(codes).reshape(-1) > 0).tobytes()


def unpack_raw(chunk, rows, columns, bits):
  """A raw chunk -> int8 +-1 codes [rows, columns, bits].

  Raises:
    FormatError: if its size is wrong or its padding bits are not zero.
  """
  count = rows * columns * bits
  if len(chunk) != raw_chunk_size(rows, columns, bits):
    raise errors.FormatError(f"raw chunk has {len(chunk)} bytes, "
                             f"{rows}x{columns}x{bits} codes need "
                             f"{raw_chunk_size(rows, columns, bits)}")
  ones = np.unpackbits(np.frombuffer(chunk, np.uint8))
  if ones[count:].any():
    raise errors.FormatError("raw chunk has non-zero padding bits")
  return (ones[:count].astype(np.int8) * 2 - 1).reshape(rows, columns, bits)


def _hash_bytes(hex_digest, what):
  try:
    digest = bytes.fromhex(hex_digest)
  except (TypeError, ValueError):
    digest = b""
  if len(digest) != _HASH:
    raise errors.InputError(f"{what} must be 64 hex digits, got "
                            f"{hex_digest!r}")
  return digest


def _name_bytes(name, what, low, high, encoding="utf-8"):
  try:
    data = name.encode(encoding)
  except UnicodeEncodeError:
    raise errors.InputError(f"{what} {name!r} is not {encoding}") from None
  if not low <= len(data) <= high:
    raise errors.InputError(f"{what} {name!r} must have {low} to {high} "
                            f"bytes")
  return bytes([len(data)]) + data


def _check_size(height, width, bits, iterations, error):
  if height < 1 or width < 1:
    raise error(f"image size {height}x{width} is empty")
  rows, columns = -(-height // BLOCK), -(-width // BLOCK)
  if rows * columns * BLOCK * BLOCK > MAX_PIXELS:
    raise error(f"{height}x{width} pixels exceed the maximum of "
                f"{MAX_PIXELS}")
  if not 1 <= bits <= MAX_BITS:
    raise error(f"{bits} bits per code position are outside 1 to "
                f"{MAX_BITS}")
  if not 1 <= iterations <= MAX_ITERATIONS:
    raise error(f"{iterations} iterations are outside 1 to "
                f"{MAX_ITERATIONS}")


def write(system, codec_name, codec_sha256, height, width, bits, chunks,
          entropy_name="", entropy_sha256=""):
  """The stream of ``chunks``, a list of (coding, bytes), one per iteration.

  For system "akbari2020", ``bits`` is B and ``chunks`` its layers (see the
  module docstring); the stream gets format version 2.

  Raises:
    InputError: if a field is out of range.
  """
  _check_size(height, width, bits, len(chunks), errors.InputError)
  rows, columns = -(-height // BLOCK), -(-width // BLOCK)
  if system == VARIABLE_RATE_SYSTEM:
    _check_layers(system, entropy_name, bits, [c for c, _ in chunks],
                  [len(d) for _, d in chunks], rows, columns,
                  errors.InputError)
  if any(c == RANGE_CODED for c, _ in chunks) and not entropy_name:
    raise errors.InputError("range-coded chunks need an entropy model")
  head = [MAGIC, bytes([version_of(system), 0]),
          _name_bytes(system, "system", 1, MAX_SYSTEM, "ascii"),
          _name_bytes(codec_name, "codec name", 1, MAX_NAME),
          _hash_bytes(codec_sha256, "codec weights SHA-256"),
          _name_bytes(entropy_name, "entropy model name", 0, MAX_NAME),
          (_hash_bytes(entropy_sha256, "entropy model weights SHA-256")
           if entropy_name else bytes(_HASH)),
          _SIZE.pack(height, width, bits, len(chunks))]
  for coding, data in chunks:
    if system == VARIABLE_RATE_SYSTEM:  # Checked above.
      head.append(_CHUNK.pack(len(data), zlib.crc32(data), coding))
      continue
    if coding == RAW and len(data) != raw_chunk_size(rows, columns, bits):
      raise errors.InputError(f"raw chunk has {len(data)} bytes, expected "
                              f"{raw_chunk_size(rows, columns, bits)}")
    if coding not in CODINGS:
      raise errors.InputError(f"unknown chunk coding {coding}")
    if len(data) > max_chunk_size(rows, columns, bits):
      raise errors.InputError(f"chunk of {len(data)} bytes exceeds the "
                              f"format's maximum")
    head.append(_CHUNK.pack(len(data), zlib.crc32(data), coding))
  head = b"".join(head)
  head += struct.pack(">I", zlib.crc32(head))
  return head + b"".join(data for _, data in chunks)


class _Reader:
  """Bounds-checked reads from the header."""

  def __init__(self, data, name):
    self.data, self.name, self.offset = data, name, 0

  def take(self, count):
    if self.offset + count > len(self.data):
      raise errors.FormatError(f"{self.name}: truncated header (the stream "
                               f"has {len(self.data)} bytes)")
    value = self.data[self.offset:self.offset + count]
    self.offset += count
    return value

  def name_field(self, what, high, encoding="utf-8"):
    length = self.take(1)[0]
    raw = self.take(length)
    try:
      return raw.decode(encoding), length
    except UnicodeDecodeError:
      raise errors.FormatError(f"{self.name}: {what} is not {encoding}"
                               ) from None


def read(data, iterations=None, name="stream"):
  """Parses a stream; returns (header, list of (coding, bytes) chunks).

  Args:
    data: the stream's bytes (possibly cut at a chunk boundary).
    iterations: how many chunks are needed; None for all the stream holds.
      With a number, bytes after the needed chunks are not read (so a stream
      cut inside a later chunk is fine).
    name: how messages call the stream (e.g. its file name).

  Raises:
    FormatError: see the module docstring.
  """
  data = bytes(data)
  if not is_bitstream(data):
    raise errors.FormatError(f"{name} is not a tfrnncomp bitstream (bad magic "
                             f"bytes)")
  reader = _Reader(data, name)
  reader.take(len(MAGIC))
  version, flags = reader.take(2)
  if not VERSION <= version <= LATEST_VERSION:
    raise errors.FormatError(f"{name}: unsupported bitstream format version "
                             f"{version} (this reader reads {VERSION} to "
                             f"{LATEST_VERSION})")
  system, _ = reader.name_field("system", MAX_SYSTEM, "ascii")
  codec_name, codec_length = reader.name_field("codec name", MAX_NAME)
  codec_sha256 = reader.take(_HASH).hex()
  entropy_name, entropy_length = reader.name_field("entropy model name",
                                                   MAX_NAME)
  entropy_sha256 = reader.take(_HASH).hex()
  height, width, bits, declared = _SIZE.unpack(reader.take(_SIZE.size))
  if declared > MAX_ITERATIONS:  # Before reading the table.
    raise errors.FormatError(f"{name}: {declared} iterations exceed the "
                             f"maximum of {MAX_ITERATIONS}")
  table = [Chunk(*_CHUNK.unpack(reader.take(_CHUNK.size)))
           for _ in range(declared)]
  header_end = reader.offset
  (crc,) = struct.unpack(">I", reader.take(4))
  if zlib.crc32(data[:header_end]) != crc:
    raise errors.FormatError(f"{name}: header fails its CRC-32 check "
                             f"(corrupt stream)")
  # The CRC matched: what follows are the writer's values, or a forgery.
  if flags != 0:
    raise errors.FormatError(f"{name}: unknown flags {flags:#04x}")
  if not 1 <= len(system) <= MAX_SYSTEM or not 1 <= codec_length <= MAX_NAME:
    raise errors.FormatError(f"{name}: empty or too long system or codec "
                             f"name")
  if entropy_length > MAX_NAME:
    raise errors.FormatError(f"{name}: entropy model name too long")
  _check_size(height, width, bits, declared,
              lambda m: errors.FormatError(f"{name}: {m}"))
  rows, columns = -(-height // BLOCK), -(-width // BLOCK)
  if version != version_of(system):
    raise errors.FormatError(f"{name}: format version {version} does not fit "
                             f"system {system} (its streams are version "
                             f"{version_of(system)})")
  if system == VARIABLE_RATE_SYSTEM:
    _check_layers(system, entropy_name, bits, [c.coding for c in table],
                  [c.length for c in table], rows, columns,
                  lambda m: errors.FormatError(f"{name}: {m}"))
  recurrent = () if system == VARIABLE_RATE_SYSTEM else table
  for t, chunk in enumerate(recurrent):  # The recurrent layout's rules.
    if chunk.coding not in CODINGS:
      raise errors.FormatError(f"{name}: chunk {t} has unknown coding "
                               f"{chunk.coding}")
    if chunk.coding == RANGE_CODED and not entropy_name:
      raise errors.FormatError(f"{name}: chunk {t} is range-coded but the "
                               f"stream names no entropy model")
    if chunk.coding == RAW and chunk.length != raw_chunk_size(rows, columns,
                                                              bits):
      raise errors.FormatError(f"{name}: raw chunk {t} has {chunk.length} "
                               f"bytes, {rows}x{columns}x{bits} codes need "
                               f"{raw_chunk_size(rows, columns, bits)}")
    if chunk.length > max_chunk_size(rows, columns, bits):
      raise errors.FormatError(f"{name}: chunk {t} claims {chunk.length} "
                               f"bytes, more than the format allows")
  header = Header(system=system, codec_name=codec_name,
                  codec_sha256=codec_sha256, entropy_name=entropy_name,
                  entropy_sha256=entropy_sha256 if entropy_name else "",
                  height=height, width=width, bits=bits, chunks=tuple(table),
                  size=reader.offset, version=version)

  # Chunk boundaries, all within the file or not.
  offsets = np.cumsum([header.size] + [c.length for c in table]).tolist()
  present = max(t for t in range(declared + 1) if offsets[t] <= len(data))
  if iterations is None:
    if len(data) > offsets[-1]:
      raise errors.FormatError(f"{name}: {len(data) - offsets[-1]} bytes "
                               f"after the last chunk (corrupt stream)")
    if len(data) != offsets[present]:
      raise errors.FormatError(
          f"{name}: stream ends inside the chunk of iteration {present} "
          f"(truncated; its first {present} iteration(s) are complete)")
    if present == 0:
      raise errors.FormatError(f"{name}: stream holds no iteration (it ends "
                               f"after the header)")
    iterations = present
  elif not 1 <= iterations <= present:
    raise errors.FormatError(f"{name}: cannot read {iterations} iterations, "
                             f"the stream holds {present} complete ones")
  chunks = []
  for t in range(iterations):
    chunk = data[offsets[t]:offsets[t + 1]]
    if zlib.crc32(chunk) != table[t].crc32:
      raise errors.FormatError(f"{name}: the chunk of iteration {t} fails its "
                               f"CRC-32 check (corrupt stream)")
    chunks.append((table[t].coding, chunk))
  return header, chunks


def truncate(data, iterations):
  """The first ``iterations`` iterations of a stream: a cut after that chunk."""
  header, _ = read(data, iterations)
  return bytes(data[:header.stream_size(iterations)])
