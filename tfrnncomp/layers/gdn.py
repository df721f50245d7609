"""Generalized divisive normalization (GDN) and its inverse (IGDN).

J. Ballé, V. Laparra, E. P. Simoncelli, "Density Modeling of Images Using a
Generalized Normalization Transformation", ICLR 2016, and "End-to-end
Optimized Image Compression", ICLR 2017. Over the channels i, j of a pixel:

    GDN:   y_i = x_i / (beta_i + sum_j gamma_ji |x_j|^alpha)^epsilon
    IGDN:  y_i = x_i * (beta_i + sum_j gamma_ji |x_j|^alpha)^epsilon

(IGDN is one fixed-point step of GDN's inverse). ``alpha = 2, epsilon = 1/2``
is the GDN of the 2017 paper, used by Islam et al. 2021 and Akbari et al.
2020 (the default here); ``alpha = epsilon = 1`` is tfc's default (the
"simplified" GDN of Johnston et al. 2019).

beta and gamma are trained through the reparameterization of
``tfc.GDNParameter`` (``p = lower_bound(v, sqrt(min + o^2))^2 - o^2`` with
``o = 2^-18``, ``beta >= 1e-6``, ``gamma >= 0``; ``tfc.lower_bound`` passes
gradients that push towards the bound) and start at ``beta = 1`` and
``gamma = 0.1 I``, exactly as ``tfc.GDN``.

Why a subclass of ``tfc.GDN`` rather than ``tfc.GDN`` itself. In TF 2.14 /
tensorflow-compression 2.14:

1. ``tfc.GDN.call`` picks its fast paths with ``self.alpha == 1 and ...`` on
   constants created eagerly in ``__init__``; inside any ``tf.function``
   (training steps, SavedModel signatures) those are captured as symbolic
   tensors and the ``if`` raises ``OperatorNotAllowedInGraphError``: a model
   holding ``tfc.GDN`` can be neither exported nor trained in graph mode.
   Here alpha and epsilon are Python floats fixed at construction and the
   branches are chosen in Python.
2. ``tfc.GDN`` keeps beta and gamma in ``tfc.GDNParameter`` modules (plain
   ``tf.Variable``s, not Keras weights): a ``.keras`` file round trip silently
   reloads them with wrong values. Here they are Keras weights
   (``add_weight``, named ``reparam_beta`` / ``reparam_gamma`` as in tfc), and
   ``tfc.GDN``'s ``beta_parameter`` / ``gamma_parameter`` are set to callables
   applying tfc's parameterization to them, so the ``beta``/``gamma``
   properties of ``tfc.GDN`` keep working.

The graph holds only core TensorFlow ops (``tfc.lower_bound`` is a
``tf.custom_gradient`` around ``tf.maximum``), so a SavedModel using it loads
without tensorflow_compression. tests/test_gdn.py checks that the
output matches ``tfc.GDN``'s (eager) for the same parameter values, and that
eager and graph execution give the same bits.
"""

import tensorflow as tf
import tensorflow_compression as tfc

__all__ = ["GDN", "REPARAM_OFFSET"]

REPARAM_OFFSET = 2. ** -18
"""The offset ``o`` of tfc.GDNParameter's reparameterization."""


class _Reparameterized:
  """tfc.GDNParameter's value ``lower_bound(v, sqrt(min + o^2))^2 - o^2``.

  A plain callable (not a tf.Module), so the variable is tracked once, as the
  layer's Keras weight.
  """

  def __init__(self, variable, minimum, offset=REPARAM_OFFSET):
    self.variable = variable
    self.minimum = float(minimum)
    self.offset = float(offset)

  def __call__(self, compute_dtype=None):
    variable = tf.convert_to_tensor(self.variable)
    if compute_dtype is not None:
      variable = tf.cast(variable, compute_dtype)
    pedestal = tf.constant(self.offset ** 2, dtype=variable.dtype)
    bound = tf.constant((self.minimum + self.offset ** 2) ** .5,
                        dtype=variable.dtype)
    return tf.math.square(tfc.lower_bound(variable, bound)) - pedestal


def _reparam_initializer(initializer, offset=REPARAM_OFFSET):
  """Initial variable value ``sqrt(max(p0 + o^2, o^2))`` (tfc.GDNParameter)."""

  def initialize(shape, dtype=None):
    value = tf.convert_to_tensor(initializer(shape, dtype=dtype))
    pedestal = tf.constant(offset ** 2, dtype=value.dtype)
    return tf.math.sqrt(tf.math.maximum(value + pedestal, pedestal))

  return initialize


