"""bfloat16 convolutions: same weights, float32 around them, near-equal codecs."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp import cli
from tfrnncomp import config as config_lib
from tfrnncomp import layers
from tfrnncomp import models
from tfrnncomp import training
from tfrnncomp.layers import precision


def test_bfloat16_conv_keeps_float32_weights_and_outputs():
  x = tf.random.stateless_normal([2, 12, 10, 16], seed=[1, 2])
  full = precision.Conv2D(24, 3, padding="same", name="c")
  half = precision.Conv2D(24, 3, padding="same", compute_dtype="bfloat16",
                          name="c")
  y_full = full(x)
  half(x)
  assert [(v.name, v.dtype) for v in half.weights] == [
      (v.name, v.dtype) for v in full.weights]
  assert all(v.dtype == tf.float32 for v in half.weights)
  half.set_weights(full.get_weights())
  y_half = half(x)
  assert y_half.dtype == tf.float32
  # bfloat16 inputs and kernels (8-bit mantissas), float32 accumulation.
  error = np.abs(y_half - y_full).max() / np.abs(y_full).max()
  assert 0 < error < 2e-2
  again = precision.Conv2D.from_config(half.get_config())
  assert again.conv_dtype == "bfloat16"
  assert again.dtype_policy.compute_dtype == "bfloat16"


def test_bfloat16_graph_needs_no_avx512_kernel():
  # A bfloat16 BiasAdd next to a convolution is fused by Grappler into a
  # bfloat16 _FusedConv2D, which only oneDNN on AVX512 provides: the graph
  # (and SavedModels exported from it) failed on AVX2-only CPUs.
  layer = precision.Conv2D(8, 3, padding="same", compute_dtype="bfloat16",
                           activation="relu")
  x = tf.random.stateless_normal([1, 6, 5, 4], seed=[5, 6])
  step = tf.function(lambda x: layer(x) * 2.0)
  y = step(x)  # Raised InvalidArgumentError on AVX2-only CPUs.
  graph = step.get_concrete_function(x).graph.as_graph_def()
  for node in graph.node:
    if node.op in ("BiasAdd", "Relu"):
      assert node.attr["T"].type == tf.float32.as_datatype_enum, node
  np.testing.assert_allclose(
      y, tf.nn.relu(tf.nn.conv2d(x, layer.kernel, 1, "SAME") + layer.bias) * 2,
      rtol=0.05, atol=0.05)


def test_unknown_compute_dtype_is_refused():
  with pytest.raises(ValueError, match="compute_dtype must be one of"):
    precision.Conv2D(4, 1, compute_dtype="float16")
  with pytest.raises(ValueError, match="compute_dtype must be one of"):
    config_lib.resolve("tiny", {"compute_dtype": "half"})


@pytest.mark.parametrize("preset", ["tiny", "islam2021_tiny"])
def test_a_bfloat16_codec_runs_the_float32_weights_closely(preset):
  config = config_lib.resolve(preset, {"iterations": 4})
  tf.keras.utils.set_random_seed(0)
  full = models.build_model(config)
  half = models.build_model(
      dataclasses.replace(config, compute_dtype="bfloat16"))
  assert ([v.name for v in half.variables] ==
          [v.name for v in full.variables])
  for a, b in zip(half.variables, full.variables):
    a.assign(b)
  x = tf.random.stateless_uniform([1, 48, 64, 3], seed=[3, 4],
                                  minval=-0.5, maxval=0.5)
  _, x_hat_full = full(x, iterations=4)
  codes, x_hat_half = half(x, iterations=4)
  assert x_hat_half.dtype == tf.float32
  # Compared on the same codes: the decoders alone.
  decoded_full = full.decode(tf.cast(codes, tf.int8), 48, 64)
  decoded_half = half.decode(tf.cast(codes, tf.int8), 48, 64)
  assert np.abs(np.asarray(decoded_full, np.float32) -
                np.asarray(decoded_half, np.float32)).max() <= 3
  assert np.abs(x_hat_half - x_hat_full).mean() < 0.02


def test_export_tool_reexports_in_bfloat16_with_the_same_identity(
    run_tool, tiny_model_dir, tmp_path):
  from tfrnncomp.entropy import pixelrnn  # pylint: disable=g-import-not-at-top
  from tfrnncomp.entropy import saved_model
  source = str(tmp_path / "source")
  shutil.copytree(tiny_model_dir, source)
  identity = cli.load_codec(source).identity
  tf.keras.utils.set_random_seed(1)
  network = pixelrnn.BinaryPixelRNN(pixelrnn.EntropyConfig(
      bits=config_lib.resolve("tiny").bits, filters=4)).build_variables()
  saved_model.save(network, source, identity, training={"steps": 7})
  output = str(tmp_path / "bf16")
  status, out, err = run_tool("export", f"--savedmodel={source}",
                              f"--output={output}",
                              "--compute_dtype=bfloat16")
  assert status == 0, err
  assert "compute_dtype bfloat16, entropy model re-saved" in out
  with open(os.path.join(output, "config.json")) as f:
    assert json.load(f)["compute_dtype"] == "bfloat16"
  # The entropy model is re-saved from its network, for the same codec.
  copy, info = saved_model.load_network(output)
  assert info["codec"] == {k: identity[k] for k in ("name", "weights_sha256")}
  assert info["training"] == {"steps": 7}
  for a, b in zip(copy.variables, network.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  with open(os.path.join(source, "model.json")) as f:
    source_identity = json.load(f)
  with open(os.path.join(output, "model.json")) as f:
    assert json.load(f)["weights_sha256"] == source_identity["weights_sha256"]
  shutil.rmtree(os.path.join(source, "entropy"))
  shutil.rmtree(os.path.join(output, "entropy"))
  # The float32 model's stream decodes with the bfloat16 one, near-equally.
  image = np.random.default_rng(0).integers(0, 256, [40, 56, 3], np.uint8)
  full, half = cli.load_codec(source), cli.load_codec(output)
  data = cli.compress(full, image, 3)
  difference = np.abs(cli.decompress(half, data).x_hat.astype(int) -
                      cli.decompress(full, data).x_hat.astype(int))
  assert difference.max() <= 3 and difference.mean() < 0.5
  for args, message in [
      ((f"--savedmodel={source}", f"--output={source}"), "must differ"),
      ((f"--savedmodel={source}", f"--output={output}"), "exists"),
      ((f"--savedmodel={source}", f"--serving_dir={tmp_path}",
        "--compute_dtype=bfloat16"), "needs --output")]:
    status, _, err = run_tool("export", *args)
    assert status == 2 and message in err and len(err.splitlines()) == 1


def test_a_run_resumes_in_another_precision_but_not_another_network(
    tmp_path):
  config = config_lib.resolve("tiny")
  train_dir = str(tmp_path)
  assert training.load_or_create_config(train_dir, config) == config
  half = dataclasses.replace(config, compute_dtype="bfloat16")
  assert training.load_or_create_config(train_dir, half) == half
  assert training.load_or_create_config(train_dir, None) == half  # Saved.
  with pytest.raises(ValueError, match="different model config"):
    training.load_or_create_config(
        train_dir, dataclasses.replace(config, width=2 * config.width))


@pytest.mark.parametrize("make", [
    lambda dtype: precision.Conv2D(4, 1, compute_dtype=dtype),
    lambda dtype: layers.ConvLSTMCell(4, compute_dtype=dtype),
    lambda dtype: layers.ConvGRUCell(4, compute_dtype=dtype),
    lambda dtype: layers.ResidualGRUCell(4, compute_dtype=dtype),
    lambda dtype: layers.AssociativeLSTMCell(4, compute_dtype=dtype),
    lambda dtype: layers.Binarizer(4, compute_dtype=dtype),
], ids=["Conv2D", "ConvLSTMCell", "ConvGRUCell", "ResidualGRUCell",
        "AssociativeLSTMCell", "Binarizer"])
def test_every_layer_with_convolutions_names_their_precision_alike(make):
  layer = make("bfloat16")
  assert layer.conv_dtype == "bfloat16"
  again = type(layer).from_config(layer.get_config())
  assert again.conv_dtype == "bfloat16"
  assert make("float32").conv_dtype == "float32"
