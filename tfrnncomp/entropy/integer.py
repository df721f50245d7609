"""The entropy model's coding path in exact integer arithmetic.

A range decoder must choose, for every bit, the same probability bin as the
encoder, or it decodes garbage from there on (and the CRC, which covers the
bytes, cannot tell). The float32 network of
:class:`~tfrnncomp.entropy.pixelrnn.BinaryPixelRNN` computes its logits with
whatever convolution and ``tanh`` kernels the machine has: oneDNN or Eigen,
AVX2 or AVX512 sum in different orders, and now and then a logit lands on
the other side of a bin boundary (measured on kodim23's 786,432 code bits,
oneDNN on vs off: logits apart by up to 1.0e-5, 5 bins different; a stream
coded with oneDNN and decoded with ``TF_ENABLE_ONEDNN_OPTS=0`` decoded
iteration 1 only). This
module is the fix of Ballé, Johnston, Minnen, "Integer Networks for Data
Compression with Latent-Variable Models" (ICLR 2019): the coding path runs
on integers, so every machine computes the same logits, bit for bit.

:class:`IntegerPixelRNN` is made once from a trained network (post-training
quantization) and has its coding methods (``progressive_context``,
``row_context``, ``position_logits``, ``zero_row_state``, ``config``), so
:mod:`tfrnncomp.entropy.range_coding` runs either. Its numbers are integers
(weights and tables stored as int32) computed in float64 tensors; every sum
of products stays below 2^53, so float64 adds and multiplies them exactly,
in any order, with or without FMA:

    activations   x_q = floor(x 2^A), A = ACTIVATION_BITS = 12, clipped to
                  |x| <= 2^CLIP_BITS = 256 (the bits b = +-1 are +-2^A)
    weights       W_q = round(W 2^s), one exponent s per tensor, chosen so
                  that max |W_q| = 2^WEIGHT_BITS = 2^15 at most
    biases        b_q = round(b 2^(A + s))       (the accumulator's scale)
    a layer       y_q = clip(floor((sum W_q x_q + b_q) 2^-s))   (scale 2^A)
    sigmoid, tanh y_q = table[clip(floor(x_q 2^(T - A)))], T = TABLE_BITS =
                  10: 2^10 entries per unit over [-8, 8), each the rounded
                  f(centre) 2^A; stored in the model, never recomputed
    products      (u_q v_q) 2^-A, floored (the LSTM's gates times states)
    logits        l = y_q 2^-A, exact, so bins_lib.logits_to_bins is exact
    bit groups    l_k += sum_m W_q[m, k] b_m 2^-A, W_q = round(W 2^A) masked
                  (integers times +-1: exact)

Every rescaling is by a power of two (exact) and every rounding is a floor of
an exact number, so nothing depends on the platform's float rounding. Bound:
|x_q| <= 2^20, |W_q| <= 2^15 and fan-in <= 2^11 keep every accumulator below
2^46.

What the quantization costs is measured on the coded files
(``tools/measure_entropy_coding.py`` compares them with the float model's
cross-entropy); the float network stays the one that is trained and the one
whose cross-entropy the ``cross_entropy`` signature reports.
"""

import numpy as np
import tensorflow as tf

__all__ = ["ACTIVATION_BITS", "WEIGHT_BITS", "TABLE_BITS", "CLIP_BITS",
           "TABLE_RANGE", "IntegerPixelRNN", "arithmetic_info"]

ACTIVATION_BITS = 12
"""A: fractional bits of every activation."""

WEIGHT_BITS = 15
"""Largest weight magnitude in a tensor, in bits (sign excluded)."""

TABLE_BITS = 10
"""T: table entries per unit of the sigmoid and tanh inputs."""

TABLE_RANGE = 8
"""The tables cover inputs in [-8, 8); beyond, the end entries."""

CLIP_BITS = 8
"""Activations are clipped to |x| <= 2^CLIP_BITS (never reached in practice;
it bounds the accumulators)."""

_DTYPE = tf.float64


def arithmetic_info():
  """The constants above, as recorded in ``entropy.json``."""
  return {"kind": "integer", "version": 1,
          "activation_bits": ACTIVATION_BITS, "weight_bits": WEIGHT_BITS,
          "table_bits": TABLE_BITS, "table_range": TABLE_RANGE,
          "clip_bits": CLIP_BITS}


