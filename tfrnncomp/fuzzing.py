"""Fuzzing the decoder: every mutated code file decodes or fails cleanly.

The decoder reads files from anywhere, so any byte string given to
:func:`tfrnncomp.cli.decode_file` (what ``tools/decoder.py`` runs) must end in
one of two ways: decoded images, or a :class:`~tfrnncomp.errors.TfrnncompError`
(one line, non-zero exit in the tool). Never another exception, a crash or
abort inside a TensorFlow or tensorflow-compression op, a hang, or memory
out of proportion to the file.

:func:`fuzz` checks this on *cases*: mutations of a few valid seed files
(:func:`make_seeds`: bitstreams and ``.npz`` files of small images coded by
the model under test, range-coded chunks included if it has an entropy
model). Each case is derived from ``(seed, index)`` alone, so any case can be
regenerated (:func:`make_case`). The mutators (:data:`MUTATORS`):

- byte level, for both formats: ``flip_bits``, ``set_bytes``,
  ``insert_bytes``, ``delete_bytes``, ``truncate`` (anywhere, or at a chunk
  boundary of a bitstream), ``append`` (junk after the end), ``splice`` (the
  head of one seed with the tail of another, of either format) and
  ``random_bytes`` (noise, half of it after a valid magic number);
- bitstream structure: ``header_field`` (one header field set to a boundary or
  random value: version, flags, names and their lengths, hashes, height,
  width, bits, iteration count, a chunk's length, CRC or coding; mostly with
  the header CRC recomputed, so that the checks behind the CRC are reached)
  and ``chunk_payload`` (a chunk's bytes changed *and* its CRC and the
  header's recomputed, so that forged payloads reach the raw unpacker and the
  range decoder);
- ``.npz`` structure: ``npz_arrays`` (the arrays rewritten with wrong shapes,
  dtypes, sizes, image sizes, missing or extra keys, pickled objects),
  ``npy_header`` (a member whose ``.npy`` header declares a huge or negative
  shape, an object or odd dtype, or is garbage) and ``zip_fields`` (a zip
  header field changed: compression method, encryption flag, sizes, CRC,
  name length, directory size, entry count, offsets).

Outcomes (:class:`Report`): ``decoded`` or ``error`` are fine; ``bug`` (any
other exception), ``slow`` (a case over ``time_limit`` seconds) and
``memory`` (the process's peak memory grew by more than ``memory_limit_mb``
during a case) are findings, saved to ``corpus_dir`` if given. A crash kills
the process; with ``corpus_dir`` the case being run is always in
``corpus_dir/current`` (with its name in ``current.txt``).

Cases decode with a small ``max_pixels`` (:data:`FUZZ_MAX_PIXELS`): a forged
header can declare any image up to the limit, and the limit is the decoder's
defense, so it only has to be enforced, not large, to be tested.
"""

import collections
import dataclasses
import io
import os
import resource
import struct
import tempfile
import time
import zipfile
import zlib
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import errors

__all__ = ["FUZZ_MAX_PIXELS", "Seed", "Case", "Finding", "Report",
           "MUTATORS", "make_seeds", "make_case", "run_case", "fuzz"]

FUZZ_MAX_PIXELS = 2 ** 16
"""The decoding limit cases run with (256 blocks of 16 x 16)."""

_MAGICS = (bitstream.MAGIC, b"PK\x03\x04", b"\x93NUMPY\x01\x00")


@dataclasses.dataclass(frozen=True)
class Seed:
  name: str
  data: bytes

  @property
  def format(self):
    return "bitstream" if bitstream.is_bitstream(self.data) else "npz"


@dataclasses.dataclass(frozen=True)
class Case:
  index: int
  mutator: str
  seed: str           # Name of the seed it mutates.
  data: bytes
  iterations: Optional[int]  # decode_file's ``iterations``.

  @property
  def name(self):
    return f"case{self.index:07d}-{self.mutator}-{self.seed}"


@dataclasses.dataclass(frozen=True)
class Finding:
  case: str
  kind: str           # "bug", "slow" or "memory".
  detail: str
  path: str = ""      # Where the input was saved, if it was.


