"""Scalable uniform scalar quantizer of Akbari et al. 2020 (Sec. 2.2).

M. Akbari, J. Liang, J. Han, "Learned Variable-Rate Image Compression with
Residual Divisive Normalization", ICME 2020. Each channel c of the code map y
(of one image) is quantized with B bits between its own minimum and maximum,
which are sent as side information:

    m_c = min y_c,   M_c = max y_c,   L = 2^B - 1
    v   = (y - m_c) / (M_c - m_c) * L               in [0, L]
    q   = floor(v + 1/2)                 (test time: nearest level)
    q   = floor(v + u),  u ~ U[0, 1)     (training: stochastic rounding,
                                          E[q] = v, so E[y_hat] = y)
    y_hat = m_c + q * (M_c - m_c) / L

q is an integer in [0, 2^B - 1]. One network serves every B in [1, 8]: B is a
tensor, not a weight. Gradients pass straight through, d y_hat / d y = 1 (a
custom gradient, so y_hat is exactly the dequantized value); m_c and M_c are
treated as constants. A constant channel (M_c = m_c) gives q = 0, y_hat = m_c.

The decoder may read the levels on a fixed scale instead of y_hat
(``VariableRateConfig.decoder_input = "levels"``, not the paper's):

    z = 2 q / L - 1  in [-1, 1],   d z / d y = 2 / (M_c - m_c)

the same straight-through estimator seen through the affine map from y_hat
to z, so the decoder's input does not depend on the scale of y. (Measured:
it trains more slowly than the paper's y_hat; see the README.)

The side information is made exactly representable in float16 (2 bytes per
value): m_c is rounded down and M_c up to float16 values (the range still
covers the channel), and both encoder and decoder use these rounded values,
so the reconstruction the encoder sees is the decoder's. The widening is at
most one float16 step (2^-10 of the value's magnitude) at each end; the
code map comes out of a GDN, |y_i| <= 1 / sqrt(gamma_ii), so it is small
next to a channel's spread.
"""

import tensorflow as tf

__all__ = ["ScalableQuantizer", "channel_range", "levels", "quantize",
           "dequantize", "quantize_dequantize", "normalized_levels",
           "quantize_normalize", "float16_floor",
           "float16_ceil"]

_FLOAT16_MAX = 65504.


def float16_floor(x):
  """The largest float16 value <= x (for |x| <= 65504), as float32."""
  x = tf.clip_by_value(tf.cast(x, tf.float32), -_FLOAT16_MAX, _FLOAT16_MAX)
  half = tf.cast(x, tf.float16)  # Round to nearest.
  nearest = tf.cast(half, tf.float32)
  bits = tf.bitcast(half, tf.int16)
  # One float16 step towards -inf: magnitude down for positive values, up for
  # negative ones; from +-0 to the negative subnormal 0x8001.
  down = tf.where(nearest > 0., bits - 1,
                  tf.where(nearest < 0., bits + 1,
                           tf.fill(tf.shape(bits), tf.constant(-32767,
                                                               tf.int16))))
  stepped = tf.cast(tf.bitcast(down, tf.float16), tf.float32)
  return tf.where(nearest > x, stepped, nearest)


def float16_ceil(x):
  """The smallest float16 value >= x (for |x| <= 65504), as float32."""
  return -float16_floor(-tf.cast(x, tf.float32))


def channel_range(y):
  """Per-image, per-channel (min, max) of y [B, h, w, C], each [B, C].

  Rounded outwards to float16 values (see the module docstring); no gradient.
  """
  y = tf.stop_gradient(y)
  return (float16_floor(tf.reduce_min(y, axis=[1, 2])),
          float16_ceil(tf.reduce_max(y, axis=[1, 2])))


def levels(bits):
  """L = 2^B - 1 (float32) for B bits (an int or int32 tensor)."""
  bits = tf.convert_to_tensor(bits, tf.int32)
  return tf.cast(tf.bitwise.left_shift(1, bits) - 1, tf.float32)


def _broadcast(minimum, maximum):
  """[B, C] ranges -> [B, 1, 1, C] minimum and a nonzero span."""
  minimum = minimum[:, None, None, :]
  span = maximum[:, None, None, :] - minimum
  return minimum, span


def quantize(y, bits, minimum, maximum, stochastic=False, seed=None):
  """Integer levels q in [0, 2^B - 1] (as float32) of y [B, h, w, C]."""
  big_l = levels(bits)
  minimum, span = _broadcast(minimum, maximum)
  safe_span = tf.where(span > 0., span, tf.ones_like(span))
  v = tf.clip_by_value((y - minimum) / safe_span * big_l, 0., big_l)
  v = tf.where(span > 0., v, tf.zeros_like(v))
  if stochastic:
    u = tf.random.uniform(tf.shape(v), dtype=v.dtype, seed=seed)
  else:
    u = .5
  return tf.minimum(tf.floor(v + u), big_l)


def dequantize(q, bits, minimum, maximum):
  """y_hat = m + q (M - m) / L, for q [B, h, w, C] and ranges [B, C]."""
  minimum, span = _broadcast(minimum, maximum)
  return minimum + tf.cast(q, tf.float32) * (span / levels(bits))


def quantize_dequantize(y, bits, stochastic=False, seed=None):
  """(y_hat, q, minimum, maximum) with a straight-through gradient for y_hat."""
  minimum, maximum = channel_range(y)
  q = quantize(y, bits, minimum, maximum, stochastic=stochastic, seed=seed)
  y_hat = dequantize(q, bits, minimum, maximum)

  @tf.custom_gradient
  def straight_through(y):
    return y_hat, lambda grad: grad

  return straight_through(y), q, minimum, maximum


def normalized_levels(q, bits):
  """z = 2 q / L - 1 in [-1, 1] for levels q of B bits (an empty range: -1)."""
  return tf.cast(q, tf.float32) * (2. / levels(bits)) - 1.


def quantize_normalize(y, bits, stochastic=False, seed=None):
  """(z, q, minimum, maximum): levels on [-1, 1], straight-through gradient.

  The gradient is d z / d y = 2 / (M - m) per image and channel (0 for a
  constant channel), the straight-through estimate of y_hat's composed with
  the affine map y_hat -> z.
  """
  minimum, maximum = channel_range(y)
  q = quantize(y, bits, minimum, maximum, stochastic=stochastic, seed=seed)
  z = normalized_levels(q, bits)
  _, span = _broadcast(minimum, maximum)
  slope = tf.where(span > 0., 2. / tf.where(span > 0., span, 1.), 0.)

  @tf.custom_gradient
  def straight_through(y):
    return z, lambda grad: grad * slope

  return straight_through(y), q, minimum, maximum


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class ScalableQuantizer(tf.keras.layers.Layer):
  """B-bit per-channel min/max quantizer; stochastic rounding if ``training``.

  ``call(y, bits, training)`` returns ``(y_hat, q, minimum, maximum)``, or
  with ``normalize=True`` ``(z, q, minimum, maximum)``, z = 2 q / L - 1.
  """

  def call(self, inputs, bits, training=False, normalize=False):
    if normalize:
      return quantize_normalize(inputs, bits, stochastic=bool(training))
    return quantize_dequantize(inputs, bits, stochastic=bool(training))
