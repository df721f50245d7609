"""Tests of the GDN / IGDN layer and the ResGDN / ResIGDN blocks."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

from tfrnncomp import layers


def _randomize(layer, seed=0):
  """Gives beta and gamma non-default (positive) values."""
  rng = np.random.default_rng(seed)
  layer.reparam_beta.assign(rng.uniform(.5, 1.5, layer.reparam_beta.shape))
  layer.reparam_gamma.assign(rng.uniform(0., .6, layer.reparam_gamma.shape))


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_follows_the_papers_equation(inverse):
  """y_i = x_i (/ or *) sqrt(beta_i + sum_j gamma_ji x_j^2)."""
  layer = layers.GDN(inverse=inverse)
  x = tf.random.stateless_normal([2, 5, 7, 4], seed=[1, 2])
  layer(x)
  _randomize(layer)
  beta, gamma = layer.beta.numpy(), layer.gamma.numpy()
  xs = x.numpy().astype(np.float64)
  pool = np.sqrt(beta + np.einsum("...j,ji->...i", xs ** 2, gamma))
  expected = xs * pool if inverse else xs / pool
  np.testing.assert_allclose(layer(x).numpy(), expected, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_matches_tfc_gdn_with_the_same_parameters(inverse):
  layer = layers.GDN(inverse=inverse)
  reference = tfc.GDN(inverse=inverse, alpha_parameter=2, epsilon_parameter=.5)
  x = tf.random.stateless_normal([1, 6, 6, 3], seed=[3, 4])
  layer(x)
  reference(x)
  # Same initialization as tfc.GDN, then the same (random) parameters.
  np.testing.assert_array_equal(layer.reparam_beta.numpy(),
                                reference.beta_parameter.variable.numpy())
  np.testing.assert_array_equal(layer.reparam_gamma.numpy(),
                                reference.gamma_parameter.variable.numpy())
  _randomize(layer, seed=1)
  reference.beta_parameter.variable.assign(layer.reparam_beta)
  reference.gamma_parameter.variable.assign(layer.reparam_gamma)
  assert isinstance(layer, tfc.GDN)
  np.testing.assert_array_equal(layer.beta.numpy(), reference.beta.numpy())
  np.testing.assert_allclose(layer(x).numpy(), reference(x).numpy(),
                             rtol=1e-6)


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_runs_in_graphs_with_the_same_bits_as_eagerly(inverse):
  """tfc.GDN's own call cannot be traced in TF 2.14; this one can."""
  layer = layers.GDN(inverse=inverse)
  x = tf.random.stateless_normal([2, 9, 5, 6], seed=[5, 6])
  eager = layer(x)
  graph = tf.function(layer)(x)
  np.testing.assert_array_equal(eager.numpy(), graph.numpy())


def test_gdn_weights_are_keras_weights_with_gradients_and_bounds():
  layer = layers.GDN()
  x = tf.random.stateless_normal([1, 4, 4, 3], seed=[7, 8])
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(layer(x)))
  grads = tape.gradient(loss, layer.trainable_weights)
  assert [w.name.split("/")[-1] for w in layer.trainable_weights] == [
      "reparam_beta:0", "reparam_gamma:0"]
  for grad in grads:
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
  # The reparameterization keeps beta >= 1e-6 and gamma >= 0.
  layer.reparam_beta.assign(tf.fill([3], -5.))
  layer.reparam_gamma.assign(tf.fill([3, 3], -5.))
  assert np.all(layer.beta.numpy() >= 1e-6 * (1 - 1e-3))
  assert np.all(layer.gamma.numpy() >= 0)


def test_keras_file_round_trip_keeps_gdn_weights(tmp_path):
  """(tfc.GDN's parameters are reloaded with wrong values from .keras files.)"""
  inputs = tf.keras.Input([6, 6, 3])
  hidden = layers.GDN(name="gdn")(inputs)
  outputs = layers.GDN(inverse=True, name="igdn")(hidden)
  model = tf.keras.Model(inputs, outputs)
  for layer in model.layers[1:]:
    _randomize(layer, seed=2)
  path = str(tmp_path / "gdn.keras")
  model.save(path)
  loaded = tf.keras.models.load_model(path)
  for a, b in zip(model.weights, loaded.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  x = tf.random.stateless_normal([1, 6, 6, 3], seed=[9, 9])
  np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())