@dataclasses.dataclass
class Report:
  """What :func:`fuzz` saw."""

  cases: int = 0
  seconds: float = 0.
  # (mutator, outcome) -> count; outcome: decoded, error, bug, slow, memory.
  outcomes: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  errors: collections.Counter = dataclasses.field(  # Error class -> count.
      default_factory=collections.Counter)
  findings: List[Finding] = dataclasses.field(default_factory=list)
  slowest: Tuple[float, str] = (0., "")

  def describe(self):
    lines = [f"{self.cases} cases in {self.seconds:.1f} s "
             f"({self.cases / max(self.seconds, 1e-9):.0f}/s), "
             f"{len(self.findings)} finding(s); slowest case "
             f"{self.slowest[0]:.2f} s ({self.slowest[1]})"]
    mutators = sorted({m for m, _ in self.outcomes})
    kinds = ["decoded", "error", "bug", "slow", "memory"]
    lines.append("  " + f"{'mutator':16s}" + "".join(f"{k:>9s}" for k in kinds))
    for m in mutators:
      lines.append("  " + f"{m:16s}" + "".join(
          f"{self.outcomes[m, k]:9d}" for k in kinds))
    lines.append("  errors: " + ", ".join(
        f"{k} {v}" for k, v in sorted(self.errors.items())))
    for f in self.findings[:20]:
      lines.append(f"  {f.kind}: {f.case}: {f.detail}"
                   + (f" (saved as {f.path})" if f.path else ""))
    return "\n".join(lines)


# --- Seeds. -----------------------------------------------------------------


def _image(height, width, seed, smooth):
  rng = np.random.default_rng(seed)
  rows, cols = np.mgrid[:height, :width]
  x = np.stack([rows * 255. / max(height - 1, 1),
                cols * 255. / max(width - 1, 1),
                (rows + cols) % 64 * 4.], axis=-1)
  x += rng.normal(0., 1. if smooth else 40., x.shape)
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def make_seeds(codec, sizes=((17, 33), (48, 64)), iterations=3):
  """Valid files of ``codec`` to mutate: a bitstream and an .npz per size.

  The first size gets a noisy image (raw chunks), the others smooth ones
  (range-coded chunks, if the codec has an entropy model). A codec of
  another kind than :class:`~tfrnncomp.cli.SavedCodec` (a variable-rate
  one) gets its bitstreams of :func:`tfrnncomp.cli.compress` with rate
  ``iterations``, and no .npz.
  """
  seeds = []
  for i, (height, width) in enumerate(sizes):
    image = _image(height, width, i, smooth=i > 0)
    if not isinstance(codec, cli.SavedCodec):
      seeds.append(Seed(f"s{i}", cli.compress(codec, image, iterations)))
      continue
    codes = codec.encode(image, iterations)
    # Every chunk range-coded, so that the seeds reach the range decoder.
    chunks = cli.stream_chunks(
        codec, codes, "always" if codec.entropy is not None else "auto")
    seeds.append(Seed(f"s{i}", cli.write_stream(codec, chunks, height, width)))
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, shape=np.asarray((len(codes), 1) + codes.shape[1:], np.int32),
        codes=np.packbits(codes.reshape(-1) > 0),
        image_size=np.asarray([height, width], np.int32))
    seeds.append(Seed(f"n{i}", buffer.getvalue()))
  return seeds


# --- Byte-level mutators. ---------------------------------------------------

_INTERESTING_BYTES = (0, 1, 0x7f, 0x80, 0xff, 0x40, 0x10)


def _position(rng, data, header_bias=0.5):
  """A byte position, half of the time within the first 256 bytes."""
  if not data:
    return 0
  if rng.random() < header_bias:
    return int(rng.integers(min(len(data), 256)))
  return int(rng.integers(len(data)))


def flip_bits(rng, data, seeds):
  data = bytearray(data)
  for _ in range(int(rng.integers(1, 9))):
    if data:
      i = _position(rng, data)
      data[i] ^= 1 << int(rng.integers(8))
  return bytes(data)


def set_bytes(rng, data, seeds):
  data = bytearray(data)
  for _ in range(int(rng.integers(1, 5))):
    if data:
      value = (int(rng.choice(_INTERESTING_BYTES)) if rng.random() < 0.5
               else int(rng.integers(256)))
      data[_position(rng, data)] = value
  return bytes(data)


