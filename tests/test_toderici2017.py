"""Tests of the Toderici 2017 codec network."""

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp import config
from tfrnncomp import models
from tfrnncomp.models import toderici2017


def _image(height, width, seed=0):
  rng = np.random.default_rng(seed)
  return tf.constant(rng.integers(0, 256, [1, height, width, 3]), tf.uint8)


@pytest.mark.parametrize("height,width", [(1, 1), (17, 33), (451, 300)])
def test_encode_decode_shapes_for_awkward_sizes(tiny, height, width):
  codes = tiny.encode(_image(height, width), 2)
  assert codes.dtype == tf.int8
  assert codes.shape == (2, 1, -(-height // 16), -(-width // 16), 8)
  assert set(np.unique(codes.numpy())) <= {-1, 1}
  images = tiny.decode(codes, height, width)
  assert images.dtype == tf.uint8
  assert images.shape == (2, 1, height, width, 3)


def test_encode_computes_only_the_requested_iterations(tiny):
  image = _image(32, 48)
  four = tiny.encode(image, 4).numpy()
  for t in (1, 2, 3):
    # The first t iterations do not depend on how many follow.
    np.testing.assert_array_equal(tiny.encode(image, t).numpy(), four[:t])
  with pytest.raises(tf.errors.InvalidArgumentError, match="iterations"):
    tiny.encode(image, 0)


def test_decode_of_encode_matches_the_training_path(tiny):
  image = _image(32, 32)
  codes = tiny.encode(image, 3)
  _, x_hats = tiny(toderici2017.to_float(image), iterations=3)
  np.testing.assert_array_equal(
      tiny.decode(codes, 32, 32).numpy(),
      toderici2017.to_uint8(x_hats).numpy())


def test_decode_rejects_a_size_larger_than_the_codes(tiny):
  codes = tiny.encode(_image(16, 16), 1)
  with pytest.raises(tf.errors.InvalidArgumentError, match="fit"):
    tiny.decode(codes, 17, 16)


def test_tf_function_equals_eager(tiny):
  image = _image(33, 20, seed=3)
  encode = tf.function(tiny.encode)
  decode = tf.function(tiny.decode)
  eager_codes = tiny.encode(image, 3)
  graph_codes = encode(image, tf.constant(3))
  np.testing.assert_array_equal(eager_codes.numpy(), graph_codes.numpy())
  np.testing.assert_array_equal(
      tiny.decode(eager_codes, 33, 20).numpy(),
      decode(eager_codes, tf.constant(33), tf.constant(20)).numpy())


def test_edge_padding_replicates_the_last_row_and_column():
  x = tf.reshape(tf.range(6, dtype=tf.float32), [1, 2, 3, 1])
  padded = toderici2017.pad_to_multiple(x).numpy()[0, ..., 0]
  assert padded.shape == (16, 16)
  np.testing.assert_array_equal(padded[:2, :3], x.numpy()[0, ..., 0])
  np.testing.assert_array_equal(padded[5], padded[1])
  np.testing.assert_array_equal(padded[:, 9], padded[:, 2])


@pytest.mark.parametrize("cell", ["lstm", "gru", "residual_gru",
                                  "associative_lstm"])
@pytest.mark.parametrize("reconstruction", ["one_shot", "additive",
                                            "residual_scaling"])
def test_gradients_reach_every_weight(cell, reconstruction):
  model = models.build_model(config.resolve(
      "tiny", {"cell": cell, "reconstruction": reconstruction}))
  x = toderici2017.to_float(_image(32, 32)[0][None])
  with tf.GradientTape() as tape:
    _, x_hats = model(x, iterations=2, training=True)
    loss = tf.reduce_mean(tf.abs(x[None] - x_hats))
  grads = tape.gradient(loss, model.trainable_variables)
  for var, grad in zip(model.trainable_variables, grads):
    assert grad is not None, var.name
    assert np.all(np.isfinite(grad.numpy())), var.name
    # The gain estimator's output layer starts at zero (a constant gain), so
    # only the layers before it get no gradient at the first step.
    if not any(f"gain/conv{i}" in var.name for i in (1, 2, 3)):
      assert float(tf.reduce_sum(tf.abs(grad))) > 0, var.name


def test_reconstruction_modes_follow_the_papers_equations():
  """x_hat_t = D(b_t) for one-shot and x_hat_{t-1} + D(b_t) for additive."""
  for mode in ("one_shot", "additive"):
    model = models.build_model(config.resolve("tiny", {"reconstruction": mode}))
    x = toderici2017.to_float(_image(16, 16))
    codes, x_hats = model(x, iterations=2)
    state = model.decoder.zero_state(1, 1, 1)
    out1, state = model.decoder(codes[0], state)
    out2, _ = model.decoder(codes[1], state)
    expected = out2 if mode == "one_shot" else out1 + out2
    np.testing.assert_allclose(x_hats[1].numpy(), expected.numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def primed():
  """``tiny`` with two priming steps (Johnston et al. 2018)."""
  tf.random.set_seed(0)
  return models.build_model(config.resolve("tiny", {"priming": 2}))


def test_priming_runs_the_first_iteration_k_more_times(primed):
  """b_1 = B(E(x)) after k extra encoder steps on x; x_hat_1 after k extra
  decoder steps on b_1; later iterations as without priming."""
  x = toderici2017.to_float(_image(32, 16, seed=5))
  codes, x_hats = primed(x, iterations=2)
  encoder_state, decoder_state = primed.zero_state(x)
  for _ in range(3):
    features, encoder_state = primed.encoder(x, encoder_state)
  np.testing.assert_array_equal(codes[0].numpy(),
                                primed.binarizer(features).numpy())
  for _ in range(3):
    out1, decoder_state = primed.decoder(codes[0], decoder_state)
  np.testing.assert_allclose(x_hats[0].numpy(), out1.numpy(), atol=1e-6)
  features, _ = primed.encoder(x - x_hats[0], encoder_state)
  np.testing.assert_array_equal(codes[1].numpy(),
                                primed.binarizer(features).numpy())
  out2, _ = primed.decoder(codes[1], decoder_state)
  np.testing.assert_allclose(x_hats[1].numpy(), (out1 + out2).numpy(),
                             atol=1e-6)


def test_primed_inference_paths_match_the_training_path(primed):
  image = _image(32, 32, seed=6)
  encode = tf.function(primed.encode)
  decode = tf.function(primed.decode)
  codes = primed.encode(image, 3)
  np.testing.assert_array_equal(codes.numpy(), encode(image, tf.constant(3)))
  for t in (1, 2):
    np.testing.assert_array_equal(primed.encode(image, t).numpy(),
                                  codes[:t].numpy())
  training_codes, x_hats = primed(toderici2017.to_float(image), iterations=3)
  np.testing.assert_array_equal(codes.numpy(), training_codes.numpy())
  expected = toderici2017.to_uint8(x_hats).numpy()
  np.testing.assert_array_equal(primed.decode(codes, 32, 32).numpy(), expected)
  np.testing.assert_array_equal(
      decode(codes, tf.constant(32), tf.constant(32)).numpy(), expected)


def test_priming_changes_the_output_of_the_same_weights(tiny, primed):
  primed.set_weights(tiny.get_weights())
  image = _image(32, 32, seed=7)
  assert not np.array_equal(tiny.decode(tiny.encode(image, 1), 32, 32),
                            primed.decode(tiny.encode(image, 1), 32, 32))