def _exponent(weights):
  """s with max |W| 2^s <= 2^WEIGHT_BITS (s = WEIGHT_BITS for zeros)."""
  largest = float(np.max(np.abs(weights))) if np.size(weights) else 0.
  if largest == 0.:
    return WEIGHT_BITS
  return WEIGHT_BITS - int(np.ceil(np.log2(largest)))


def _table(function):
  steps = TABLE_RANGE << TABLE_BITS
  centres = (np.arange(-steps, steps, dtype=np.float64) + 0.5) / (
      1 << TABLE_BITS)
  return np.round(function(centres) * (1 << ACTIVATION_BITS))


def _sigmoid(x):
  return 1. / (1. + np.exp(-x))


class _Affine(tf.Module):
  """An integer layer: y_q = clip(floor((W_q * x_q + b_q) 2^-s)).

  ``kind`` is "conv" (NHWC, ``padding``) or "dense" (last axis).
  """

  def __init__(self, kernel, bias=None, kind="conv", padding="VALID",
               relu=False, name=None):
    super().__init__(name=name)
    kernel = np.asarray(kernel, np.float64)
    self.shift = _exponent(kernel)
    self.kernel = tf.Variable(np.round(kernel * 2. ** self.shift),
                              trainable=False, dtype=tf.int32, name="kernel")
    if bias is None:
      bias = np.zeros(kernel.shape[-1])
    self.bias = tf.Variable(
        np.round(np.asarray(bias, np.float64) *
                 2. ** (ACTIVATION_BITS + self.shift)),
        trainable=False, dtype=_DTYPE, name="bias")
    self.kind, self.padding, self.relu = kind, padding, relu

  def accumulate(self, x):
    """The exact sum W_q x_q + b_q (scale 2^(A + s))."""
    kernel = tf.cast(self.kernel, _DTYPE)  # Stored as int32: compact.
    if self.kind == "conv":
      total = tf.nn.conv2d(x, kernel, 1, self.padding)
    else:
      total = tf.matmul(x, kernel)
    return total + self.bias

  def rescale(self, total):
    return _clip(tf.floor(total * 2. ** -self.shift), self.relu)

  def __call__(self, x):
    return self.rescale(self.accumulate(x))


def _clip(x, relu=False):
  limit = float(1 << (CLIP_BITS + ACTIVATION_BITS))
  return tf.clip_by_value(x, 0. if relu else -limit, limit)


