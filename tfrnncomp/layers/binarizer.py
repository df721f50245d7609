"""Binarizer of Toderici et al. 2016/2017 (Sec. 3 of the 2017 paper).

    b(x) = sign(tanh(W * x))                              (inference)
    b(x) = x + eps,  eps = 1 - x   with probability (1 + x) / 2
                     eps = -1 - x  with probability (1 - x) / 2   (training)

with ``x = tanh(W * x)`` from a 1x1 convolution producing ``bits`` channels.
The stochastic rule is unbiased, E[b(x)] = x, and its gradient is passed
straight through: d b / d x = 1 (Raiko et al. 2015; Toderici et al. 2016).
``sign(0)`` is taken as +1, so codes are always exactly +-1.
"""

import tensorflow as tf

from tfrnncomp.layers import precision

__all__ = ["Binarizer", "stochastic_binarize", "binarize"]


def binarize(x):
  """Deterministic binarization: +1 where x >= 0, else -1."""
  return tf.where(x >= 0., tf.ones_like(x), -tf.ones_like(x))


def stochastic_binarize(x, seed=None):
  """+1 with probability (1 + x) / 2, else -1; straight-through gradient.

  The codes are exactly +-1 (a custom gradient, rather than
  ``x + stop_gradient(b - x)``, which rounds to values such as -0.99999994).
  """
  u = tf.random.uniform(tf.shape(x), dtype=x.dtype, seed=seed)

  @tf.custom_gradient
  def straight_through(x):
    b = tf.where(u < (1. + x) / 2., tf.ones_like(x), -tf.ones_like(x))
    return b, lambda grad: grad

  return straight_through(x)


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class Binarizer(tf.keras.layers.Layer):
  """1x1 conv -> tanh -> +-1 codes (stochastic if ``training``)."""

  def __init__(self, bits, compute_dtype="float32", **kwargs):
    super().__init__(**kwargs)
    self.bits = int(bits)
    self.conv_dtype = precision.check_compute_dtype(compute_dtype)
    self.conv = precision.Conv2D(self.bits, 1, use_bias=False,
                                 compute_dtype=compute_dtype, name="conv")

  def call(self, inputs, training=False):
    x = tf.tanh(self.conv(inputs))
    if training:
      return stochastic_binarize(x)
    return binarize(x)

  def get_config(self):
    config = super().get_config()
    config.update(bits=self.bits, compute_dtype=self.conv_dtype)
    return config
