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
are ignored. The sizes are checked before the codes are decompressed, so a
small file cannot claim gigabytes.
"""

import io
import os
import zipfile
import zlib

import numpy as np

from tfrnncomp import errors

__all__ = ["BLOCK", "MAX_ITERATIONS", "MAX_BITS", "MAX_PIXELS",
           "MAX_CODE_BITS", "check_shape", "save_codes", "load_codes"]

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


def _read_array(archive, key, path):
  try:
    array = archive[key]
  except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise errors.FormatError(f"{path}: cannot read array {key!r}: "
                             f"{_one_line(e)}") from None
  if not isinstance(array, np.ndarray):  # A member that is not an .npy.
    raise errors.FormatError(f"{path}: {key!r} is not an .npy array")
  return array


def _one_line(error):
  text = " ".join(str(error).split()) or type(error).__name__
  return text[:200]


def _as_ints(array, length, key, path):
  """A 1-D integer array of ``length`` entries as a tuple of Python ints."""
  if array.dtype.kind not in "iu" or array.shape != (length,):
    raise errors.FormatError(f"{path}: {key!r} must be {length} integers, got "
                             f"{array.dtype} array of shape {array.shape}")
  return tuple(int(v) for v in array)


def load_codes(path):
  """Reads a code file written by :func:`save_codes` or the original encoder.

  Args:
    path: the ``.npz`` file.

  Returns:
    ``(codes, height, width)``: int8 +-1 codes [T, 1, h, w, bits] and the
    image size to decode to (``image_size`` if stored, else 16h x 16w).

  Raises:
    InputError: if ``path`` does not exist or is a directory.
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
  except OSError as e:
    raise errors.InputError(f"{path}: {e.strerror}") from None
  if magic.startswith(b"\x93NUMPY"):
    raise errors.FormatError(f"{path} is a single .npy array, not an .npz "
                             f"code file")
  if not magic.startswith(b"PK"):
    raise errors.FormatError(f"{path} is not an .npz code file (it is not a "
                             f"zip archive)")
  try:
    archive = np.load(path, allow_pickle=False)
  except PermissionError as e:
    raise errors.InputError(f"{path}: {e.strerror}") from None
  except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
    raise errors.FormatError(f"{path} is not an .npz code file: "
                             f"{_one_line(e)}") from None
  with archive:
    missing = [k for k in ("shape", "codes") if k not in archive.files]
    if missing:
      raise errors.FormatError(f"{path} has no {' or '.join(missing)} array "
                               f"(keys: {', '.join(archive.files) or 'none'})")
    shape = _as_ints(_read_array(archive, "shape", path), 5, "shape", path)
    check_shape(shape, lambda m: errors.FormatError(f"{path}: {m}"))
    iterations, _, h, w, bits = shape
    num_bits = iterations * h * w * bits
    num_bytes = -(-num_bits // 8)

    # Refuse to decompress more than the shape can explain.
    try:
      stored = archive.zip.getinfo("codes.npy").file_size
    except KeyError:
      stored = None
    if stored is not None and stored > num_bytes + _NPY_HEADER_SLACK:
      raise errors.FormatError(f"{path}: 'codes' holds {stored} bytes, the "
                               f"shape {shape} needs {num_bytes}")
    packed = _read_array(archive, "codes", path)
    if packed.dtype != np.uint8 or packed.ndim != 1:
      raise errors.FormatError(f"{path}: 'codes' must be a 1-D uint8 array, "
                               f"got {packed.dtype} of shape {packed.shape}")
    if packed.size != num_bytes:
      raise errors.FormatError(f"{path}: 'codes' has {packed.size} bytes, the "
                               f"shape {shape} needs {num_bytes}")

    if "image_size" in archive.files:
      height, width = _as_ints(_read_array(archive, "image_size", path), 2,
                               "image_size", path)
      _check_image_size(height, width, h, w,
                        lambda m: errors.FormatError(f"{path}: {m}"))
    else:
      height, width = h * BLOCK, w * BLOCK

  bits_01 = np.unpackbits(packed, count=num_bits)
  codes = (bits_01.astype(np.int8) * 2 - 1).reshape(shape)
  return codes, height, width
