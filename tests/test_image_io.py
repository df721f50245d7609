"""read_image's conversion rule to 8-bit RGB, its errors, and write_png."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import errors
from tfrnncomp import image_io


def _save(image, path, **kwargs):
  image.save(str(path), **kwargs)
  return str(path)


def _rgb(height=5, width=7, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_rgb_png_is_read_exactly(tmp_path):
  x = _rgb()
  x_read = image_io.read_image(_save(Image.fromarray(x), tmp_path / "a.png"))
  assert x_read.dtype == np.uint8
  np.testing.assert_array_equal(x_read, x)


@pytest.mark.parametrize("mode", ["L", "1"])
def test_grayscale_is_replicated(tmp_path, mode):
  gray = np.array([[0, 10, 128, 255]], np.uint8)
  image = Image.fromarray(gray).convert(mode)
  expected = np.asarray(image.convert("L"))
  x = image_io.read_image(_save(image, tmp_path / "g.png"))
  assert x.shape == (1, 4, 3)
  for c in range(3):
    np.testing.assert_array_equal(x[..., c], expected)


@pytest.mark.parametrize("extension", ["png", "tiff"])
def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path, extension):
  values = np.array([[0, 257, 1000, 32896, 65535]], np.uint16)
  path = _save(Image.fromarray(values), tmp_path / f"g16.{extension}")
  assert Image.open(path).mode.startswith("I")
  x = image_io.read_image(path)
  np.testing.assert_array_equal(x[..., 0], [[0, 1, 4, 128, 255]])
  np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_32_bit_integer_and_float_grayscale(tmp_path):
  ints = Image.fromarray(np.array([[0, 514, 70000]], np.int32), "I")
  x = image_io.read_image(_save(ints, tmp_path / "i.tiff"))
  np.testing.assert_array_equal(x[..., 1], [[0, 2, 255]])
  floats = Image.fromarray(np.array([[-0.5, 0., 0.5, 1., 2.]], np.float32))
  x = image_io.read_image(_save(floats, tmp_path / "f.tiff"))
  np.testing.assert_array_equal(x[..., 1], [[0, 0, 128, 255, 255]])


def test_palette_is_expanded(tmp_path):
  x = _rgb(6, 6, seed=3)
  image = Image.fromarray(x).quantize(16)
  assert "transparency" not in image.info
  x_read = image_io.read_image(_save(image, tmp_path / "p.png"))
  np.testing.assert_array_equal(x_read, np.asarray(image.convert("RGB")))


def test_palette_transparency_is_composited_over_white(tmp_path):
  image = Image.new("P", (2, 1))
  image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
  image.putpixel((0, 0), 0)
  image.putpixel((1, 0), 1)
  path = _save(image, tmp_path / "pt.png", transparency=1)
  x = image_io.read_image(path)
  np.testing.assert_array_equal(x[0], [[255, 0, 0], [255, 255, 255]])


@pytest.mark.parametrize("mode,key", [("RGB", (1, 2, 3)), ("L", 1)])
def test_color_key_is_composited_over_white(tmp_path, mode, key):
  x = np.array([[[1, 2, 3], [1, 1, 1], [9, 9, 9]]], np.uint8)
  image = Image.fromarray(x).convert(mode)
  path = _save(image, tmp_path / "key.png", transparency=key)
  assert Image.open(path).info["transparency"] == key
  x_read = image_io.read_image(path)
  expected = np.asarray(image.convert("RGB")).copy()
  expected[0, 0 if mode == "RGB" else 1] = 255
  np.testing.assert_array_equal(x_read, expected)


def test_alpha_is_composited_over_white(tmp_path):
  rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0],
                    [200, 100, 0, 128]]], np.uint8)
  x = image_io.read_image(_save(Image.fromarray(rgba), tmp_path / "a.png"))
  # round((c * a + 255 * (255 - a)) / 255) for a = 128.
  np.testing.assert_array_equal(
      x[0], [[200, 100, 0], [255, 255, 255], [227, 177, 127]])
  la = Image.fromarray(rgba[..., [0, 3]], "LA")
  x = image_io.read_image(_save(la, tmp_path / "la.png"))
  np.testing.assert_array_equal(x[0, :, 0], [200, 255, 227])


@pytest.mark.parametrize("mode,extension", [("CMYK", "jpg"), ("CMYK", "tiff"),
                                            ("YCbCr", "jpg"), ("LAB", "tiff")])
def test_other_color_spaces_are_converted_by_pillow(tmp_path, mode, extension):
  image = Image.fromarray(_rgb(8, 8, seed=4)).convert(mode)
  path = _save(image, tmp_path / f"c.{extension}")
  x = image_io.read_image(path)
  assert x.shape == (8, 8, 3) and x.dtype == np.uint8
  np.testing.assert_array_equal(x, np.asarray(Image.open(path).convert("RGB")))


@pytest.mark.parametrize("extension", ["jpg", "png"])
def test_exif_orientation_is_applied(tmp_path, extension):
  x = np.zeros((2, 4, 3), np.uint8)
  x[0, 0] = 255  # A white top-left corner.
  exif = Image.Exif()
  exif[0x0112] = 6  # Displayed rotated 90 degrees clockwise.
  path = _save(Image.fromarray(x), tmp_path / f"r.{extension}",
               exif=exif.tobytes(), **({"quality": 100}
                                       if extension == "jpg" else {}))
  x_read = image_io.read_image(path)
  assert x_read.shape == (4, 2, 3)
  assert x_read[0, 1].min() > 200 and x_read[3, 0].max() < 50


def _png_bytes():
  buffer = io.BytesIO()
  Image.fromarray(_rgb(64, 64)).save(buffer, format="PNG")
  return buffer.getvalue()


@pytest.mark.parametrize("name,data,match", [
    ("empty.png", b"", "empty"),
    ("text.png", b"this is not an image\n", "not an image"),
    ("random.png", bytes(range(256)) * 4, "not an image"),
    ("truncated.png", _png_bytes()[:2000], "corrupt or truncated"),
    ("header_only.png", _png_bytes()[:60], "corrupt or truncated"),
    ("corrupt.png", _png_bytes()[:100] + b"\0" * 500 + _png_bytes()[600:],
     "corrupt or truncated"),
])
def test_unreadable_files_raise_input_error(tmp_path, name, data, match):
  path = tmp_path / name
  path.write_bytes(data)
  with pytest.raises(errors.InputError, match=match) as info:
    image_io.read_image(str(path))
  assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_missing_path_and_directory_raise_input_error(tmp_path):
  with pytest.raises(errors.InputError, match="no such file"):
    image_io.read_image(str(tmp_path / "missing.png"))
  with pytest.raises(errors.InputError, match="directory"):
    image_io.read_image(str(tmp_path))


def test_too_many_pixels_raise_input_error(tmp_path, monkeypatch):
  path = _save(Image.fromarray(_rgb(40, 50)), tmp_path / "big.png")
  monkeypatch.setattr(image_io, "MAX_PIXELS", 1999)
  with pytest.raises(errors.InputError, match="maximum"):
    image_io.read_image(path)
  monkeypatch.setattr(image_io, "MAX_PIXELS", 2 ** 28)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Warns above this.
  with pytest.raises(errors.InputError, match="decompression bomb"):
    image_io.read_image(path)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Fails above 2x this.
  with pytest.raises(errors.InputError, match="decompression bomb"):
    image_io.read_image(path)


def test_write_png_round_trip_and_no_overwrite(tmp_path):
  x = _rgb(3, 9)
  path = str(tmp_path / "out.png")
  image_io.write_png(path, x)
  np.testing.assert_array_equal(image_io.read_image(path), x)
  with pytest.raises(errors.InputError, match="exists"):
    image_io.write_png(path, 255 - x)
  np.testing.assert_array_equal(image_io.read_image(path), x)
  image_io.write_png(path, 255 - x, overwrite=True)
  np.testing.assert_array_equal(image_io.read_image(path), 255 - x)
  with pytest.raises(errors.InputError, match="uint8"):
    image_io.write_png(str(tmp_path / "f.png"), x.astype(np.float32))
  assert sorted(os.listdir(tmp_path)) == ["out.png"]


def _png_chunks(width, height, bit_depth, color_type, raw=b""):
  """A PNG with the given header and (zlib-compressed) raw scanlines."""
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data)))
  header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0,
                       0)
  return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
          chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16_bit_color_keeps_the_high_byte(tmp_path):
  values = np.array([[[0, 257, 65535], [32896, 1000, 128]]], ">u2")
  raw = b"\0" + values[0].tobytes()
  path = tmp_path / "rgb48.png"
  path.write_bytes(_png_chunks(2, 1, 16, 2, raw))
  np.testing.assert_array_equal(image_io.read_image(str(path))[0],
                                [[0, 1, 255], [128, 3, 0]])


def _jpeg_bytes():
  buffer = io.BytesIO()
  Image.fromarray(_rgb(64, 64)).save(buffer, format="JPEG", quality=90)
  return buffer.getvalue()


def _with_jpeg_size(data, height, width):
  at = data.find(b"\xff\xc0")  # Baseline start of frame: P, Y, X.
  return data[:at + 5] + struct.pack(">HH", height, width) + data[at + 9:]


@pytest.mark.parametrize("name,data,match", [
    ("truncated.jpg", _jpeg_bytes()[:len(_jpeg_bytes()) // 2],
     "corrupt or truncated"),
    ("no_end_marker.jpg", _jpeg_bytes()[:-2], "corrupt or truncated"),
    ("header_only.jpg", _jpeg_bytes()[:200], "corrupt or truncated"),
    ("corrupt.jpg", _jpeg_bytes()[:600] + bytes(300) + _jpeg_bytes()[900:],
     "corrupt or truncated"),
    ("zero_height.jpg", _with_jpeg_size(_jpeg_bytes(), 0, 64),
     "not an image"),
    # Huge declared sizes fail from the header, before any pixel is decoded.
    ("huge.jpg", _with_jpeg_size(_jpeg_bytes(), 65535, 65535),
     "decompression bomb"),
    ("huge.png", _png_chunks(100000, 100000, 8, 2), "decompression bomb"),
    ("large.png", _png_chunks(12000, 12000, 8, 2), "decompression bomb"),
])
def test_corrupt_and_oversized_files_raise_input_error(tmp_path, name, data,
                                                       match):
  path = tmp_path / name
  path.write_bytes(data)
  with pytest.raises(errors.InputError, match=match) as info:
    image_io.read_image(str(path))
  assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_png_without_its_end_chunk_reads(tmp_path):
  path = tmp_path / "no_iend.png"
  path.write_bytes(_png_bytes()[:-12])
  np.testing.assert_array_equal(image_io.read_image(str(path)), _rgb(64, 64))
