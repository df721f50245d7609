"""Tests of the Akbari 2020 variable-rate codec, its coding and its export."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrnncomp import codecs
from tfrnncomp import config
from tfrnncomp import export
from tfrnncomp import metrics
from tfrnncomp import models
from tfrnncomp import testing
from tfrnncomp import training
from tfrnncomp.models import akbari2020
from tfrnncomp.models import akbari2020_coding as coding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"filters": 16, "code_channels": 8}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny model after a short variable-rate training (B = 2, 4, 8)."""
  images = tmp_path_factory.mktemp("images")
  for i, crop in enumerate(testing.photo_crops(6, 96)):
    Image.fromarray(crop).save(images / f"{i}.png")
  train_dir = str(tmp_path_factory.mktemp("run"))
  tf.random.set_seed(0)
  tc = training.TrainConfig(steps=100, batch_size=8, patch_size=48,
                            learning_rate=5e-3, warmup_steps=20, log_every=50,
                            bits_per_channel=(2, 4, 8))
  lines = []
  model, last = training.train(config.resolve("akbari2020_tiny", TINY), tc,
                               str(images), train_dir, log=lines.append)
  return model, train_dir, lines, last


def test_training_loss_falls(trained):
  _, _, lines, last = trained
  progress = [line for line in lines if line.startswith("step")]
  assert len(progress) == 2 and "B=2/4/8" in progress[0]
  loss = lambda line: float(line.split("loss ")[1].split()[0])
  assert loss(progress[-1]) < .7 * loss(progress[0])
  assert last.shape == (3, 2)  # [MSE, MS-SSIM] per bit depth.


def test_quality_increases_with_bits_from_one_set_of_weights(trained):
  model = trained[0]
  held_out = np.stack(testing.photo_crops(3, 64, offset=40, at=100))
  x = akbari2020.to_float(held_out)
  y = model.encoder(x)
  x_unquantized = model.decoder(y)
  limit = np.mean([metrics.psnr(a, b) for a, b in zip(
      held_out, akbari2020.to_uint8(x_unquantized).numpy())])
  psnr, code_error, image_error = [], [], []
  for bits in range(1, 9):
    code_map, low, high = model.encode(held_out, bits)
    x_hat = model.decode(code_map, low, high, bits, 64, 64).numpy()
    psnr.append(np.mean([metrics.psnr(a, b) for a, b in zip(held_out, x_hat)]))
    y_hat = model.quantizer.call(y, bits)[0]
    code_error.append(float(tf.reduce_mean(tf.square(y - y_hat))))
    image_error.append(float(tf.reduce_mean(tf.square(
        model.decoder(y_hat) - x_unquantized))))
  # The code map's quantization error falls ~4x per bit, and the decoded
  # image approaches the unquantized network's output with every bit: its
  # error falls at every bit and at least 4x over every two (one bit's
  # factor is noisy on 3 crops' 384 code values: 1.4x to 17x between runs
  # of this short, not bit-reproducible training), down to a floor of 1e-6
  # (RMS 0.001 on [-0.5, 0.5], a quarter of one uint8 level), below which
  # the order no longer matters for the decoded uint8 image ...
  floor = 1e-6
  assert all(a > 2.5 * b for a, b in zip(code_error, code_error[1:]))
  assert all(a > b or max(a, b) < floor
             for a, b in zip(image_error, image_error[1:])), image_error
  assert all(a > 4 * c or max(a, c) < floor
             for a, c in zip(image_error, image_error[2:])), image_error
  # ... and at B = 8 the decoded image is the unquantized network's. (That
  # PSNR itself rises with B needs a decoder that has learned to use the
  # code map: 100 steps of a 4-channel network give ~15 dB at every B, where
  # the order of the PSNRs is noise, so it is not asserted here.)
  assert abs(psnr[-1] - limit) < .05, (psnr, limit)


