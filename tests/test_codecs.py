"""Tests of the standard codecs and the learned-codec wrapper."""

import io

import numpy as np
import pytest

from tfrnncomp import codecs
from tfrnncomp import errors
from tfrnncomp import metrics


def _image(height=72, width=104, seed=0):
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / 9.
  base = np.stack([np.sin(x * 0.8 + c) * np.cos(y * 0.5 - c)
                   for c in range(3)], -1)
  image = 128 + 90 * base + rng.normal(0, 6, [height, width, 3])
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _codec(name, qualities=None):
  reason = codecs.unavailable_reason(name)
  if reason:
    pytest.skip(f"{name}: {reason}")
  return codecs.get_codec(name, qualities)


@pytest.mark.parametrize("name", sorted(codecs.STANDARD_CODECS))
def test_standard_codec_round_trip_and_rate_order(name):
  codec = _codec(name)
  image = _image()
  low, high = codec.qualities[1], codec.qualities[-1]
  points = list(codec.sweep(image, [low, high]))
  assert [p.quality for p in points] == [low, high]
  for point in points:
    assert point.x_hat.shape == image.shape
    assert point.x_hat.dtype == np.uint8
    assert point.encoding_time > 0 and point.decoding_time > 0
  assert points[0].num_bytes < points[1].num_bytes
  assert (metrics.psnr(image, points[0].x_hat) <
          metrics.psnr(image, points[1].x_hat))
  assert metrics.psnr(image, points[1].x_hat) > 30
  # compress() is what the sweep measured: the same bytes, decoded the same.
  data = codec.compress(image, high)
  assert len(data) == points[1].num_bytes
  np.testing.assert_array_equal(codec.decompress(data), points[1].x_hat)
  assert "version" in codec.description.lower() or (
      "pillow" in codec.description.lower())


def test_jpeg_is_420_without_huffman_optimization():
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from PIL import JpegImagePlugin  # pylint: disable=g-import-not-at-top
  codec = _codec("jpeg")
  data = codec.compress(_image(), 50)
  with Image.open(io.BytesIO(data)) as decoded:
    assert JpegImagePlugin.get_sampling(decoded) == 2  # 4:2:0.
  buffer = io.BytesIO()
  Image.fromarray(_image()).save(buffer, format="JPEG", quality=50,
                                 subsampling=2, optimize=True)
  assert len(buffer.getvalue()) < len(data)


def test_hevc_is_444():
  codec = _codec("hevc")
  data = codec.compress(_image(), 30)
  assert codecs.hevc_chroma_format(data) == 3
  import pillow_heif  # pylint: disable=g-import-not-at-top
  assert pillow_heif.open_heif(io.BytesIO(data)).info["chroma"] == 444


def test_jpeg2000_quality_is_the_target_bpp():
  codec = _codec("jpeg2000")
  image = _image(128, 160)
  for target in (0.25, 1.0):
    data = codec.compress(image, target)
    bpp = len(data) * 8 / (128 * 160)
    assert bpp == pytest.approx(target, rel=0.15)


def test_unknown_and_unavailable_codecs(monkeypatch):
  with pytest.raises(errors.InputError, match="unknown codec"):
    codecs.get_codec("bpg")
  monkeypatch.setattr(codecs.JpegXlCodec, "unavailable_reason",
                      classmethod(lambda cls: "pillow-jxl-plugin is not "
                                  "installed"))
  assert "not installed" in codecs.unavailable_reason("jpegxl")
  with pytest.raises(codecs.CodecUnavailableError, match="jpegxl"):
    codecs.get_codec("jpegxl")


def test_codecs_reject_bad_images():
  codec = _codec("jpeg")
  with pytest.raises(errors.InputError, match="uint8"):
    codec.compress(np.zeros([8, 8, 3], np.float32), 50)
  with pytest.raises(errors.InputError):
    list(codec.sweep(np.zeros([8, 8], np.uint8)))


