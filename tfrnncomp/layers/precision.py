"""Convolutions computed in bfloat16 with float32 weights, inputs and outputs.

The recurrent codecs spend most of their time in convolutions. On CPUs with
AVX512-BF16 or AMX (e.g. Intel Sapphire Rapids, the machines this project is
developed on), oneDNN runs bfloat16 convolutions several times faster than
float32 ones; measured here with TensorFlow 2.14 and oneDNN on a 3x3
convolution of 256 to 512 channels at 128x192: 262 GFLOP/s in float32,
1,787 GFLOP/s in bfloat16.

:class:`Conv2D` is a Keras ``Conv2D`` whose ``compute_dtype`` may be
``"bfloat16"``: its kernel and bias stay float32 variables (same names and
shapes as a float32 layer, so checkpoints and SavedModels of either precision
load into the other), its input is rounded to bfloat16, the products are
accumulated in float32 by oneDNN, and its output is returned as float32::

    y = float32(conv(bf16(x), bf16(W))) + float32(bf16(b))

The bias is added in float32 so that no bfloat16 op is left that only
oneDNN's AVX512 kernels provide: the same graph (and a SavedModel exported
with it) runs on any x86 CPU, emulating bfloat16 where it is not native.

Everything around the convolutions (gates, recurrent states, the
reconstruction ``x_hat``) stays float32, so only the convolution inputs lose
precision (8 bits of mantissa). On the shipped residual GRU this changed the
mean PSNR of 4 Kodak images by less than 0.01 dB at every iteration count
(``tests/test_precision.py`` checks parity on a small network).

On CPUs without native bfloat16, keep ``"float32"``: emulated bfloat16 is
slower.
"""

import tensorflow as tf

from tfrnncomp.config import COMPUTE_DTYPES

__all__ = ["COMPUTE_DTYPES", "Conv2D", "check_compute_dtype"]


def check_compute_dtype(compute_dtype):
  """Returns ``compute_dtype`` if it is one of :data:`COMPUTE_DTYPES`."""
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got "
                     f"{compute_dtype!r}")
  return compute_dtype


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class Conv2D(tf.keras.layers.Conv2D):
  """``tf.keras.layers.Conv2D`` with a ``compute_dtype`` of its own.

  Args:
    *args: as ``tf.keras.layers.Conv2D``.
    compute_dtype: ``"float32"`` or ``"bfloat16"`` (see the module docstring).
    **kwargs: as ``tf.keras.layers.Conv2D`` (not ``dtype``).
  """

  def __init__(self, *args, compute_dtype="float32", **kwargs):
    self.conv_dtype = check_compute_dtype(compute_dtype)
    kwargs.pop("dtype", None)  # From get_config: the policy follows from
    if compute_dtype == "bfloat16":  # compute_dtype.
      kwargs["dtype"] = tf.keras.mixed_precision.Policy("mixed_bfloat16")
    super().__init__(*args, **kwargs)

  def call(self, inputs):
    if self.conv_dtype == "float32":
      return super().call(inputs)
    # The bias is added in float32, after the cast: a bfloat16 BiasAdd would
    # be fused into the convolution by Grappler's remapper (_FusedConv2D),
    # which TensorFlow's default CPU kernels support only in float32: the
    # graph would then run only on CPUs where oneDNN has native bfloat16
    # (AVX512), and fail on every other CPU.
    outputs = self.convolution_op(tf.cast(inputs, self.compute_dtype),
                                  self.kernel)  # Auto-cast to bfloat16.
    outputs = tf.cast(outputs, tf.float32)
    if self.use_bias:
      outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, tf.float32))
    if self.activation is not None:
      outputs = self.activation(outputs)
    return outputs

  def get_config(self):
    config = super().get_config()
    config.update(compute_dtype=self.conv_dtype)
    return config
