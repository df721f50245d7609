"""Base class of the convolutional recurrent cells of Toderici et al. 2017.

Every cell of the paper (Sec. 3.1) has the same shape: the gates are the sum of
an *input* convolution ``W * x`` (kernel ``kernel_size``, stride ``strides``;
stride 2 in the encoder) and a stride-1 *hidden* convolution ``U * h`` (kernel
``hidden_kernel_size``); the cells differ only in how the gates combine. As in
Keras' ConvLSTM, all gates of one convolution are computed by one fused kernel
and split with ``tf.split``.

A cell is called as ``output, new_states = cell(x, states)``; it owns the shape
of its states (:meth:`zero_state`), so no other code writes them out. Its
convolutions may compute in bfloat16 (``compute_dtype``, see
:mod:`tfrnncomp.layers.precision`); gates and states stay float32.
"""

import math

import tensorflow as tf

from tfrnncomp.layers import precision

__all__ = ["ConvRNNCell"]


class ConvRNNCell(tf.keras.layers.Layer):
  """Abstract convolutional RNN cell; subclasses define the gate algebra.

  Subclasses set ``input_gates`` and ``hidden_gates`` (how many ``filters``-wide
  maps each convolution produces), ``state_names`` and implement :meth:`step`.
  """

  input_gates = 1
  hidden_gates = 1
  state_names = ("h",)

  def __init__(self, filters, kernel_size=3, strides=1, hidden_kernel_size=1,
               compute_dtype="float32", **kwargs):
    super().__init__(**kwargs)
    self.conv_dtype = precision.check_compute_dtype(compute_dtype)
    self.filters = int(filters)
    self.kernel_size = int(kernel_size)
    self.strides = int(strides)
    self.hidden_kernel_size = int(hidden_kernel_size)
    self.input_conv = self.conv(
        int(self.input_gates * self.filters), self.kernel_size,
        strides=self.strides, padding="same",
        bias_initializer=self.input_bias_initializer, name="input_conv")
    self.hidden_conv = self.conv(
        int(self.hidden_gates * self.filters), self.hidden_kernel_size,
        padding="same", use_bias=False, name="hidden_conv")

  def conv(self, *args, **kwargs):
    """A convolution of this cell (in its ``compute_dtype``)."""
    return precision.Conv2D(*args, compute_dtype=self.conv_dtype,
                            **kwargs)

  @property
  def state_size(self):
    """Channels of each state tensor (spatial size follows the input)."""
    return tuple(self.filters for _ in self.state_names)

  def output_spatial_shape(self, height, width):
    """Spatial shape of outputs and states for an input of height x width."""
    if isinstance(height, int) and isinstance(width, int):
      return (math.ceil(height / self.strides), math.ceil(width / self.strides))
    return ((height + self.strides - 1) // self.strides,
            (width + self.strides - 1) // self.strides)

  def zero_state(self, batch_size, height, width, dtype=tf.float32):
    """Initial (zero) states for inputs of spatial size height x width."""
    h, w = self.output_spatial_shape(height, width)
    return tuple(tf.zeros(tf.stack([batch_size, h, w, c]), dtype=dtype)
                 for c in self.state_size)

  def get_initial_state(self, inputs):
    shape = tf.shape(inputs)
    return self.zero_state(shape[0], shape[1], shape[2], inputs.dtype)

  def input_bias_initializer(self, shape, dtype=None):
    """Initial bias of the input convolution (zeros; see ConvLSTMCell)."""
    return tf.zeros(shape, dtype=dtype)

  def call(self, inputs, states):
    states = tuple(states)
    if len(states) != len(self.state_names):
      raise ValueError(f"{type(self).__name__} takes {len(self.state_names)} "
                       f"states {self.state_names}, got {len(states)}")
    return self.step(self.input_conv(inputs), states)

  def step(self, input_gates, states):
    """Combines the input convolution's output with the states."""
    raise NotImplementedError

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size,
                  strides=self.strides,
                  hidden_kernel_size=self.hidden_kernel_size,
                  compute_dtype=self.conv_dtype)
    return config