@pytest.mark.parametrize("height,width", [(1, 1), (17, 33), (451, 300)])
def test_encode_decode_shapes_for_awkward_sizes(trained, height, width):
  model = trained[0]
  image = np.random.default_rng(0).integers(0, 256, [1, height, width, 3])
  code_map, low, high = model.encode(image.astype(np.uint8), 3)
  assert code_map.dtype == tf.uint8
  assert code_map.shape == (1, -(-height // 16), -(-width // 16), 8)
  assert int(tf.reduce_max(code_map)) <= 7
  assert low.shape == high.shape == (1, 8)
  x_hat = model.decode(code_map, low, high, 3, height, width)
  assert x_hat.dtype == tf.uint8 and x_hat.shape == (1, height, width, 3)


def test_bits_out_of_range_are_rejected(trained):
  model = trained[0]
  image = np.zeros([1, 16, 16, 3], np.uint8)
  for bits in (0, 9):
    with pytest.raises(tf.errors.InvalidArgumentError, match="bits"):
      model.encode(image, bits)
  code_map, low, high = model.encode(image, 8)
  with pytest.raises(tf.errors.InvalidArgumentError, match="levels"):
    model.decode(tf.fill(code_map.shape, tf.constant(4, tf.uint8)), low, high,
                 2, 16, 16)


def test_code_map_coding_is_lossless_and_near_the_models_entropy(trained):
  model = trained[0]
  image = np.stack(testing.photo_crops(1, 256, offset=41))
  segments = len(coding._segments(16))  # pylint: disable=protected-access
  for bits in (1, 2, 5, 8):
    code_map = model.encode(image, bits)[0][0].numpy()
    data = coding.encode_code_map(code_map, bits)
    decoded = coding.decode_code_map(data, 16, 16, 8, bits)
    assert decoded.dtype == np.int32
    np.testing.assert_array_equal(decoded, code_map)
    ideal = coding.code_map_entropy_bits(code_map, bits) / 8
    assert ideal <= len(data) <= ideal * 1.01 + 6 * segments, (bits, ideal)


@pytest.mark.parametrize("shape,bits", [((1, 1, 1), 1), ((3, 5, 2), 8),
                                        ((37, 2, 3), 4)])
def test_code_map_coding_round_trips_edge_cases(shape, bits):
  rng = np.random.default_rng(sum(shape))
  for code_map in (rng.integers(0, 2 ** bits, shape), np.zeros(shape, int),
                   np.full(shape, 2 ** bits - 1)):
    data = coding.encode_code_map(code_map, bits)
    np.testing.assert_array_equal(
        coding.decode_code_map(data, *shape, bits), code_map)
  # A constant map costs almost nothing once the model has adapted.
  if shape[0] > 30:
    constant = coding.encode_code_map(np.zeros(shape, int), bits)
    assert len(constant) < np.prod(shape) * bits / 8 / 4


def test_code_map_coding_rejects_bad_input_and_data():
  with pytest.raises(ValueError, match="levels"):
    coding.encode_code_map(np.full([2, 2, 1], 4), 2)
  data = coding.encode_code_map(np.arange(24).reshape(2, 3, 4) % 8, 3)
  with pytest.raises(ValueError):
    coding.decode_code_map(data[:-1], 2, 3, 4, 3)
  with pytest.raises(ValueError, match="left"):
    coding.decode_code_map(data + b"\0", 2, 3, 4, 3)


def test_compress_counts_every_byte_and_the_enhancement_raises_psnr(trained):
  model = trained[0]
  module = export.VariableRateModule(model)
  image = testing.photo_crops(1, 64, offset=42, at=50)[0][:50, :63]
  base = coding.compress(module, image, 4)
  assert base.enhancement == b""
  assert len(base.side_info) == 4 * 8  # float16 min and max per channel.
  assert base.num_bytes == len(base.side_info) + len(base.code_map)
  x_hat = coding.decompress(module, base)
  # The coding is lossless: the same pixels as the module's own decoding of
  # its code map and side information.
  out = module.encode(image, 4)
  np.testing.assert_array_equal(
      x_hat, module.decode(out["code_map"], out["minimum"], out["maximum"],
                           4, 50, 63)["x_hat"].numpy())
  # The eager model agrees up to the rounding of a few pixels (graph and
  # eager kernels may order their float sums differently).
  code_map, low, high = model.encode(image[None], 4)
  eager = model.decode(code_map, low, high, 4, 50, 63)[0].numpy()
  difference = np.abs(x_hat.astype(int) - eager)
  assert difference.max() <= 1 and np.mean(difference) < 0.05
  if codecs.unavailable_reason("hevc"):
    pytest.skip(codecs.unavailable_reason("hevc"))
  enhanced = coding.compress(module, image, 4, enhancement_quality=60)
  assert enhanced.code_map == base.code_map
  assert len(enhanced.enhancement) > 12
  assert enhanced.num_bytes == base.num_bytes + len(enhanced.enhancement)
  assert enhanced.bits_per_pixel() == 8 * enhanced.num_bytes / (50 * 63)
  better = coding.decompress(module, enhanced)
  assert metrics.psnr(image, better) > metrics.psnr(image, x_hat) + 3


def test_tools_export_and_tensorflow_only_reload_are_bit_exact(trained,
                                                               tmp_path):
  model, train_dir, _, _ = trained
  directory = str(tmp_path / "akbari")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "export.py"),
       f"--train_dir={train_dir}", f"--output={directory}"],
      env=env, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "akbari2020" in result.stdout
  with open(os.path.join(directory, "config.json")) as f:
    assert json.load(f)["system"] == "akbari2020"
  assert export.load_config(directory) == model.config
  rng = np.random.default_rng(7)
  image = rng.integers(0, 256, [37, 50, 3]).astype(np.uint8)
  np.save(tmp_path / "image.npy", image)
  script = textwrap.dedent(f"""
      import numpy as np
      import tensorflow as tf
      loaded = tf.saved_model.load({directory!r})
      image = tf.constant(np.load({str(tmp_path / "image.npy")!r}))
      out = {{}}
      for bits in (1, 6):
        enc = loaded.signatures["encode"](
            image=image, bits_per_channel=tf.constant(bits))
        dec = loaded.signatures["decode"](
            code_map=enc["code_map"], minimum=enc["minimum"],
            maximum=enc["maximum"], bits_per_channel=tf.constant(bits),
            height=tf.constant(37), width=tf.constant(50))
        for k, v in list(enc.items()) + list(dec.items()):
          out[f"{{k}}_{{bits}}"] = v.numpy()
      default = loaded.signatures["serving_default"](
          image=image, bits_per_channel=tf.constant(6))
      assert np.array_equal(default["code_map"].numpy(), out["code_map_6"])
      np.savez({str(tmp_path / "out.npz")!r}, **out)
      """) + testing.plain_tensorflow_check(directory)
  result = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / "out.npz")
  module = export.VariableRateModule(model)
  for bits in (1, 6):
    enc = module.encode(image=tf.constant(image), bits_per_channel=bits)
    dec = module.decode(bits_per_channel=bits, height=37, width=50, **enc)
    assert out[f"code_map_{bits}"].shape == (3, 4, 8)
    assert out[f"x_hat_{bits}"].shape == (37, 50, 3)
    for k, v in list(enc.items()) + list(dec.items()):
      np.testing.assert_array_equal(out[f"{k}_{bits}"], v.numpy())