def test_gdn_config_round_trip():
  layer = layers.GDN(inverse=True, alpha=1., epsilon=1., beta_min=1e-5,
                     gamma_init=.2, name="g")
  clone = layers.GDN.from_config(layer.get_config())
  assert clone.get_config() == layer.get_config()
  x = tf.random.stateless_normal([1, 3, 3, 2], seed=[1, 1])
  np.testing.assert_array_equal(layer(x).numpy(), clone(x).numpy())
  # alpha = epsilon = 1: y = x (beta + gamma |x|).
  expected = x.numpy() * (1. + .2 * np.abs(x.numpy()))
  np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6)


def test_igdn_max_gain_bounds_the_gain_and_leaves_small_inputs_alone():
  """|y_i| <= max_gain |x_i|; where the pool is under the bound, y = IGDN(x)."""
  bounded = layers.GDN(inverse=True, max_gain=4.)
  free = layers.GDN(inverse=True)
  x = tf.random.stateless_normal([2, 6, 6, 4], seed=[5, 6]) * 30.
  bounded(x)
  free(x)
  _randomize(bounded)
  free.set_weights(bounded.get_weights())
  xs, y, y_free = x.numpy(), bounded(x).numpy(), free(x).numpy()
  assert np.all(np.abs(y) <= 4. * np.abs(xs) * (1 + 1e-6))
  gain = np.abs(y_free) / np.maximum(np.abs(xs), 1e-12)
  under = gain < 4. * (1 - 1e-4)
  assert 0 < under.sum() < under.size  # Both cases occur.
  np.testing.assert_allclose(y[under], y_free[under], rtol=1e-6)
  np.testing.assert_allclose(np.abs(y[~under]), 4. * np.abs(xs[~under]),
                             rtol=1e-5)
  # Finite for inputs where the unbounded IGDN overflows float32.
  huge = tf.fill([1, 1, 1, 4], 1e20)  # x^2 overflows.
  assert not np.all(np.isfinite(free(huge).numpy()))
  assert np.all(np.isfinite(bounded(huge).numpy()))
  clone = layers.GDN.from_config(bounded.get_config())
  assert clone.max_gain == 4. and "max_gain" not in free.get_config()
  block = layers.ResGDN(4, inverse=True, max_gain=3.)
  assert layers.ResGDN.from_config(block.get_config()).norm2.max_gain == 3.
  with pytest.raises(ValueError, match="IGDN only"):
    layers.GDN(max_gain=2.)
  with pytest.raises(ValueError, match=">= 0"):
    layers.GDN(inverse=True, max_gain=-1.)


@pytest.mark.parametrize("inverse", [False, True])
def test_res_gdn_keeps_shape_and_has_an_identity_shortcut(inverse):
  block = layers.ResGDN(8, 3, inverse=inverse)
  x = tf.random.stateless_normal([2, 17, 33, 8], seed=[2, 3])
  y = block(x)
  assert y.shape == x.shape
  assert not np.allclose(y.numpy(), x.numpy())
  names = [w.name for w in block.weights]
  assert sum("reparam" in n for n in names) == 4  # 2 (I)GDNs: beta, gamma.
  # With zero convolutions the branch is GDN(0) = 0: y = x exactly.
  for conv in (block.conv1, block.conv2):
    for w in conv.weights:
      w.assign(tf.zeros_like(w))
  np.testing.assert_array_equal(block(x).numpy(), x.numpy())


def test_res_gdn_rejects_a_shortcut_of_another_width_and_round_trips():
  with pytest.raises(ValueError, match="identity shortcut"):
    layers.ResGDN(8)(tf.zeros([1, 4, 4, 3]))
  block = layers.ResGDN(4, 5, inverse=True, name="r")
  clone = layers.ResGDN.from_config(block.get_config())
  assert clone.get_config() == block.get_config()
  x = tf.random.stateless_normal([1, 5, 5, 4], seed=[4, 4])
  block(x)
  clone(x)
  clone.set_weights(block.get_weights())
  np.testing.assert_array_equal(block(x).numpy(), clone(x).numpy())
