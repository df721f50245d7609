"""The original release's code file (``.npz``): reader and writer.

The TF1 release of Toderici et al. 2017 (``image_encoder/encoder.py`` in
tensorflow/models) stores the binarizer's output of one image as a NumPy
``np.savez_compressed`` archive with two arrays:

- ``shape``: int32 ``[5]`` = ``(iterations, 1, H/16, W/16, bits)``, the shape
  of the code tensor (batch 1; ``bits`` = 32 for the released model);
- ``codes``: uint8 ``[ceil(prod(shape) / 8)]`` = ``np.packbits`` of the codes
  mapped to {0, 1} (1 for +1, 0 for -1), flattened in C order (iteration
  first, bits last); the last byte is zero-padded.

Files written here hold exactly these two arrays, byte for byte, so the
original ``decoder.py`` reads them. One key is added:

- ``image_size``: int32 ``[2]`` = ``(height, width)`` of the input image, so
  that decoding crops to the input size instead of the padded one
  (``ceil(height / 16) == H/16`` and likewise for the width). Files without it
  (the original's) decode to ``16 * H/16`` x ``16 * W/16`` pixels.

Validation rules of :func:`load_codes` (every violation is a
:class:`~tfrnncomp.errors.FormatError` with a one-line message): the file is a
zip archive of ``.npy`` arrays (no pickles); ``shape`` is 5 integers (int32 or
int64), all positive, with batch 1, at most :data:`MAX_ITERATIONS`
iterations, at most :data:`MAX_BITS` bits per block, at most
:data:`MAX_PIXELS` padded pixels and :data:`MAX_CODE_BITS` bits in all;
``codes`` is a 1-D uint8 array of exactly ``ceil(prod(shape) / 8)`` bytes;
``image_size``, if present, is 2 integers consistent with ``shape``. Other keys
are ignored (never read).

Hostile files. The reader is a small zip and ``.npy`` parser of its own (not
``np.load``), so that every size is checked before it is used: the file has
at most :data:`MAX_FILE_BYTES` bytes; the zip directory (end record) is read
first and may list at most :data:`MAX_MEMBERS` members in at most 64 KiB
(no ZIP64 directory); members must be stored or deflated, unencrypted; each
``.npy`` header (version 1.0 or 2.0, at most 10000 bytes) must declare the
dtype and shape that key needs, never Python objects (nothing is unpickled),
and the member is then read up to exactly that many bytes, so a zip bomb
inflates no further than the shape allows, and to its end, so that its
CRC-32 is checked. Anything else is a :class:`~tfrnncomp.errors.FormatError`.
The codes are decompressed last, after ``shape`` and ``image_size`` are
validated (and, with ``max_pixels``, the image size is under the caller's
limit), so a small file cannot make the reader allocate more than the
shape it declares.
"""

import io
import os
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from tfrnncomp import errors

__all__ = ["BLOCK", "MAX_ITERATIONS", "MAX_BITS", "MAX_PIXELS",
           "MAX_CODE_BITS", "MAX_FILE_BYTES", "MAX_MEMBERS", "check_shape",
           "save_codes", "load_codes"]

BLOCK = 16
"""Pixels per code position along each axis."""

MAX_ITERATIONS = 64
"""Most iterations a code file may hold (as ``CodecConfig.iterations``)."""

MAX_BITS = 1024
"""Most bits per block and iteration (as ``CodecConfig.bits``)."""

MAX_PIXELS = 2 ** 28
"""Most pixels of the padded image (16384 x 16384)."""

MAX_CODE_BITS = 2 ** 30
"""Most code bits in one file (128 MiB packed, 1 GiB unpacked)."""

_NPY_HEADER_SLACK = 4096  # Bytes an .npy header may add to the packed codes.

MAX_FILE_BYTES = MAX_CODE_BITS // 8 + 2 ** 20
"""Largest code file :func:`load_codes` opens (the codes, stored, + 1 MiB)."""

MAX_MEMBERS = 64
"""Most members the zip directory of a code file may list."""

