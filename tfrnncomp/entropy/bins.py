"""Probability bins: the fixed rule from a logit to a range coder table row.

The range coder (``tfc.entropy_encode_index`` / ``tfc.entropy_decode_index``)
codes each bit with one of :data:`NUM_BINS` fixed two-symbol distributions,
chosen per bit by an integer *bin*. Symbol 1 is the code +1, symbol 0 the
code -1. The entropy network outputs a logit ``l`` of P(code = +1); the bin
and the coded probability are

    bin(l) = clip(floor(16 l), -128, 127) + 128                 in [0, 255]
    q_k    = sigmoid((k - 127.5) / 16)                          P(+1 | bin k)
    f_k    = clip(round(2^16 q_k), 1, 2^16 - 1)                 frequency of +1
    lookup[k] = [16, 0, 2^16 - f_k, 2^16]                       tfc's CDF row

i.e. 256 bins uniform in the logit domain, 1/16 wide, covering |l| < 8
(q from 3.4e-4 to 0.99966), with 16-bit precision (:data:`PRECISION`).

Why the logit domain: a bin of width delta in the logit costs at most
``p (1 - p) (delta / 2)^2 / (2 ln 2)`` bits per bit over the exact
probability (a second-order expansion of the KL divergence), which is
<= 1.8e-4 bits at p = 1/2 and smaller towards 0 and 1, where bins uniform in
p would be coarsest relative to p. Clipping at |l| = 8 bounds the cost of a
confidently wrong prediction at -log2(q_0) = 11.5 bits.

Why the rule is exact: ``16 l`` is a multiplication by a power of two and
``floor`` and ``clip`` are exact, so equal logits give equal bins on every
machine; encoder and decoder compute the logits with the same function on the
same shapes (see :mod:`tfrnncomp.entropy.range_coding`), in integer
arithmetic (:mod:`tfrnncomp.entropy.integer`), so the logits are equal. The table itself is
computed once, when an entropy model is saved, and stored in it (see
:mod:`tfrnncomp.entropy.saved_model`); tensorflow-compression's
documentation warns that CDFs recomputed with floating point on each side
can differ and derail the decoder.
"""

import numpy as np
import tensorflow as tf

__all__ = ["NUM_BINS", "PRECISION", "BINS_PER_LOGIT", "logits_to_bins",
           "bin_probabilities", "lookup_table", "ideal_bits"]

NUM_BINS = 256
"""Number of binary distributions the range coder chooses from."""

PRECISION = 16
"""Bits of the integer CDFs (tfc's maximum)."""

BINS_PER_LOGIT = 16
"""Bins per unit logit: the bin width is 1/16."""


def logits_to_bins(logits):
  """The bin of each logit (any shape, float32) as int32 in [0, NUM_BINS)."""
  half = NUM_BINS // 2
  scaled = tf.floor(logits * float(BINS_PER_LOGIT))
  return tf.cast(tf.clip_by_value(scaled, -half, half - 1), tf.int32) + half


def bin_probabilities():
  """float64 [NUM_BINS]: q_k = P(code = +1 | bin k), before integer rounding."""
  centers = (np.arange(NUM_BINS, dtype=np.float64) - (NUM_BINS - 1) / 2
             ) / BINS_PER_LOGIT
  return 1. / (1. + np.exp(-centers))


def lookup_table():
  """int32 [NUM_BINS, 4]: the range coder's CDF rows (see the module doc)."""
  total = 2 ** PRECISION
  ones = np.clip(np.round(total * bin_probabilities()), 1, total - 1)
  ones = ones.astype(np.int32)
  return np.stack([np.full(NUM_BINS, PRECISION), np.zeros(NUM_BINS),
                   total - ones, np.full(NUM_BINS, total)],
                  axis=1).astype(np.int32)


def ideal_bits(bins, codes, table=None):
  """Code length in bits of +-1 ``codes`` under their ``bins`` (NumPy).

  The sum of -log2 P(code) with the table's integer probabilities: what an
  ideal arithmetic coder would spend; the range coder adds a few bytes per
  stream.
  """
  table = lookup_table() if table is None else np.asarray(table)
  total = 2. ** PRECISION
  p_one = (table[:, 3] - table[:, 2]) / total
  p = np.where(np.asarray(codes) > 0, p_one[bins], 1. - p_one[bins])
  return float(-np.log2(p).sum())
