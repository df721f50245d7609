"""The original release's code file: round trips, compatibility, rejection."""

import io
import os
import zipfile

import numpy as np
import pytest

from tfrnncomp import codes_io
from tfrnncomp import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "..", "shared", "fixtures",
                       "original_release_output_codes.npz")


def _random_codes(shape, seed=0):
  rng = np.random.default_rng(seed)
  return rng.choice(np.array([-1, 1], np.int8), size=shape)


def _write_npz(path, **arrays):
  np.savez_compressed(str(path), **arrays)
  return str(path)


def _original_decode(path):
  """The original decoder.py's unpacking, without its model."""
  loaded = np.load(path)
  shape = loaded["shape"]
  bits = np.unpackbits(loaded["codes"])[:np.prod(shape)]
  return np.reshape(bits, shape).astype(np.int8) * 2 - 1


@pytest.mark.parametrize("height,width,with_batch",
                         [(17, 33, True), (16, 16, False), (451, 300, False)])
def test_round_trip_keeps_codes_and_image_size(tmp_path, height, width,
                                               with_batch):
  h, w = -(-height // 16), -(-width // 16)
  codes = _random_codes((3, h, w, 32))
  path = str(tmp_path / "codes.npz")
  written = codes_io.save_codes(path, codes[:, None] if with_batch else codes,
                                height, width)
  assert written == os.path.getsize(path)
  loaded, loaded_height, loaded_width = codes_io.load_codes(path)
  assert loaded.dtype == np.int8
  np.testing.assert_array_equal(loaded, codes[:, None])
  assert (loaded_height, loaded_width) == (height, width)
  # No temporary file is left beside the output.
  assert os.listdir(tmp_path) == ["codes.npz"]


def test_written_arrays_are_the_original_format(tmp_path):
  codes = _random_codes((2, 1, 3, 5, 32), seed=1)
  path = str(tmp_path / "codes.npz")
  codes_io.save_codes(path, codes, 40, 70)
  with np.load(path) as f:
    assert sorted(f.files) == ["codes", "image_size", "shape"]
    assert f["shape"].dtype == np.int32
    np.testing.assert_array_equal(f["shape"], [2, 1, 3, 5, 32])
    assert f["codes"].dtype == np.uint8
    np.testing.assert_array_equal(
        f["codes"], np.packbits(((codes + 1) // 2).reshape(-1)))
    np.testing.assert_array_equal(f["image_size"], [40, 70])
  np.testing.assert_array_equal(_original_decode(path), codes)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_shape_as_int32_or_int64_loads_without_image_size(tmp_path, dtype):
  codes = _random_codes((4, 1, 2, 3, 8), seed=2)
  path = _write_npz(tmp_path / "codes.npz",
                    shape=np.asarray(codes.shape, dtype),
                    codes=np.packbits(((codes + 1) // 2).reshape(-1)))
  loaded, height, width = codes_io.load_codes(path)
  np.testing.assert_array_equal(loaded, codes)
  assert (height, width) == (32, 48)


def test_original_release_file_loads():
  codes, height, width = codes_io.load_codes(FIXTURE)
  assert codes.shape == (16, 1, 36, 60, 32)
  assert codes.dtype == np.int8
  assert set(np.unique(codes)) == {-1, 1}
  assert (height, width) == (576, 960)
  np.testing.assert_array_equal(codes, _original_decode(FIXTURE))


def test_rewriting_the_original_file_gives_the_same_arrays(tmp_path):
  codes, height, width = codes_io.load_codes(FIXTURE)
  path = str(tmp_path / "copy.npz")
  codes_io.save_codes(path, codes, height, width)
  with np.load(FIXTURE) as original, np.load(path) as copy:
    for key in ("shape", "codes"):
      assert copy[key].dtype == original[key].dtype
      assert copy[key].tobytes() == original[key].tobytes()


def test_save_refuses_to_overwrite(tmp_path):
  codes = _random_codes((1, 1, 1, 8))
  path = str(tmp_path / "codes.npz")
  codes_io.save_codes(path, codes, 16, 16)
  with pytest.raises(errors.InputError, match="exists"):
    codes_io.save_codes(path, -codes, 16, 16)
  np.testing.assert_array_equal(codes_io.load_codes(path)[0][:, 0], codes)
  codes_io.save_codes(path, -codes, 16, 16, overwrite=True)
  np.testing.assert_array_equal(codes_io.load_codes(path)[0][:, 0], -codes)


@pytest.mark.parametrize("codes,height,width,match", [
    (np.zeros((1, 1, 1, 8)), 16, 16, r"\+1 or -1"),
    (np.ones((1, 1, 1)), 16, 16, "shape"),
    (np.ones((1, 2, 1, 1, 8)), 16, 16, "batch"),
    (np.ones((65, 1, 1, 8)), 16, 16, "iterations"),
    (np.ones((1, 2, 2, 8)), 16, 32, "image size"),
    (np.ones((1, 2, 2, 8)), 33, 32, "image size"),
    (np.ones((1, 2, 2, 8)), 0, 32, "image size"),
])
def test_save_rejects_bad_codes(tmp_path, codes, height, width, match):
  path = str(tmp_path / "codes.npz")
  with pytest.raises(errors.InputError, match=match):
    codes_io.save_codes(path, codes, height, width)
  assert not os.listdir(tmp_path)


def _packed(shape):
  return np.zeros(-(-int(np.prod(shape)) // 8), np.uint8)


def _zip_with(path, members):
  with zipfile.ZipFile(path, "w") as z:
    for name, data in members.items():
      z.writestr(name, data)
  return str(path)


def _raw(path, data):
  path.write_bytes(data)
  return str(path)


def _npy_bytes(array):
  buffer = io.BytesIO()
  np.save(buffer, array)
  return buffer.getvalue()


GOOD_SHAPE = np.int32([2, 1, 3, 4, 32])

MALFORMED = {
    "text": lambda p: _raw(p, b"not codes"),
    "empty": lambda p: _raw(p, b""),
    "npy": lambda p: _raw(p, _npy_bytes(GOOD_SHAPE)),
    "bad zip": lambda p: _raw(p, b"PK\x03\x04" + b"\0" * 40),
    "no keys": lambda p: _write_npz(p, other=GOOD_SHAPE),
    "no codes": lambda p: _write_npz(p, shape=GOOD_SHAPE),
    "no shape": lambda p: _write_npz(p, codes=_packed(GOOD_SHAPE)),
    "shape length 4": lambda p: _write_npz(
        p, shape=np.int32([2, 3, 4, 32]), codes=_packed([2, 3, 4, 32])),
    "float shape": lambda p: _write_npz(
        p, shape=GOOD_SHAPE.astype(np.float32), codes=_packed(GOOD_SHAPE)),
    "zero dim": lambda p: _write_npz(
        p, shape=np.int32([2, 1, 0, 4, 32]), codes=np.zeros(0, np.uint8)),
    "negative dims": lambda p: _write_npz(
        p, shape=np.int32([2, 1, -3, -4, 32]), codes=_packed(GOOD_SHAPE)),
    "batch 2": lambda p: _write_npz(
        p, shape=np.int32([2, 2, 3, 4, 32]), codes=_packed([2, 2, 3, 4, 32])),
    "65 iterations": lambda p: _write_npz(
        p, shape=np.int32([65, 1, 1, 1, 32]), codes=_packed([65, 1, 1, 1, 32])),
    "too many pixels": lambda p: _write_npz(
        p, shape=np.int64([1, 1, 2 ** 15, 2 ** 15, 1]), codes=_packed([8])),
    "codes one byte short": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=_packed(GOOD_SHAPE)[1:]),
    "codes one byte long": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=np.zeros(97, np.uint8)),
    "codes int8": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=_packed(GOOD_SHAPE).astype(np.int8)),
    "codes 2-D": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=_packed(GOOD_SHAPE).reshape(8, 12)),
    "pickled object": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=np.array([None, 1], dtype=object)),
    "image_size too small": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=_packed(GOOD_SHAPE),
        image_size=np.int32([32, 64])),
    "image_size too large": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=_packed(GOOD_SHAPE),
        image_size=np.int32([49, 64])),
    "image_size length 3": lambda p: _write_npz(
        p, shape=GOOD_SHAPE, codes=_packed(GOOD_SHAPE),
        image_size=np.int32([48, 64, 3])),
    "member not .npy": lambda p: _zip_with(
        p, {"shape.npy": _npy_bytes(GOOD_SHAPE), "codes": b"\0" * 96}),
    "codes bigger than the shape says": lambda p: _zip_with(
        p, {"shape.npy": _npy_bytes(GOOD_SHAPE),
            "codes.npy": _npy_bytes(np.zeros(10 ** 6, np.uint8))}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_files_raise_format_error(tmp_path, name):
  path = MALFORMED[name](tmp_path / "codes.npz")
  with pytest.raises(errors.FormatError) as info:
    codes_io.load_codes(path)
  message = str(info.value)
  assert "\n" not in message and path in message


def test_truncated_file_raises_format_error(tmp_path):
  path = str(tmp_path / "codes.npz")
  codes_io.save_codes(path, _random_codes((4, 5, 6, 32)), 80, 96)
  data = open(path, "rb").read()
  for size in (10, len(data) // 2, len(data) - 10):
    with open(path, "wb") as f:
      f.write(data[:size])
    with pytest.raises(errors.FormatError):
      codes_io.load_codes(path)


def test_missing_file_and_directory_raise_input_error(tmp_path):
  with pytest.raises(errors.InputError, match="no such file"):
    codes_io.load_codes(str(tmp_path / "missing.npz"))
  with pytest.raises(errors.InputError, match="directory"):
    codes_io.load_codes(str(tmp_path))