def test_decoder_reading_levels_ignores_the_code_scale_and_exports(tmp_path):
  """decoder_input="levels": the decoder reads 2q/L - 1, in training and at
  inference alike, so the side information's scale cannot change the image;
  the setting is saved with the model and the SavedModel decodes the same."""
  model = models.build_model(config.resolve(
      "akbari2020_tiny", dict(TINY, decoder_input="levels"))).build_variables()
  image = np.stack(testing.photo_crops(2, 48, offset=3))
  code_map, low, high = model.encode(image, 5)
  x_hat = model.decode(code_map, low, high, 5, 48, 48).numpy()
  z = 2. * code_map.numpy().astype(np.float32) / 31. - 1.
  np.testing.assert_array_equal(
      x_hat, akbari2020.to_uint8(model.decoder(z)).numpy())
  np.testing.assert_array_equal(
      x_hat, model.decode(code_map, 2. * low - 1., 3. * high + 1., 5, 48,
                          48).numpy())
  # The training path (deterministic rounding) decodes the same levels.
  _, x_hats = model(akbari2020.to_float(image), bits=(5,))
  assert np.abs(akbari2020.to_uint8(x_hats[0]).numpy().astype(int) -
                x_hat).max() <= 1
  directory = str(tmp_path / "levels")
  export.export(model, directory)
  assert export.load_config(directory).decoder_input == "levels"
  loaded = tf.saved_model.load(directory)
  decoded = loaded.signatures["decode"](
      code_map=code_map[0], minimum=low[0], maximum=high[0],
      bits_per_channel=tf.constant(5), height=tf.constant(48),
      width=tf.constant(48))["x_hat"].numpy()
  np.testing.assert_array_equal(decoded, x_hat[0])
  # The shipped models' config.json files have no such key: the paper's.
  d = config.get_preset("akbari2020").to_dict()
  assert d.pop("decoder_input") == "dequantized"
  assert config.config_from_dict(d).decoder_input == "dequantized"
  with pytest.raises(ValueError, match="decoder_input"):
    config.resolve("akbari2020", {"decoder_input": "raw"})