def test_learned_codec_sweep_is_one_encode(tiny_model_dir):
  codec = codecs.LearnedCodec(tiny_model_dir)
  assert codec.name == "tiny"
  assert codec.qualities == (1, 2, 3, 4)
  image = _image(40, 56)
  points = list(codec.sweep(image))
  assert [p.quality for p in points] == [1, 2, 3, 4]
  assert all(p.x_hat.shape == image.shape for p in points)
  sizes = [p.num_bytes for p in points]
  assert sizes == sorted(sizes)
  # The sweep's point t is what compressing with t iterations writes.
  data = codec.compress(image, 3)
  assert len(data) == points[2].num_bytes
  np.testing.assert_array_equal(codec.decompress(data), points[2].x_hat)
  assert "weights sha256" in codec.description


def test_learned_codec_bytes_are_the_encoder_bitstream(tiny_model_dir):
  from tfrnncomp import bitstream  # pylint: disable=g-import-not-at-top
  codec = codecs.LearnedCodec(tiny_model_dir, [2])
  image = _image(40, 56)
  (point,) = codec.sweep(image)
  data = codec.compress(image, 2)
  assert len(data) == point.num_bytes
  header, chunks = bitstream.read(data)
  assert (header.codec_name, header.height, header.width) == ("tiny", 40, 56)
  # No entropy model: 2 raw chunks of 3 x 4 blocks x 8 bits.
  assert [len(c) for _, c in chunks] == [12, 12]
  assert "raw bits" in codec.description


def test_learned_codec_of_an_akbari2020_model(akbari_tiny_model_dir):
  from tfrnncomp import bitstream  # pylint: disable=g-import-not-at-top
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  codec = codecs.LearnedCodec(akbari_tiny_model_dir)
  assert codec.qualities == tuple(range(1, 9))
  assert "quality = bits per channel" in codec.description
  codec = codecs.LearnedCodec(akbari_tiny_model_dir, [2, 6])
  image = _image(40, 56)
  points = list(codec.sweep(image))
  assert [p.quality for p in points] == [2, 6]
  assert points[0].num_bytes < points[1].num_bytes
  data = codec.compress(image, 6)
  assert bitstream.read(data)[0].bits_per_channel == 6
  assert len(data) == points[1].num_bytes
  np.testing.assert_array_equal(codec.decompress(data), points[1].x_hat)
  np.testing.assert_array_equal(
      points[1].x_hat, cli.decompress(cli.load_codec(akbari_tiny_model_dir),
                                      data).x_hat[0])
  with pytest.raises(errors.InputError, match="from 1 to 8"):
    codecs.LearnedCodec(akbari_tiny_model_dir, [9])


def test_learned_codec_with_the_enhancement_layer(akbari_tiny_model_dir):
  pytest.importorskip("pillow_heif")
  from tfrnncomp import bitstream  # pylint: disable=g-import-not-at-top
  base = codecs.LearnedCodec(akbari_tiny_model_dir, [4])
  enhanced = codecs.LearnedCodec(akbari_tiny_model_dir, [4],
                                 enhancement_quality=90)
  assert enhanced.name == base.name + "+hevc90"
  assert enhanced.label != base.label
  assert "enhancement layer of quality 90" in enhanced.description
  image = _image(40, 56)
  (plain,), (layered,) = list(base.sweep(image)), list(enhanced.sweep(image))
  # The second chunk is the HEVC residual: more bytes, closer to the input.
  assert len(bitstream.read(enhanced.compress(image, 4))[1]) == 2
  assert layered.num_bytes > plain.num_bytes
  error = lambda x_hat: np.mean((x_hat.astype(float) - image) ** 2)
  assert error(layered.x_hat) < error(plain.x_hat)
  with pytest.raises(errors.InputError, match="0 to 100"):
    codecs.LearnedCodec(akbari_tiny_model_dir, enhancement_quality=101)


def test_an_enhancement_layer_is_for_akbari2020_models(tiny_model_dir):
  with pytest.raises(errors.InputError, match="akbari2020"):
    codecs.LearnedCodec(tiny_model_dir, enhancement_quality=50)


def test_learned_codec_needs_a_saved_model(tmp_path):
  with pytest.raises(errors.ModelError, match="config.json"):
    codecs.LearnedCodec(str(tmp_path))