_MAX_DIRECTORY = 2 ** 16  # Bytes of the zip's central directory.
_END_RECORD = struct.Struct("<4s4H2LH")  # Zip end of central directory.
_ZIP64_LOCATOR = b"PK\x06\x07"
# What Python's zip and .npy readers raise on malformed data.
_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError, struct.error,
                OverflowError, KeyError, IndexError, TypeError,
                tokenize.TokenError)  # NumPy tokenizes .npy headers.


def check_shape(shape, error=errors.InputError):
  """Validates a code shape (T, 1, h, w, bits) against the format's limits.

  Raises:
    ``error`` (a callable taking the message), if the shape is invalid.
  """
  shape = tuple(int(n) for n in shape)
  if len(shape) != 5:
    raise error(f"code shape must have 5 entries, got {len(shape)}")
  iterations, batch, h, w, bits = shape
  if min(shape) < 1:
    raise error(f"code shape {tuple(shape)} has a non-positive entry")
  if batch != 1:
    raise error(f"code shape {tuple(shape)} has batch size {batch}, not 1")
  if iterations > MAX_ITERATIONS:
    raise error(f"{iterations} iterations exceed the maximum of "
                f"{MAX_ITERATIONS}")
  if bits > MAX_BITS:
    raise error(f"{bits} bits per block exceed the maximum of {MAX_BITS}")
  if h * w * BLOCK * BLOCK > MAX_PIXELS:
    raise error(f"{h * BLOCK}x{w * BLOCK} pixels exceed the maximum of "
                f"{MAX_PIXELS}")
  if iterations * h * w * bits > MAX_CODE_BITS:
    raise error(f"{iterations * h * w * bits} code bits exceed the maximum "
                f"of {MAX_CODE_BITS}")


