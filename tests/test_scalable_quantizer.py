"""Tests of the Akbari 2020 scalable (B-bit, per-channel min/max) quantizer."""

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp import layers
from tfrnncomp.layers import scalable_quantizer as sq


def _code_map(seed=0, shape=(2, 5, 7, 4)):
  rng = np.random.default_rng(seed)
  scale = rng.uniform(.1, 10., shape[-1])
  return tf.constant(rng.normal(size=shape) * scale + rng.normal(size=
                                                                 shape[-1]),
                     tf.float32)


@pytest.mark.parametrize("bits", range(1, 9))
def test_b_bits_give_integer_levels_from_0_to_2_to_the_b_minus_1(bits):
  y = _code_map(bits)
  minimum, maximum = layers.channel_range(y)
  for stochastic in (False, True):
    q = layers.quantize(y, bits, minimum, maximum, stochastic=stochastic)
    q = q.numpy()
    np.testing.assert_array_equal(q, np.round(q))
    assert q.min() >= 0 and q.max() <= 2 ** bits - 1
  q = layers.quantize(y, bits, minimum, maximum).numpy()
  # Each channel's minimum and maximum land on (or, where the float16
  # widening of the range exceeds half a level, next to) the end levels.
  slack = 0 if bits <= 4 else 1
  assert np.all(q.min(axis=(1, 2)) <= slack)
  assert np.all(q.max(axis=(1, 2)) >= 2 ** bits - 1 - slack)
  # Nearest-level error: at most half a step (plus float rounding).
  y_hat = layers.dequantize(q, bits, minimum, maximum).numpy()
  step = ((maximum - minimum) / (2 ** bits - 1)).numpy()[:, None, None, :]
  assert np.all(np.abs(y_hat - y.numpy()) <= step * (.5 + 1e-4))


def test_error_halves_with_every_bit():
  y = _code_map(3, (1, 16, 16, 8))
  errors = []
  for bits in range(1, 9):
    y_hat, _, _, _ = sq.quantize_dequantize(y, bits)
    errors.append(float(tf.reduce_mean(tf.square(y_hat - y))))
  ratios = np.array(errors[:-1]) / np.array(errors[1:])
  assert np.all(ratios > 2.5), ratios  # ~4 per bit for fine steps.


def test_stochastic_rounding_is_unbiased():
  values = np.array([0., .13, .5, .77, 1.], np.float32)  # Range [0, 1].
  draws = 40000
  y = tf.constant(np.tile(values, draws).reshape(1, 1, -1, 1))
  y_hat, q, minimum, maximum = sq.quantize_dequantize(y, 2, stochastic=True)
  assert minimum.numpy().item() == 0. and maximum.numpy().item() == 1.
  means = y_hat.numpy().reshape(draws, len(values)).mean(axis=0)
  # Standard error <= (1/3) / 2 / sqrt(draws) ~ 8e-4.
  np.testing.assert_allclose(means, values, atol=4e-3)
  # Deterministic rounding is biased for .13 (-> 0) and .77 (-> 2/3).
  y_det, _, _, _ = sq.quantize_dequantize(y, 2)
  assert abs(y_det.numpy().reshape(draws, -1).mean(axis=0)[1] - .13) > .1


@pytest.mark.parametrize("graph", [False, True])
def test_gradient_passes_straight_through(graph):
  y = _code_map(5)
  weights = tf.random.stateless_normal(y.shape, seed=[1, 2])

  def gradient(y):
    with tf.GradientTape() as tape:
      tape.watch(y)
      y_hat, _, _, _ = layers.ScalableQuantizer()(y, 3, training=True)
      loss = tf.reduce_sum(y_hat * weights)
    return tape.gradient(loss, y), y_hat

  if graph:
    gradient = tf.function(gradient)
  grad, y_hat = gradient(y)
  np.testing.assert_array_equal(grad.numpy(), weights.numpy())
  # The output is exactly a dequantized level, not y + (y_hat - y).
  minimum, maximum = layers.channel_range(y)
  levels = (y_hat - minimum[:, None, None]) / (
      maximum - minimum)[:, None, None] * 7.
  np.testing.assert_allclose(levels.numpy(), np.round(levels.numpy()),
                             atol=1e-4)


