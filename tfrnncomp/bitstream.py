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
    1     format version, 1
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
"""

import dataclasses
import struct
import zlib
from typing import List, Optional, Tuple

import numpy as np

from tfrnncomp import errors

__all__ = ["MAGIC", "VERSION", "RAW", "RANGE_CODED", "MAX_ITERATIONS",
           "MAX_BITS", "MAX_PIXELS", "BLOCK", "Chunk", "Header",
           "is_bitstream", "raw_chunk_size", "max_chunk_size", "pack_raw",
           "unpack_raw", "write", "read", "truncate"]

MAGIC = b"\x89RNC"
VERSION = 1
RAW = 0
RANGE_CODED = 1
CODINGS = {RAW: "raw", RANGE_CODED: "range-coded"}
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
  coding: int  # RAW or RANGE_CODED.


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

  @property
  def iterations(self):
    """Iterations the header declares (the stream may hold fewer)."""
    return len(self.chunks)

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

  Raises:
    InputError: if a field is out of range.
  """
  _check_size(height, width, bits, len(chunks), errors.InputError)
  rows, columns = -(-height // BLOCK), -(-width // BLOCK)
  if any(c == RANGE_CODED for c, _ in chunks) and not entropy_name:
    raise errors.InputError("range-coded chunks need an entropy model")
  head = [MAGIC, bytes([VERSION, 0]),
          _name_bytes(system, "system", 1, MAX_SYSTEM, "ascii"),
          _name_bytes(codec_name, "codec name", 1, MAX_NAME),
          _hash_bytes(codec_sha256, "codec weights SHA-256"),
          _name_bytes(entropy_name, "entropy model name", 0, MAX_NAME),
          (_hash_bytes(entropy_sha256, "entropy model weights SHA-256")
           if entropy_name else bytes(_HASH)),
          _SIZE.pack(height, width, bits, len(chunks))]
  for coding, data in chunks:
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
  if version != VERSION:
    raise errors.FormatError(f"{name}: unsupported bitstream format version "
                             f"{version} (this reader reads {VERSION})")
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
  for t, chunk in enumerate(table):
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
                  size=reader.offset)

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
