"""Convolutional GRU and residual GRU cells (Toderici et al. 2017, Sec. 3.1).

GRU (Eq. 6-9 of the paper; reset applied before the hidden convolution):

    z_t = sigma(W_z * x_t + U_z * h_{t-1})
    r_t = sigma(W_r * x_t + U_r * h_{t-1})
    h_t = (1 - z_t) . h_{t-1} + z_t . tanh(W * x_t + U * (r_t . h_{t-1}))
    o_t = h_t

Residual GRU: the same recurrence, but the output adds a projection of the
cell's input (a residual connection, after He et al. 2016):

    o_t = h_t + W_o * x_t

The projection ``W_o`` shares the input convolution (one fused kernel), so it
has the input kernel size and stride. Only ``h_t`` is carried as state.
"""

import tensorflow as tf

from tfrnncomp.layers.conv_rnn_cell import ConvRNNCell

__all__ = ["ConvGRUCell", "ResidualGRUCell"]


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class ConvGRUCell(ConvRNNCell):
  """Conv GRU; state ``(h,)``."""

  input_gates = 3
  hidden_gates = 2  # z and r; the candidate has its own hidden convolution.
  state_names = ("h",)

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.candidate_conv = self.conv(
        self.filters, self.hidden_kernel_size, padding="same", use_bias=False,
        name="candidate_conv")

  def gru(self, input_gates, h):
    x_z, x_r, x_h = tf.split(input_gates[..., :3 * self.filters], 3, axis=-1)
    h_z, h_r = tf.split(self.hidden_conv(h), 2, axis=-1)
    z = tf.sigmoid(x_z + h_z)
    r = tf.sigmoid(x_r + h_r)
    candidate = tf.tanh(x_h + self.candidate_conv(r * h))
    return (1. - z) * h + z * candidate

  def step(self, input_gates, states):
    h = self.gru(input_gates, states[0])
    return h, (h,)


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class ResidualGRUCell(ConvGRUCell):
  """Residual GRU: output ``h_t + W_o * x_t``; state ``(h,)``."""

  input_gates = 4

  def step(self, input_gates, states):
    h = self.gru(input_gates, states[0])
    return h + input_gates[..., 3 * self.filters:], (h,)