def insert_bytes(rng, data, seeds):
  i = _position(rng, data)
  extra = rng.integers(256, size=int(rng.integers(1, 17)),
                       dtype=np.uint8).tobytes()
  return data[:i] + extra + data[i:]


def delete_bytes(rng, data, seeds):
  i = _position(rng, data)
  return data[:i] + data[i + int(rng.integers(1, 17)):]


def truncate(rng, data, seeds):
  if bitstream.is_bitstream(data) and rng.random() < 0.5:
    layout = _stream_layout(data)
    if layout is not None:
      cuts = [layout.header_end] + list(np.cumsum(
          [layout.header_end] + layout.lengths)[1:])
      cut = int(rng.choice(cuts)) + int(rng.choice([-1, 0, 0, 0, 1]))
      return data[:max(cut, 0)]
  return data[:int(rng.integers(len(data) + 1))]


def append(rng, data, seeds):
  return data + rng.integers(256, size=int(rng.integers(1, 65)),
                             dtype=np.uint8).tobytes()


def splice(rng, data, seeds):
  other = seeds[int(rng.integers(len(seeds)))].data
  i = int(rng.integers(len(data) + 1))
  j = int(rng.integers(len(other) + 1)) if rng.random() < 0.5 else min(
      i, len(other))
  return data[:i] + other[j:]


def random_bytes(rng, data, seeds):
  noise = rng.integers(256, size=int(rng.integers(0, 400)),
                       dtype=np.uint8).tobytes()
  if rng.random() < 0.5:
    return _MAGICS[int(rng.integers(len(_MAGICS)))] + noise
  return noise


# --- Bitstream structure. ---------------------------------------------------


@dataclasses.dataclass
class _Layout:
  """Where a bitstream's header fields are: name -> (offset, size)."""

  fields: Dict[str, Tuple[int, int]]
  header_end: int     # After the header CRC.
  lengths: List[int]  # Chunk lengths from the table.


def _stream_layout(data):
  """The field offsets of a bitstream header, parsed laxly; None if cut."""
  fields = {"version": (4, 1), "flags": (5, 1)}
  at = 6
  try:
    for name in ("system", "codec_name"):
      fields[name + "_length"] = (at, 1)
      fields[name] = (at + 1, data[at])
      at += 1 + data[at]
    fields["codec_sha256"] = (at, 32)
    at += 32
    fields["entropy_name_length"] = (at, 1)
    fields["entropy_name"] = (at + 1, data[at])
    at += 1 + data[at]
    fields["entropy_sha256"] = (at, 32)
    at += 32
    for name, size in (("height", 4), ("width", 4), ("bits", 2),
                       ("count", 1)):
      fields[name] = (at, size)
      at += size
    count = data[at - 1]
    lengths = []
    for t in range(count):
      fields[f"length{t}"] = (at, 4)
      fields[f"crc{t}"] = (at + 4, 4)
      fields[f"coding{t}"] = (at + 8, 1)
      lengths.append(struct.unpack(">I", data[at:at + 4])[0])
      at += 9
    fields["header_crc"] = (at, 4)
    if at + 4 > len(data):
      return None
  except (IndexError, struct.error):
    return None
  return _Layout(fields, at + 4, lengths)


def _fix_header_crc(data):
  layout = _stream_layout(data)
  if layout is None:
    return data
  at = layout.fields["header_crc"][0]
  return data[:at] + struct.pack(">I", zlib.crc32(data[:at])) + data[at + 4:]


def _interesting_int(rng, size, original):
  top = 2 ** (8 * size) - 1
  choices = [0, 1, 2, top, top - 1, 2 ** (8 * size - 1), original + 1,
             max(original - 1, 0), min(original * 2, top),
             min(original * 16, top), int(rng.integers(top + 1))]
  if size >= 4:
    choices += [2 ** 14, 2 ** 14 + 1, 2 ** 16, 2 ** 28]
  return min(int(rng.choice(choices)), top)


