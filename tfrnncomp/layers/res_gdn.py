"""ResGDN and ResIGDN blocks of Akbari et al. 2020.

M. Akbari, J. Liang, J. Han, "Learned Variable-Rate Image Compression with
Residual Divisive Normalization", ICME 2020 (arXiv:1912.05688), Sec. 2.1: a
residual block whose two convolutions are each followed by GDN (encoder) or
IGDN (decoder), around an identity shortcut:

    x --> Conv k x k, N --> (I)GDN --> Conv k x k, N --> (I)GDN --> (+) --> y
    |                                                                ^
    +----------------------------------------------------------------+

Both convolutions are stride 1 with "same" padding, so the block keeps the
shape of its input, whose channel count must be ``filters``.
"""

import tensorflow as tf

from tfrnncomp.layers.gdn import GDN

__all__ = ["ResGDN"]


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class ResGDN(tf.keras.layers.Layer):
  """``y = x + (I)GDN(Conv((I)GDN(Conv(x))))``; ResIGDN if ``inverse``."""

  def __init__(self, filters, kernel_size=3, inverse=False, max_gain=0.,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = int(kernel_size)
    self.inverse = bool(inverse)
    self.max_gain = float(max_gain)
    norm = "igdn" if self.inverse else "gdn"
    self.conv1 = tf.keras.layers.Conv2D(self.filters, self.kernel_size,
                                        padding="same", name="conv1")
    self.norm1 = GDN(inverse=self.inverse, max_gain=self.max_gain,
                     name=f"{norm}1")
    self.conv2 = tf.keras.layers.Conv2D(self.filters, self.kernel_size,
                                        padding="same", name="conv2")
    self.norm2 = GDN(inverse=self.inverse, max_gain=self.max_gain,
                     name=f"{norm}2")

  def build(self, input_shape):
    channels = tf.TensorShape(input_shape)[-1]
    if channels != self.filters:
      raise ValueError(f"{self.name}: the identity shortcut needs "
                       f"{self.filters} input channels, got {channels}")
    super().build(input_shape)

  def call(self, inputs):
    y = self.norm1(self.conv1(inputs))
    y = self.norm2(self.conv2(y))
    return inputs + y

  def get_config(self):
    config = super().get_config()
    config.update(filters=self.filters, kernel_size=self.kernel_size,
                  inverse=self.inverse)
    if self.max_gain:
      config.update(max_gain=self.max_gain)
    return config