def _check_image_size(height, width, h, w, error):
  """Checks that a height x width image is what h x w code positions cover."""
  if not (0 < height <= h * BLOCK and 0 < width <= w * BLOCK and
          -(-height // BLOCK) == h and -(-width // BLOCK) == w):
    raise error(f"image size {height}x{width} does not match {h}x{w} code "
                f"positions ({h * BLOCK}x{w * BLOCK} pixels after padding)")


def save_codes(path, codes, height, width, overwrite=False):
  """Writes codes of a height x width image to ``path`` in the release format.

  Args:
    path: output file name, used as given (no ``.npz`` is appended).
    codes: +-1 codes, [T, 1, h, w, bits] or [T, h, w, bits] (any integer or
      float dtype), with h = ceil(height / 16) and w = ceil(width / 16).
    height: the input image's height in pixels.
    width: the input image's width in pixels.
    overwrite: replace an existing file.

  Returns:
    The number of bytes written.

  Raises:
    InputError: if the codes or sizes are invalid, or ``path`` exists and
      ``overwrite`` is false.
  """
  from tfrnncomp.export import write_atomic  # pylint: disable=g-import-not-at-top
  codes = np.asarray(codes)
  if codes.ndim == 4:
    codes = codes[:, None]
  if codes.ndim != 5:
    raise errors.InputError(f"codes must be [T, 1, h, w, bits] or "
                            f"[T, h, w, bits], got shape {codes.shape}")
  check_shape(codes.shape, errors.InputError)
  if not np.all(np.abs(codes) == 1):
    raise errors.InputError("codes must be +1 or -1")
  height, width = int(height), int(width)
  _check_image_size(height, width, codes.shape[2], codes.shape[3],
                    errors.InputError)
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory")
  if os.path.exists(path) and not overwrite:
    raise errors.InputError(f"{path} exists (use --overwrite to replace it)")

  buffer = io.BytesIO()
  np.savez_compressed(
      buffer,
      shape=np.asarray(codes.shape, np.int32),
      codes=np.packbits((codes > 0).astype(np.uint8).reshape(-1)),
      image_size=np.asarray([height, width], np.int32))
  data = buffer.getvalue()
  write_atomic(path, data)
  return len(data)


def _one_line(error):
  text = " ".join(str(error).split()) or type(error).__name__
  return text[:200]


def _check_directory(f, size, path):
  """Checks the zip's end record before zipfile parses the directory.

  zipfile builds an object per directory entry; a directory of millions of
  tiny entries would cost gigabytes, so its size and entry count are bounded
  here first.
  """
  tail_size = min(size, _END_RECORD.size + 2 ** 16 + 20)
  f.seek(size - tail_size)
  tail = f.read(tail_size)
  at = tail.rfind(b"PK\x05\x06")
  if at < 0 or at + _END_RECORD.size > len(tail):
    raise errors.FormatError(f"{path} is not an .npz code file (no zip end "
                             f"record)")
  (_, _, _, _, entries, directory_size, _,
   _) = _END_RECORD.unpack_from(tail, at)
  if at >= 20 and tail[at - 20:at - 16] == _ZIP64_LOCATOR:
    raise errors.FormatError(f"{path}: ZIP64 directories are not supported "
                             f"in code files")
  if entries > MAX_MEMBERS or directory_size > _MAX_DIRECTORY:
    raise errors.FormatError(f"{path}: the zip directory lists {entries} "
                             f"members in {directory_size} bytes, more than a "
                             f"code file has")


def _member(archive, key, path):
  """The ZipInfo of array ``key`` (``key.npy``), or None if absent."""
  names = archive.namelist()
  if key + ".npy" not in names:
    if key in names:  # np.load would return its raw bytes.
      raise errors.FormatError(f"{path}: {key!r} is not an .npy array")
    return None
  info = archive.getinfo(key + ".npy")
  if info.flag_bits & 0x1:
    raise errors.FormatError(f"{path}: {key!r} is encrypted")
  if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
    raise errors.FormatError(f"{path}: {key!r} uses zip compression method "
                             f"{info.compress_type} (only stored and deflate "
                             f"are read)")
  return info


def _read_npy(archive, info, key, path, check):
  """Reads member ``info`` as an .npy array after ``check``-ing its header.

  ``check(dtype, shape)`` raises FormatError unless the declared array is
  what ``key`` must be; only then are its bytes read, exactly as many as
  declared, and to the member's end (so zipfile checks its CRC-32).
  """
  try:
    with archive.open(info) as f:
      version = np.lib.format.read_magic(f)
      if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
      elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
      else:
        raise errors.FormatError(f"{path}: {key!r} has unsupported .npy "
                                 f"format version {version}")
      if dtype.hasobject:
        raise errors.FormatError(f"{path}: {key!r} holds Python objects "
                                 f"(pickles are never read)")
      if any(n < 0 for n in shape):
        raise errors.FormatError(f"{path}: {key!r} has negative shape "
                                 f"{shape}")
      check(dtype, shape)
      size = int(np.prod(shape, dtype=object)) * dtype.itemsize
      data = f.read(size + 1)
  except errors.FormatError:
    raise
  except _READ_ERRORS as e:
    raise errors.FormatError(f"{path}: cannot read array {key!r}: "
                             f"{_one_line(e)}") from None
  if len(data) != size:
    raise errors.FormatError(f"{path}: {key!r} has {len(data)} bytes of data"
                             f"{' or more' if len(data) > size else ''}, its "
                             f".npy header declares {size}")
  return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran
                                            else "C")


def _int_vector(length, key, path):
  """A check for _read_npy: ``length`` integers."""
  def check(dtype, shape):
    if dtype.kind not in "iu" or dtype.itemsize > 8 or shape != (length,):
      raise errors.FormatError(f"{path}: {key!r} must be {length} integers, "
                               f"got {dtype} array of shape {shape}")
  return check


def _as_ints(array):
  return tuple(int(v) for v in array)


def load_codes(path, max_pixels=None):
  """Reads a code file written by :func:`save_codes` or the original encoder.

  Args:
    path: the ``.npz`` file.
    max_pixels: if given, a file whose padded image (16h x 16w) has more
      pixels is refused with an InputError before its codes are read.

  Returns:
    ``(codes, height, width)``: int8 +-1 codes [T, 1, h, w, bits] and the
    image size to decode to (``image_size`` if stored, else 16h x 16w).

  Raises:
    InputError: if ``path`` does not exist, is a directory, or is over
      ``max_pixels``.
    FormatError: if the file is not a valid code file (see the module
      docstring for the rules).
  """
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory, not a code file")
  if not os.path.exists(path):
    raise errors.InputError(f"{path}: no such file")
  try:
    with open(path, "rb") as f:
      magic = f.read(6)
      size = os.fstat(f.fileno()).st_size
      if magic.startswith(b"PK") and size <= MAX_FILE_BYTES:
        _check_directory(f, size, path)
  except OSError as e:
    raise errors.InputError(f"{path}: {e.strerror}") from None
  if magic.startswith(b"\x93NUMPY"):
    raise errors.FormatError(f"{path} is a single .npy array, not an .npz "
                             f"code file")
  if not magic.startswith(b"PK"):
    raise errors.FormatError(f"{path} is not an .npz code file (it is not a "
                             f"zip archive)")
  if size > MAX_FILE_BYTES:
    raise errors.FormatError(f"{path} has {size} bytes, more than a code file "
                             f"can ({MAX_FILE_BYTES})")
  try:
    archive = zipfile.ZipFile(path)
  except PermissionError as e:
    raise errors.InputError(f"{path}: {e.strerror}") from None
  except _READ_ERRORS as e:
    raise errors.FormatError(f"{path} is not an .npz code file: "
                             f"{_one_line(e)}") from None
  with archive:
    members = {k: _member(archive, k, path)
               for k in ("shape", "codes", "image_size")}
    missing = [k for k in ("shape", "codes") if members[k] is None]
    if missing:
      keys = sorted(n[:-4] if n.endswith(".npy") else n
                    for n in archive.namelist())
      raise errors.FormatError(f"{path} has no {' or '.join(missing)} array "
                               f"(keys: {', '.join(keys) or 'none'})")
    shape = _as_ints(_read_npy(archive, members["shape"], "shape", path,
                               _int_vector(5, "shape", path)))
    check_shape(shape, lambda m: errors.FormatError(f"{path}: {m}"))
    iterations, _, h, w, bits = shape
    num_bits = iterations * h * w * bits
    num_bytes = -(-num_bits // 8)

    if members["image_size"] is not None:
      height, width = _as_ints(_read_npy(
          archive, members["image_size"], "image_size", path,
          _int_vector(2, "image_size", path)))
      _check_image_size(height, width, h, w,
                        lambda m: errors.FormatError(f"{path}: {m}"))
    else:
      height, width = h * BLOCK, w * BLOCK
    if max_pixels is not None and h * w * BLOCK * BLOCK > max_pixels:
      raise errors.InputError(
          f"{path}: its {height}x{width} image ({h * w * BLOCK * BLOCK} "
          f"pixels padded) is over the decoding limit of {max_pixels} pixels")

    # Refuse to decompress more than the shape can explain.
    if members["codes"].file_size > num_bytes + _NPY_HEADER_SLACK:
      raise errors.FormatError(f"{path}: 'codes' holds "
                               f"{members['codes'].file_size} bytes, the "
                               f"shape {shape} needs {num_bytes}")

    def check_codes(dtype, codes_shape):
      if dtype != np.uint8 or len(codes_shape) != 1:
        raise errors.FormatError(f"{path}: 'codes' must be a 1-D uint8 array, "
                                 f"got {dtype} of shape {codes_shape}")
      if codes_shape[0] != num_bytes:
        raise errors.FormatError(f"{path}: 'codes' has {codes_shape[0]} "
                                 f"bytes, the shape {shape} needs {num_bytes}")

    packed = _read_npy(archive, members["codes"], "codes", path, check_codes)

  bits_01 = np.unpackbits(packed, count=num_bits)
  codes = (bits_01.astype(np.int8) * 2 - 1).reshape(shape)
  return codes, height, width