def header_field(rng, data, seeds):
  layout = _stream_layout(data)
  if layout is None:
    return flip_bits(rng, data, seeds)
  names = sorted(layout.fields)
  name = names[int(rng.integers(len(names)))]
  at, size = layout.fields[name]
  field = data[at:at + size]
  if name in ("system", "codec_name", "entropy_name") or name.endswith(
      "sha256"):
    choice = rng.random()
    if choice < 0.4 and field:
      value = bytearray(field)
      value[int(rng.integers(len(value)))] ^= 1 << int(rng.integers(8))
      value = bytes(value)
    elif choice < 0.6:
      value = bytes(field[::-1])
    elif choice < 0.8:
      value = rng.integers(256, size=size, dtype=np.uint8).tobytes()
    else:  # Not UTF-8.
      value = (b"\xff\xfe" + field)[:size]
  elif name.startswith("coding"):
    value = bytes([int(rng.choice([0, 1, 1, 2, 255]))])
  elif name == "count":
    # Also drop or repeat a table entry, so the table stays aligned.
    count = data[at]
    new = _interesting_int(rng, 1, count)
    table = at + 1
    entries = [data[table + 9 * t:table + 9 * (t + 1)] for t in range(count)]
    if rng.random() < 0.7 and entries:
      entries = (entries * (new // len(entries) + 1))[:new]
    end = table + 9 * count
    data = data[:at] + bytes([new]) + b"".join(entries) + data[end:]
    return _fix_header_crc(data) if rng.random() < 0.9 else data
  else:
    original = int.from_bytes(field, "big")
    value = _interesting_int(rng, size, original).to_bytes(size, "big")
  data = data[:at] + value + data[at + size:]
  if name != "header_crc" and rng.random() < 0.85:
    data = _fix_header_crc(data)
  return data


def chunk_payload(rng, data, seeds):
  """Changes a chunk and recomputes its CRC and the header's."""
  layout = _stream_layout(data)
  if layout is None or not layout.lengths:
    return flip_bits(rng, data, seeds)
  t = int(rng.integers(len(layout.lengths)))
  start = layout.header_end + sum(layout.lengths[:t])
  chunk = data[start:start + layout.lengths[t]]
  choice = rng.random()
  if choice < 0.35 and chunk:
    chunk = flip_bits(rng, chunk, seeds)
  elif choice < 0.55:
    chunk = rng.integers(256, size=len(chunk), dtype=np.uint8).tobytes()
  elif choice < 0.7:
    chunk = chunk[:int(rng.integers(len(chunk) + 1))]
  elif choice < 0.8:
    chunk = chunk + rng.integers(256, size=int(rng.integers(1, 32)),
                                 dtype=np.uint8).tobytes()
  elif choice < 0.9:
    chunk = bytes(len(chunk)) if rng.random() < 0.5 else b"\xff" * len(chunk)
  else:  # Another chunk's bytes in its place.
    u = int(rng.integers(len(layout.lengths)))
    other = layout.header_end + sum(layout.lengths[:u])
    chunk = data[other:other + layout.lengths[u]]
  length_at = layout.fields[f"length{t}"][0]
  head = bytearray(data[:layout.header_end])
  struct.pack_into(">II", head, length_at, len(chunk), zlib.crc32(chunk))
  data = (bytes(head) + data[layout.header_end:start] + chunk +
          data[start + layout.lengths[t]:])
  return _fix_header_crc(data)


# --- .npz structure. --------------------------------------------------------


def _npz_arrays(data):
  """The arrays of a (valid, seed) .npz."""
  with np.load(io.BytesIO(data), allow_pickle=False) as archive:
    return {k: archive[k] for k in archive.files}


def _save_npz(arrays, compressed):
  buffer = io.BytesIO()
  (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
  return buffer.getvalue()


def npz_arrays(rng, data, seeds):
  try:
    arrays = _npz_arrays(data)
  except Exception:  # pylint: disable=broad-except
    return set_bytes(rng, data, seeds)
  if not {"shape", "codes"} <= set(arrays):
    return set_bytes(rng, data, seeds)
  shape, codes = arrays["shape"].copy(), arrays["codes"]
  choice = int(rng.integers(12))
  if choice == 0:  # One entry of the shape.
    shape[int(rng.integers(5))] = int(rng.choice(
        [0, -1, 2, 65, 1025, 2 ** 15, 2 ** 31 - 1]))
    arrays["shape"] = shape
  elif choice == 1:  # A consistent but huge shape: codes of the right size?
    shape[2:4] = int(rng.choice([2 ** 8, 2 ** 10, 2 ** 12]))
    arrays["shape"] = shape
    arrays.pop("image_size", None)
  elif choice == 2:
    arrays["shape"] = shape.astype(rng.choice(
        [np.float32, np.int64, np.uint8, np.int16]))
  elif choice == 3:
    arrays["shape"] = np.concatenate([shape, shape])[:int(rng.integers(11))]
  elif choice == 4:
    arrays["codes"] = codes[:int(rng.integers(len(codes) + 1))]
  elif choice == 5:
    arrays["codes"] = codes.astype(rng.choice([np.int8, np.int32, np.float64,
                                               np.bool_]))
  elif choice == 6:
    arrays["codes"] = codes.reshape(1, -1)
  elif choice == 7:
    size = arrays.get("image_size", np.int32([16, 16])).copy()
    size[int(rng.integers(2))] = int(rng.choice([0, -5, 1, 10 ** 6,
                                                 2 ** 31 - 1]))
    arrays["image_size"] = size
  elif choice == 8:
    arrays.pop(str(rng.choice(sorted(arrays))))
  elif choice == 9:
    arrays[str(rng.choice(["extra", "codes.npy", "x" * 200]))] = codes
  elif choice == 10:  # Pickled objects (np.savez pickles object arrays).
    key = str(rng.choice(["shape", "codes", "image_size"]))
    arrays[key] = np.array([None, 1, "x"], dtype=object)
  else:
    arrays["image_size"] = np.int32([16, 16, 16])[:int(rng.integers(4))]
  return _save_npz(arrays, compressed=rng.random() < 0.7)


def _npy(header, payload=b"", version=(1, 0)):
  """An .npy member with a literal header string."""
  text = header.encode("latin1")
  fmt = "<H" if version == (1, 0) else "<I"
  prefix = b"\x93NUMPY" + bytes(version)
  pad = -(len(prefix) + struct.calcsize(fmt) + len(text) + 1) % 64
  text += b" " * pad + b"\n"
  return prefix + struct.pack(fmt, len(text)) + text + payload


def npy_header(rng, data, seeds):
  """Replaces one member by an .npy with a hostile header."""
  try:
    arrays = _npz_arrays(data)
  except Exception:  # pylint: disable=broad-except
    return set_bytes(rng, data, seeds)
  key = str(rng.choice(["shape", "codes", "image_size"]))
  descr = str(rng.choice(["<i4", "<u1", "|u1", ">i8", "|O", "<V1000000000",
                          "<f8", "[('a', '<i4')]", "<U5"]))
  shape = [(5,), (2 ** 40,), (2 ** 31,), (-1,), (), (5, 5),
           (10 ** 9, 10 ** 9), (0,)][int(rng.integers(8))]
  fortran = bool(rng.random() < 0.2)
  if descr.startswith("["):
    header = (f"{{'descr': {descr}, 'fortran_order': {fortran}, "
              f"'shape': {shape}, }}")
  else:
    header = (f"{{'descr': '{descr}', 'fortran_order': {fortran}, "
              f"'shape': {shape}, }}")
  choice = rng.random()
  if choice < 0.1:
    header = "(" * 300 + ")" * 300
  elif choice < 0.2:
    header = header[:int(rng.integers(len(header)))]
  elif choice < 0.25:
    header = "{'descr': '<i4', " * 2000
  payload = rng.integers(256, size=int(rng.integers(0, 64)),
                         dtype=np.uint8).tobytes()
  version = (1, 0) if rng.random() < 0.7 else ((2, 0) if rng.random() < 0.7
                                                else (3, 0))
  buffer = io.BytesIO()
  method = zipfile.ZIP_DEFLATED if rng.random() < 0.5 else zipfile.ZIP_STORED
  with zipfile.ZipFile(buffer, "w", method) as archive:
    for name, array in arrays.items():
      if name == key:
        archive.writestr(name + ".npy", _npy(header, payload, version))
      else:
        member = io.BytesIO()
        np.save(member, array)
        archive.writestr(name + ".npy", member.getvalue())
  return buffer.getvalue()


# Zip header fields: signature -> {field: (offset, struct format)}.
_ZIP_FIELDS = {
    b"PK\x03\x04": {"flags": (6, "<H"), "method": (8, "<H"),
                    "crc": (14, "<I"), "compressed": (18, "<I"),
                    "size": (22, "<I"), "name_length": (26, "<H"),
                    "extra_length": (28, "<H")},
    b"PK\x01\x02": {"flags": (8, "<H"), "method": (10, "<H"),
                    "crc": (16, "<I"), "compressed": (20, "<I"),
                    "size": (24, "<I"), "name_length": (28, "<H"),
                    "extra_length": (30, "<H"), "comment_length": (32, "<H"),
                    "offset": (42, "<I")},
    b"PK\x05\x06": {"disk": (4, "<H"), "entries_disk": (8, "<H"),
                    "entries": (10, "<H"), "directory_size": (12, "<I"),
                    "directory_offset": (16, "<I"),
                    "comment_length": (20, "<H")},
}


def zip_fields(rng, data, seeds):
  records = [(i, sig) for sig in _ZIP_FIELDS
             for i in _find_all(data, sig)]
  if not records:
    return set_bytes(rng, data, seeds)
  at, sig = records[int(rng.integers(len(records)))]
  name = str(rng.choice(sorted(_ZIP_FIELDS[sig])))
  offset, fmt = _ZIP_FIELDS[sig][name]
  size = struct.calcsize(fmt)
  if at + offset + size > len(data):
    return set_bytes(rng, data, seeds)
  (original,) = struct.unpack_from(fmt, data, at + offset)
  if name == "method":
    value = int(rng.choice([0, 1, 8, 9, 12, 14, 93, 99, 0xffff]))
  elif name == "flags":
    value = original ^ int(rng.choice([0x1, 0x8, 0x40, 0x800, 0x2000]))
  else:
    value = _interesting_int(rng, size, original)
    if sig == b"PK\x05\x06" and name == "entries" and rng.random() < 0.3:
      value = 0xffff  # The ZIP64 sentinel.
  data = bytearray(data)
  struct.pack_into(fmt, data, at + offset, value)
  return bytes(data)


def _find_all(data, pattern):
  at = data.find(pattern)
  while at >= 0:
    yield at
    at = data.find(pattern, at + 1)


MUTATORS: Dict[str, Tuple[float, Callable]] = {
    # name: (weight, function(rng, data, seeds) -> bytes)
    "flip_bits": (3., flip_bits),
    "set_bytes": (2., set_bytes),
    "insert_bytes": (1., insert_bytes),
    "delete_bytes": (1., delete_bytes),
    "truncate": (2., truncate),
    "append": (.5, append),
    "splice": (1., splice),
    "random_bytes": (1., random_bytes),
    "header_field": (4., header_field),
    "chunk_payload": (1., chunk_payload),
    "npz_arrays": (2., npz_arrays),
    "npy_header": (1.5, npy_header),
    "zip_fields": (2., zip_fields),
}
_STREAM_ONLY = ("header_field", "chunk_payload")
_NPZ_ONLY = ("npz_arrays", "npy_header", "zip_fields")


def make_case(seeds, seed, index):
  """Case ``index`` of the run with random ``seed``: deterministic."""
  rng = np.random.default_rng([seed, index])
  base = seeds[int(rng.integers(len(seeds)))]
  if not any(s.format == "npz" for s in seeds) and rng.random() < 0.3:
    # The .npz path still gets some hostile zip files.
    return Case(index, "random_bytes", base.name,
                b"PK\x03\x04" + random_bytes(rng, b"", seeds), None)
  names = [n for n in MUTATORS
           if not (base.format == "npz" and n in _STREAM_ONLY) and
           not (base.format == "bitstream" and n in _NPZ_ONLY)]
  weights = np.array([MUTATORS[n][0] for n in names])
  name = str(rng.choice(names, p=weights / weights.sum()))
  data = MUTATORS[name][1](rng, base.data, seeds)
  if rng.random() < 0.2:  # Sometimes a second mutation.
    data = flip_bits(rng, data, seeds) if rng.random() < 0.5 else truncate(
        rng, data, seeds)
  iterations = None if rng.random() < 0.8 else int(rng.integers(1, 5))
  return Case(index, name, base.name, data, iterations)


# --- Running. -----------------------------------------------------------------


def _peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.


def run_case(codec, case, workdir, max_pixels=FUZZ_MAX_PIXELS):
  """Decodes one case as tools/decoder.py would.

  Returns:
    (outcome, detail): ("decoded", ""), ("error", the error class name) or
    ("bug", "<exception type>: <message>").
  """
  path = os.path.join(workdir, "input")
  with open(path, "wb") as f:
    f.write(case.data)
  try:
    cli.decode_file(codec, path, os.path.join(workdir, "out"),
                    case.iterations, overwrite=True, max_pixels=max_pixels)
  except errors.TfrnncompError as e:
    message = str(e)
    if "\n" in message or not message:
      return "bug", f"{type(e).__name__} without a one-line message"
    return "error", type(e).__name__
  except Exception as e:  # pylint: disable=broad-except
    return "bug", f"{type(e).__name__}: {cli.error_message(e)[:300]}"
  return "decoded", ""


def fuzz(codec, cases, seed=0, seeds=None, corpus_dir=None, time_limit=10.,
         memory_limit_mb=1024., max_pixels=FUZZ_MAX_PIXELS, start=0,
         progress=None, progress_every=1000):
  """Runs ``cases`` cases (indices ``start`` ...) against ``codec``.

  Args:
    codec: a :class:`~tfrnncomp.cli.SavedCodec`.
    cases: how many.
    seed: the run's random seed; case i depends on (seed, i) only.
    seeds: the files to mutate (default :func:`make_seeds` of ``codec``).
    corpus_dir: where findings are saved (and the running case, so that a
      crash leaves it behind); None to save nothing.
    time_limit: seconds above which a case is a ``slow`` finding.
    memory_limit_mb: peak-memory growth above which a case is a ``memory``
      finding.
    max_pixels: the decoding limit the cases run with.
    start: index of the first case.
    progress: called with the report every ``progress_every`` cases.

  Returns:
    A :class:`Report`.
  """
  seeds = make_seeds(codec) if seeds is None else seeds
  report = Report()
  if corpus_dir:
    os.makedirs(corpus_dir, exist_ok=True)
  begin = time.perf_counter()
  with tempfile.TemporaryDirectory(prefix="fuzz-") as workdir:
    for index in range(start, start + cases):
      case = make_case(seeds, seed, index)
      if corpus_dir:
        with open(os.path.join(corpus_dir, "current"), "wb") as f:
          f.write(case.data)
        with open(os.path.join(corpus_dir, "current.txt"), "w") as f:
          f.write(f"{case.name} seed={seed} iterations={case.iterations}\n")
      memory = _peak_rss_mb()
      t0 = time.perf_counter()
      outcome, detail = run_case(codec, case, workdir, max_pixels)
      seconds = time.perf_counter() - t0
      grown = _peak_rss_mb() - memory
      found = []
      if outcome == "bug":
        found.append(("bug", detail))
      if seconds > time_limit:
        found.append(("slow", f"{seconds:.1f} s ({outcome} {detail})"))
      if grown > memory_limit_mb:
        found.append(("memory", f"peak memory grew {grown:.0f} MB "
                                f"({outcome} {detail})"))
      report.outcomes[case.mutator, found[0][0] if found else outcome] += 1
      if outcome == "error":
        report.errors[detail] += 1
      for kind, text in found:
        saved = ""
        if corpus_dir:
          saved = os.path.join(corpus_dir, case.name)
          with open(saved, "wb") as f:
            f.write(case.data)
        report.findings.append(Finding(case.name, kind, text, saved))
      if seconds > report.slowest[0]:
        report.slowest = (seconds, case.name)
      report.cases += 1
      if progress and report.cases % progress_every == 0:
        report.seconds = time.perf_counter() - begin
        progress(report)
  report.seconds = time.perf_counter() - begin
  if corpus_dir:
    for name in ("current", "current.txt"):
      try:
        os.remove(os.path.join(corpus_dir, name))
      except OSError:
        pass
  return report
