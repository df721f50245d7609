"""Convolutional LSTM cell (Toderici et al. 2017, Sec. 3.1, Eq. 4-5).

    [f, i, o, j] = [sigma, sigma, sigma, tanh](W * x_t + U * h_{t-1})
    c_t = f . c_{t-1} + i . j
    h_t = o . tanh(c_t)
"""

import tensorflow as tf

from tfrnncomp.layers.conv_rnn_cell import ConvRNNCell

__all__ = ["ConvLSTMCell"]


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class ConvLSTMCell(ConvRNNCell):
  """Conv LSTM; states ``(h, c)``; the forget gate bias starts at 1."""

  input_gates = 4
  hidden_gates = 4
  state_names = ("h", "c")

  def input_bias_initializer(self, shape, dtype=None):
    f = self.filters
    return tf.concat([tf.ones([f], dtype), tf.zeros([3 * f], dtype)], 0)

  def step(self, input_gates, states):
    h, c = states
    gates = input_gates + self.hidden_conv(h)
    f, i, o, j = tf.split(gates, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(j)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, (h, c)