class IntegerPixelRNN(tf.Module):
  """The coding path of a :class:`BinaryPixelRNN`, in integers.

  Args:
    model: the trained (built) float network; its weights are quantized once,
      here (later changes to it are not seen).
  """

  def __init__(self, model, name=None):
    super().__init__(name=name or model.config.name + "_integer")
    self.config = config = model.config
    c, r, k = config.filters, config.radius, config.bits
    w = lambda layer: layer.kernel.numpy()
    b = lambda layer: layer.bias.numpy()
    self.above = _Affine(w(model.above), name="above")
    self.left = _Affine(w(model.left).reshape([r * k, c]), kind="dense",
                        name="left")
    self.lstm_input = _Affine(w(model.lstm_input), b(model.lstm_input),
                              padding="SAME", name="lstm_input")
    self.lstm_state = _Affine(w(model.lstm_state), padding="SAME",
                              name="lstm_state")
    self.from_state = _Affine(w(model.from_state), b(model.from_state),
                              kind="dense", name="from_state")
    self.progressive = _Affine(w(model.progressive), b(model.progressive),
                               padding="SAME", relu=True, name="progressive")
    self.progressive_out = _Affine(w(model.progressive_out),
                                   name="progressive_out")
    self.hidden = _Affine(w(model.hidden), b(model.hidden), kind="dense",
                          relu=True, name="hidden")
    self.out = _Affine(w(model.out), b(model.out), kind="dense", name="out")
    one = 1 << ACTIVATION_BITS
    if config.bit_groups > 1:
      # The logits' scale 2^A: b_m = +-1 adds +-W_q[m, k] to logit k's y_q.
      masked = model.intra.numpy().astype(np.float64) * np.asarray(
          config.intra_mask())
      limit = float(1 << CLIP_BITS)  # int32-safe, as the activations.
      self.intra = tf.Variable(np.round(np.clip(masked, -limit, limit) * one),
                               trainable=False,
                               dtype=tf.int32, name="intra")
    self.iteration_embedding = tf.Variable(
        np.floor(model.iteration_embedding.numpy().astype(np.float64) * one),
        trainable=False, dtype=_DTYPE, name="iteration_embedding")
    self.sigmoid_table = tf.Variable(_table(_sigmoid), trainable=False,
                                     dtype=tf.int32, name="sigmoid_table")
    self.tanh_table = tf.Variable(_table(np.tanh), trainable=False,
                                  dtype=tf.int32, name="tanh_table")

  # --- Exact pieces. -----------------------------------------------------

  @staticmethod
  def _bits(x):
    """+-1 / 0 codes (any float dtype) at scale 2^A."""
    return tf.cast(x, _DTYPE) * float(1 << ACTIVATION_BITS)

  def _lookup(self, table, x_q):
    steps = TABLE_RANGE << TABLE_BITS
    index = tf.floor(x_q * 2. ** (TABLE_BITS - ACTIVATION_BITS))
    index = tf.cast(tf.clip_by_value(index, -steps, steps - 1), tf.int32)
    return tf.cast(tf.gather(table, index + steps), _DTYPE)

  @staticmethod
  def _product(u_q, v_q):
    return tf.floor(u_q * v_q * 2. ** -ACTIVATION_BITS)

  def _lstm_update(self, gates, cell):
    """BinaryPixelRNN._lstm_update on integers (forget bias +1)."""
    i, f, o, g = tf.split(gates, 4, axis=-1)
    one = float(1 << ACTIVATION_BITS)
    cell = _clip(tf.floor(
        (self._lookup(self.sigmoid_table, f + one) * cell +
         self._lookup(self.sigmoid_table, i) *
         self._lookup(self.tanh_table, g)) * 2. ** -ACTIVATION_BITS))
    state = self._product(self._lookup(self.sigmoid_table, o),
                          self._lookup(self.tanh_table, cell))
    return state, cell

  # --- The coding interface of BinaryPixelRNN. ----------------------------

  def progressive_context(self, recent, mean, iteration):
    """As BinaryPixelRNN.progressive_context, at scale 2^A (float64).

    ``mean`` is mean_{s<t} b_s = total / max(t, 1) as range_coding computes
    it; the exact integer total is recovered (|total| <= t, far from
    rounding) and the mean requantized as floor(total 2^A / t) in int64.
    """
    count = tf.cast(tf.maximum(iteration, 1), tf.int64)
    total = tf.cast(tf.round(tf.cast(mean, tf.float64) *
                             tf.cast(count, tf.float64)), tf.int64)
    mean_q = tf.cast(tf.math.floordiv(total * (1 << ACTIVATION_BITS), count),
                     _DTYPE)
    recent = tf.concat(tf.unstack(self._bits(recent), self.config.history),
                       axis=-1)
    inputs = tf.concat([recent, mean_q], axis=-1)[None]
    context = self.progressive_out(self.progressive(inputs))[0]
    index = tf.minimum(iteration, self.config.iteration_embeddings - 1)
    return context + tf.gather(self.iteration_embedding, index)

  def zero_row_state(self, width):
    zeros = tf.zeros(tf.stack([1, width, self.config.filters]), _DTYPE)
    return zeros, zeros

  def row_context(self, window, row_state, progressive_row):
    """As BinaryPixelRNN.row_context, at scale 2^A (float64)."""
    r = self.config.radius
    window = self._bits(window)
    above = self.above(window[None])[0, 0]
    gates = (self.lstm_input(window[None, r - 1:, r:-r]) +
             self.lstm_state(row_state[0][None]))[0]
    state, cell = self._lstm_update(gates, row_state[1])
    context = above + self.from_state(state[0]) + progressive_row
    return context, (state, cell)

  def position_logits(self, context, left_bits):
    """Logits [1, K] (exact multiples of 2^-A, float64)."""
    z = _clip(context + self.left(self._bits(left_bits)), relu=True)
    return self.out(self.hidden(z)) * 2. ** -ACTIVATION_BITS

  def intra_logits(self, logits, bits):
    """As BinaryPixelRNN.intra_logits: + sum_m W_q[m, k] b_m 2^-A, exact."""
    if self.config.bit_groups == 1:
      return logits
    correction = tf.matmul(tf.cast(bits, _DTYPE), tf.cast(self.intra, _DTYPE))
    return logits + correction * 2. ** -ACTIVATION_BITS
