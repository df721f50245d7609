"""Tests of the conv RNN cells and the binarizer."""

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp import layers

CELL_STATES = {"lstm": 2, "gru": 1, "residual_gru": 1, "associative_lstm": 2}


@pytest.mark.parametrize("name", sorted(layers.CELLS))
@pytest.mark.parametrize("strides", [1, 2])
def test_cell_output_and_state_shapes(name, strides):
  cell = layers.CELLS[name](8, kernel_size=3, strides=strides,
                            hidden_kernel_size=3)
  x = tf.random.normal([2, 17, 33, 5])
  states = cell.get_initial_state(x)
  assert len(states) == CELL_STATES[name]
  out, new_states = cell(x, states)
  expected = [2, 17, 33, 8] if strides == 1 else [2, 9, 17, 8]
  assert out.shape == expected
  for s in new_states:
    assert s.shape == expected
  # The states change and feed back: a second step differs from the first.
  out2, _ = cell(x, new_states)
  assert not np.allclose(out.numpy(), out2.numpy())


@pytest.mark.parametrize("name", sorted(layers.CELLS))
def test_cell_config_round_trip_gives_same_layer(name):
  cell = layers.CELLS[name](6, kernel_size=2, strides=2, hidden_kernel_size=1,
                            name="c")
  x = tf.random.normal([1, 8, 8, 3])
  out, _ = cell(x, cell.get_initial_state(x))
  config = cell.get_config()
  clone = type(cell).from_config(config)
  assert clone.get_config() == config
  clone(x, clone.get_initial_state(x))
  clone.set_weights(cell.get_weights())
  clone_out, _ = clone(x, clone.get_initial_state(x))
  np.testing.assert_allclose(out.numpy(), clone_out.numpy(), atol=1e-6)
  # And through Keras' registry.
  again = tf.keras.layers.deserialize(tf.keras.layers.serialize(cell))
  assert type(again) is type(cell) and again.get_config() == config


def test_cell_rejects_wrong_number_of_states():
  cell = layers.ConvLSTMCell(4)
  x = tf.zeros([1, 4, 4, 3])
  with pytest.raises(ValueError, match="states"):
    cell(x, cell.get_initial_state(x)[:1])


def test_associative_lstm_needs_even_filters():
  with pytest.raises(ValueError, match="even"):
    layers.AssociativeLSTMCell(7)


def test_lstm_forget_bias_starts_at_one():
  cell = layers.ConvLSTMCell(4)
  x = tf.zeros([1, 4, 4, 3])
  cell(x, cell.get_initial_state(x))
  np.testing.assert_array_equal(cell.input_conv.bias.numpy()[:4], 1.)
  np.testing.assert_array_equal(cell.input_conv.bias.numpy()[4:], 0.)


def test_binarize_is_sign_with_zero_mapped_to_plus_one():
  x = tf.constant([-0.7, -1e-9, 0., 1e-9, 0.3])
  np.testing.assert_array_equal(layers.binarize(x).numpy(),
                                [-1, -1, 1, 1, 1])


def test_stochastic_binarizer_is_unbiased():
  x = tf.constant([-0.9, -0.5, 0., 0.2, 0.8])
  samples = layers.stochastic_binarize(tf.tile(x[None], [20000, 1]), seed=1)
  assert set(np.unique(samples.numpy())) <= {-1., 1.}
  # Standard error of the mean is at most 1/sqrt(20000) = 0.007.
  np.testing.assert_allclose(samples.numpy().mean(0), x.numpy(), atol=0.03)


def test_stochastic_binarizer_passes_gradients_straight_through():
  x = tf.constant([[-0.9, -0.5, 0., 0.2, 0.8]])
  weights = tf.constant([[1., 2., 3., 4., 5.]])
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = tf.reduce_sum(layers.stochastic_binarize(x) * weights)
  np.testing.assert_array_equal(tape.gradient(y, x).numpy(), weights.numpy())


def test_binarizer_layer_codes_are_exactly_plus_minus_one():
  layer = layers.Binarizer(32)
  features = tf.random.normal([2, 3, 5, 16])
  for training in (False, True):
    codes = layer(features, training=training).numpy()
    assert codes.shape == (2, 3, 5, 32)
    assert set(np.unique(codes)) <= {-1., 1.}
  assert layers.Binarizer.from_config(layer.get_config()).bits == 32
  # Inference is deterministic.
  np.testing.assert_array_equal(layer(features).numpy(), layer(features).numpy())
