"""Convolutional associative LSTM cell (Danihelka et al. 2016, "Associative
Long Short-Term Memory", ICML; used by Toderici et al. 2017, Sec. 3.1).

The hidden and cell states hold ``filters / 2`` complex numbers (real parts in
the first half of the channels, imaginary parts in the second). With ``(*)``
the element-wise complex product and ``bound(z) = z / max(1, |z|)``:

    [f, i, o] = sigma(W_g * x_t + U_g * h_{t-1})        (real gates)
    [r_in, r_out, u] = bound(W_r * x_t + U_r * h_{t-1})  (complex keys, input)
    c_t = f . c_{t-1} + r_in (*) (i . u)
    h_t = o . bound(r_out (*) c_t)

One copy of the holographic memory is kept (N_copies = 1). The keys start as
the identity rotation (bias 1 + 0i): with zero keys the output would be cubic
in the input at initialization, and the signal vanishes through a stack of
cells. The forget gate bias starts at 1, as in the LSTM.
"""

import tensorflow as tf

from tfrnncomp.layers.conv_rnn_cell import ConvRNNCell

__all__ = ["AssociativeLSTMCell"]


def _split_complex(z):
  return tf.split(z, 2, axis=-1)


def _complex_mul(a, b):
  a_re, a_im = _split_complex(a)
  b_re, b_im = _split_complex(b)
  return tf.concat([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re], -1)


def _bound(z):
  re, im = _split_complex(z)
  norm = tf.sqrt(re * re + im * im + 1e-12)
  scale = 1. / tf.maximum(1., norm)
  return tf.concat([re * scale, im * scale], -1)


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class AssociativeLSTMCell(ConvRNNCell):
  """Conv associative LSTM; states ``(h, c)``; ``filters`` must be even."""

  # Three real gates of filters/2 and three complex maps of filters channels.
  input_gates = 4.5
  hidden_gates = 4.5
  state_names = ("h", "c")

  def __init__(self, filters, *args, **kwargs):
    if int(filters) % 2:
      raise ValueError(f"AssociativeLSTMCell needs even filters, got {filters}")
    super().__init__(filters, *args, **kwargs)

  def input_bias_initializer(self, shape, dtype=None):
    n = self.filters // 2
    ones, zeros = tf.ones([n], dtype), tf.zeros([n], dtype)
    #       f     i      o      r_in re/im    r_out re/im   u re/im
    return tf.concat([ones, zeros, zeros, ones, zeros, ones, zeros, zeros,
                      zeros], 0)

  def step(self, input_gates, states):
    h, c = states
    n = self.filters // 2
    gates = input_gates + self.hidden_conv(h)
    real_gates, keys = gates[..., :3 * n], gates[..., 3 * n:]
    f, i, o = tf.split(tf.sigmoid(real_gates), 3, axis=-1)
    r_in, r_out, u = tf.split(keys, 3, axis=-1)
    duplicate = lambda g: tf.concat([g, g], -1)  # Same gate on re and im.
    c = duplicate(f) * c + _complex_mul(_bound(r_in), duplicate(i) * _bound(u))
    h = duplicate(o) * _bound(_complex_mul(_bound(r_out), c))
    return h, (h, c)