@tf.keras.utils.register_keras_serializable(package="tfrnncomp")
class GDN(tfc.GDN):
  """GDN (``inverse=False``) or IGDN (``inverse=True``) over the last axis.

  Args:
    inverse: IGDN instead of GDN.
    alpha: fixed exponent of |x_j| (2 in Ballé et al. 2017).
    epsilon: fixed exponent of the pool (1/2 in Ballé et al. 2017).
    beta_min: lower bound of beta.
    gamma_init: initial diagonal of gamma (off-diagonal 0).
    rectify: apply a ReLU to the inputs first.
    max_gain: IGDN only, 0 for none: bound the gain ``(beta_i + sum_j
      gamma_ji |x_j|^alpha)^epsilon`` by this value (the pool is clipped at
      ``max_gain^(1/epsilon)``, where its gradient is zero). IGDN's output
      grows as |x|^(1 + alpha epsilon): a chain of them can overflow on
      unusual inputs (the 10 IGDNs of Akbari 2020's decoder did in training);
      the bound makes each one at most ``max_gain`` times linear.
  """

  def __init__(self, inverse=False, alpha=2., epsilon=.5, beta_min=1e-6,
               gamma_init=.1, rectify=False, max_gain=0., **kwargs):
    self.max_gain = float(max_gain)
    if self.max_gain < 0.:
      raise ValueError(f"max_gain must be >= 0, got {max_gain}")
    if self.max_gain and not inverse:
      raise ValueError("max_gain bounds IGDN only (inverse=True)")
    self.alpha_value = float(alpha)
    self.epsilon_value = float(epsilon)
    self.beta_min = float(beta_min)
    self.gamma_init = float(gamma_init)
    super().__init__(
        inverse=inverse, rectify=rectify, data_format="channels_last",
        alpha_parameter=self.alpha_value, epsilon_parameter=self.epsilon_value,
        beta_initializer="ones",
        gamma_initializer=tf.keras.initializers.Identity(self.gamma_init),
        **kwargs)

  def build(self, input_shape):
    input_shape = tf.TensorShape(input_shape)
    channels = input_shape[-1]
    if channels is None:
      raise ValueError("The channel dimension of the inputs must be defined.")
    self.reparam_beta = self.add_weight(
        name="reparam_beta", shape=[channels], dtype=self.variable_dtype,
        initializer=_reparam_initializer(self.beta_initializer))
    self.reparam_gamma = self.add_weight(
        name="reparam_gamma", shape=[channels, channels],
        dtype=self.variable_dtype,
        initializer=_reparam_initializer(self.gamma_initializer))
    # tfc.GDN accepts callables for its parameters (and then creates none).
    self.beta_parameter = _Reparameterized(self.reparam_beta, self.beta_min)
    self.gamma_parameter = _Reparameterized(self.reparam_gamma, 0.)
    super().build(input_shape)

  def norm_pool(self, inputs):
    """``beta_i + sum_j gamma_ji |x_j|^alpha`` for (rectified) inputs x.

    The layer is linear where this equals beta (``tfrnncomp.gdn_regime``
    measures how far it is from that on real data).
    """
    if self.alpha_value == 1.:
      norm_pool = inputs if self.rectify else tf.math.abs(inputs)
    elif self.alpha_value == 2.:
      norm_pool = tf.math.square(inputs)
    else:
      norm_pool = tf.math.abs(inputs) ** self.alpha_value
    rank = inputs.shape.rank
    gamma = self.gamma_parameter(self.compute_dtype)
    beta = self.beta_parameter(self.compute_dtype)
    if rank == 2:
      norm_pool = tf.linalg.matmul(norm_pool, gamma)
    else:
      gamma = tf.reshape(gamma, (rank - 2) * [1] + gamma.shape.as_list())
      norm_pool = tf.nn.convolution(norm_pool, gamma, padding="VALID")
    return tf.nn.bias_add(norm_pool, beta)

  def call(self, inputs):
    """tfc.GDN's computation, with the fast paths chosen in Python."""
    inputs = tf.convert_to_tensor(inputs, dtype=self.compute_dtype)
    if self.rectify:
      inputs = tf.nn.relu(inputs)
    norm_pool = self.norm_pool(inputs)
    if self.max_gain:
      norm_pool = tf.math.minimum(
          norm_pool, self.max_gain ** (1. / self.epsilon_value))
    if self.epsilon_value == .5:
      # x * rsqrt(pool), not x / sqrt(pool): Grappler rewrites the latter into
      # the former in graphs only, and eager and graph results would differ.
      if self.inverse:
        return inputs * tf.math.sqrt(norm_pool)
      return inputs * tf.math.rsqrt(norm_pool)
    if self.epsilon_value != 1.:
      norm_pool = norm_pool ** self.epsilon_value
    if self.inverse:
      return inputs * norm_pool
    return inputs / norm_pool

  def get_config(self):
    config = tf.keras.layers.Layer.get_config(self)
    config.update(inverse=self.inverse, alpha=self.alpha_value,
                  epsilon=self.epsilon_value, beta_min=self.beta_min,
                  gamma_init=self.gamma_init, rectify=self.rectify)
    if self.max_gain:
      config.update(max_gain=self.max_gain)
    return config