def test_constant_channels_and_a_bits_tensor():
  y = tf.concat([tf.fill([1, 3, 3, 1], 2.5), _code_map(6, (1, 3, 3, 1))], -1)
  y_hat, q, minimum, _ = sq.quantize_dequantize(y, tf.constant(4))
  np.testing.assert_array_equal(q.numpy()[..., 0], 0)
  np.testing.assert_array_equal(y_hat.numpy()[..., 0], 2.5)
  assert minimum.numpy()[0, 0] == 2.5


def test_side_information_is_float16_and_covers_the_range():
  rng = np.random.default_rng(0)
  values = np.concatenate([rng.normal(size=500) * 10. ** rng.integers(
      -6, 4, 500), [0., -0., 1e-9, -1e-9, 65504., -65504.]]).astype(np.float32)
  low = sq.float16_floor(values).numpy()
  high = sq.float16_ceil(values).numpy()
  for bound in (low, high):
    np.testing.assert_array_equal(bound.astype(np.float16).astype(np.float32),
                                  bound)
  assert np.all(low <= values) and np.all(high >= values)
  # Tight: the next float16 value beyond the bound would no longer cover.
  exact = values.astype(np.float16).astype(np.float32) == values
  np.testing.assert_array_equal(low[exact], values[exact])
  np.testing.assert_array_equal(high[exact], values[exact])
  above_low = np.nextafter(low[~exact].astype(np.float16), np.float16(np.inf))
  assert np.all(above_low.astype(np.float32) > values[~exact])


@pytest.mark.parametrize("graph", [False, True])
def test_normalized_levels_are_on_a_fixed_scale_with_a_scaled_gradient(graph):
  """z = 2q/L - 1 in [-1, 1]; dz/dy = 2 / (M - m); a constant channel: -1, 0."""
  y = tf.concat([_code_map(7, (2, 4, 5, 3)) * 40.,
                 tf.fill([2, 4, 5, 1], 3.)], -1)
  weights = tf.random.stateless_normal(y.shape, seed=[3, 4])

  def gradient(y):
    with tf.GradientTape() as tape:
      tape.watch(y)
      z, q, low, high = layers.ScalableQuantizer()(y, 3, training=True,
                                                   normalize=True)
      loss = tf.reduce_sum(z * weights)
    return tape.gradient(loss, y), z, q, low, high

  if graph:
    gradient = tf.function(gradient)
  grad, z, q, low, high = gradient(y)
  np.testing.assert_allclose(z.numpy(), q.numpy() * 2. / 7. - 1., atol=1e-6)
  assert z.numpy().min() >= -1. and z.numpy().max() <= 1.
  np.testing.assert_array_equal(q.numpy(), np.round(q.numpy()))
  span = (high - low).numpy()[:, None, None, :]
  np.testing.assert_allclose(grad.numpy()[..., :3],
                             weights.numpy()[..., :3] * 2. / span[..., :3],
                             rtol=1e-5)
  np.testing.assert_array_equal(z.numpy()[..., 3], -1.)
  np.testing.assert_array_equal(grad.numpy()[..., 3], 0.)
  # The same levels as the dequantizing path, whatever the scale of y.
  _, q_scaled, _, _ = sq.quantize_normalize(y * 8., 3)  # Exact in float16.
  np.testing.assert_array_equal(
      sq.quantize_normalize(y, 3)[1].numpy(), q_scaled.numpy())
  np.testing.assert_array_equal(sq.quantize_dequantize(y, 3)[1].numpy(),
                                sq.quantize_normalize(y, 3)[1].numpy())
