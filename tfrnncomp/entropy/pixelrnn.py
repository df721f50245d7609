"""Binary PixelRNN entropy model of the codes, progressive over iterations.

Predicts P(b = +1) for every bit of iteration t's codes
b_t in {-1, +1}^(h x w x K) (h x w code positions, K bits each, K = 32 for
the paper's codec), from

(a) the bits of iteration t already coded, in raster order over the
    positions: a 7x7 convolution with PixelCNN's mask A and a *row LSTM*
    over the rows (van den Oord, Kalchbrenner, Kavukcuoglu, "Pixel Recurrent
    Neural Networks", ICML 2016, Sec. 3.1-3.4), as in the binary entropy coder
    of Toderici et al. 2017 ("Full Resolution Image Compression with Recurrent
    Neural Networks", CVPR 2017, Sec. 5; ``entropy_coder/`` in the original
    release);
(b) the codes of the iterations before t: the original release's
    "progressive" model (``entropy_coder/progressive``), which conditions
    each iteration on a state computed from the previous ones.

Network (C = ``filters`` channels; r = ``kernel_size // 2`` = 3):

    A_t[i, j] = sum over (di, dj) in mask A of W_A[di, dj] b_t[i + di, j + dj]
              = W_above * b_t[i-r .. i-1, j-r .. j+r]      (rows above: r x 7)
              + W_left  * b_t[i, j-r .. j-1]               (left: 1 x r)
    g_i       = conv_1x3(b_t[i-1]) + conv_1x3(s_{i-1}) + bias    (row LSTM:
    (s_i, c_i) = LSTM(g_i, c_{i-1})                       one step per row)
    P_t       = conv_1x1(relu(conv_3x3([b_{t-1}, .., b_{t-H}, mean_{s<t} b_s])))
                + e_min(t, 15)
    z         = relu(W_above * ... + W_left * ... + W_s s_i + P_t + bias)
    logits    = W_out relu(W_hidden z + b) + b_out        (K logits)
                + W^T b_t[i, j] masked to earlier bit groups  (G > 1, below)

(zero padding: unknown bits, and iterations before the first, are 0;
H = ``history`` = 3.) The LSTM's step i reads row i-1 and summarizes all rows
above row i (its receptive field widens by one position per row upwards,
PixelRNN's triangular Row LSTM context); the masked convolution adds the
exact neighbourhood, including the r positions to the left in row i. With
C = 32 and K = 32 the network has 90,880 parameters.

Order of the bits: the code positions of one iteration are coded in raster
order (row by row, left to right); the K bits of one position are coded in
channel order 0 .. K-1, in G = ``bit_groups`` groups of K / G consecutive
bits. The bits of one group are *conditionally independent* given the
context above and the groups before theirs, which enter linearly:

    logits_k += sum over bits m of earlier groups of W[m, k] b_m   (G > 1)

(``intra``, a K x K weight under a block-triangular mask; the sum is over
the position's own bits, which the network's other inputs never see). With
G = 1, the default and the original's progressive model (its mask-A
convolution spans all K channels of a position, "strict order"), the K bits
of a position are independent given the context. The reason for few groups
is speed: the network runs once per position and each group goes to the
range coder in one ``entropy_decode_index`` call, so decoding a 768 x 512
image takes 1536 network steps and 1536 G coder calls per iteration instead
of 1536 x 32 of each for bit-by-bit coding. The groups cost one K x K matrix
product per group and position, nothing in the network. What they buy is
small for the shipped codecs, whose bits are nearly independent given the
context: on the codes of the weights 2b15c9f0 of 40 held-out training
crops, the best W on top of their frozen (G = 1) entropy model (logistic regression on 360 crops) takes 0.9488
bits per bit to 0.9471 / 0.9462 / 0.9458 / 0.9455 with 2 / 4 / 8 / 32
groups, and G = 4 trained with the network (3,000 steps from that model)
to 0.9458, where the same steps without groups stay at 0.9488. On the 24
Kodak images that is 0.3-0.8% smaller files, for 2.2x and 1.4x the
entropy decoding time of a 768 x 512 image at 2 and 8 iterations (README,
"The entropy model"). (An earlier estimate of 0.016 bits per bit with 4
groups, on an older codec and a model with H = 1, no longer holds.)

The two evaluation paths compute the same function:

- :meth:`BinaryPixelRNN.call` (training, cross-entropy): all positions at
  once, the masked convolution as two convolutions of shifted inputs, the row
  LSTM as a scan over the rows;
- :meth:`~BinaryPixelRNN.progressive_context`,
  :meth:`~BinaryPixelRNN.row_context` and
  :meth:`~BinaryPixelRNN.position_logits` (coding): once per iteration,
  once per row and once per position, used by the encoder *and* the decoder
  (:mod:`tfrnncomp.entropy.range_coding`), so both compute bit-identical
  logits on the same shapes. The two paths agree up to float rounding, which
  only matters for the cross-entropy estimate, never for decodability.
"""

import dataclasses
import json
import math
from typing import Any, Dict

import tensorflow as tf

__all__ = ["EntropyConfig", "BinaryPixelRNN", "bits_per_bit"]


@dataclasses.dataclass(frozen=True)
class EntropyConfig:
  """Architecture of a :class:`BinaryPixelRNN` (saved as JSON beside it)."""

  name: str = "binary_pixelrnn"
  bits: int = 32            # K: code bits per position (the codec's).
  filters: int = 32         # C: channels of every layer.
  kernel_size: int = 7      # The masked convolution's size (odd).
  lstm_kernel_size: int = 3  # The row LSTM's 1 x k convolutions (odd).
  iteration_embeddings: int = 16  # Iterations >= this share the last one.
  history: int = 3          # H: earlier iterations given one by one.
  bit_groups: int = 1       # G: a position's K bits coded in G groups.

  def __post_init__(self):
    if not 1 <= self.bits <= 1024:
      raise ValueError(f"bits must be in [1, 1024], got {self.bits}")
    if self.filters < 1:
      raise ValueError(f"filters must be positive, got {self.filters}")
    for field in ("kernel_size", "lstm_kernel_size"):
      value = getattr(self, field)
      if value < 3 or value % 2 != 1:
        raise ValueError(f"{field} must be odd and >= 3, got {value}")
    if self.iteration_embeddings < 1:
      raise ValueError("iteration_embeddings must be positive")
    if self.history < 1:
      raise ValueError(f"history must be positive, got {self.history}")
    if not 1 <= self.bit_groups <= self.bits or self.bits % self.bit_groups:
      raise ValueError(f"bit_groups must divide bits ({self.bits}), got "
                       f"{self.bit_groups}")

  @property
  def radius(self):
    return self.kernel_size // 2

  @property
  def group_size(self):
    return self.bits // self.bit_groups

  def intra_mask(self):
    """[K, K] nested lists: 1. where bit m's group comes before bit k's."""
    group = [m // self.group_size for m in range(self.bits)]
    return [[1. if group[m] < group[k] else 0. for k in range(self.bits)]
            for m in range(self.bits)]

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "EntropyConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
      raise ValueError(f"unknown entropy config keys: {sorted(unknown)}")
    return cls(**d)


def bits_per_bit(logits, codes):
  """Mean code length -log2 P(codes) per bit, for +-1 ``codes``."""
  codes = tf.cast(codes, logits.dtype)
  return tf.reduce_mean(tf.nn.softplus(-codes * logits)) / math.log(2.)


class BinaryPixelRNN(tf.keras.Model):
  """The entropy model: logits of P(+1) for codes [T, B, h, w, K]."""

  def __init__(self, config, **kwargs):
    super().__init__(name=kwargs.pop("name", config.name), **kwargs)
    self.config = config
    c, r, k = config.filters, config.radius, config.lstm_kernel_size
    conv = tf.keras.layers.Conv2D
    # Mask A, as its two non-zero parts: r rows above (all 2r+1 columns) and
    # the r positions to the left in the current row.
    self.above = conv(c, (r, 2 * r + 1), use_bias=False, name="above")
    self.left = conv(c, (1, r), use_bias=False, name="left")
    # Row LSTM: input-to-state and state-to-state 1 x k convolutions.
    self.lstm_input = conv(4 * c, (1, k), padding="same", name="lstm_input")
    self.lstm_state = conv(4 * c, (1, k), padding="same", use_bias=False,
                           name="lstm_state")
    self.from_state = tf.keras.layers.Dense(c, name="from_state")
    # Progressive context from the earlier iterations.
    self.progressive = conv(c, 3, padding="same", activation="relu",
                            name="progressive")
    self.progressive_out = conv(c, 1, use_bias=False, name="progressive_out")
    self.hidden = tf.keras.layers.Dense(c, activation="relu", name="hidden")
    self.out = tf.keras.layers.Dense(config.bits, name="out")
    self.iteration_embedding = self.add_weight(
        name="iteration_embedding", shape=[config.iteration_embeddings, c],
        initializer="zeros")
    if config.bit_groups > 1:
      # W of the bit groups: logit_k += sum_m mask[m, k] W[m, k] b_m. Zeros:
      # the function of the same network without groups (--init_from).
      self.intra = self.add_weight(name="intra",
                                   shape=[config.bits, config.bits],
                                   initializer="zeros")
      self._intra_mask = tf.constant(config.intra_mask(), tf.float32)

  def get_config(self):
    return self.config.to_dict()

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(EntropyConfig.from_dict(config))

  def build_variables(self):
    """Creates all weights by running on 2 iterations of 1 x 1 positions."""
    self(tf.zeros([2, 1, 1, 1, self.config.bits]))
    return self

  # --- Shared pieces. ----------------------------------------------------

  def _iteration_bias(self, iterations):
    index = tf.minimum(iterations, self.config.iteration_embeddings - 1)
    return tf.gather(self.iteration_embedding, index)

  def _lstm_update(self, gates, cell):
    i, f, o, g = tf.split(gates, 4, axis=-1)
    cell = tf.sigmoid(f + 1.) * cell + tf.sigmoid(i) * tf.tanh(g)
    return tf.sigmoid(o) * tf.tanh(cell), cell

  def _progressive(self, recent, mean):
    """recent: [..., H K], b_{t-1} .. b_{t-H} along the channels."""
    return self.progressive_out(self.progressive(
        tf.concat([recent, mean], axis=-1)))

  def _head(self, pre_activation):
    return self.out(self.hidden(tf.nn.relu(pre_activation)))

  # --- Training path: all positions at once. ------------------------------

  def call(self, codes):
    """Logits [T, B, h, w, K] of P(+1) for +-1 codes [T, B, h, w, K]."""
    codes = tf.cast(codes, tf.float32)
    shape = tf.shape(codes)
    iterations, batch = shape[0], shape[1]
    r = self.config.radius
    recent = tf.concat(  # b_{t-s} for s = 1 .. H, zeros before t = 0.
        [tf.pad(codes, [[s, 0], [0, 0], [0, 0], [0, 0], [0, 0]])[:iterations]
         for s in range(1, self.config.history + 1)], axis=-1)
    counts = tf.cast(tf.maximum(tf.range(iterations), 1), tf.float32)
    mean = tf.cumsum(codes, axis=0, exclusive=True) / counts[:, None, None,
                                                             None, None]
    flat = lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
    x = flat(codes)

    above = self.above(tf.pad(x, [[0, 0], [r, 0], [r, r], [0, 0]])[:, :-1])
    left = self.left(tf.pad(x, [[0, 0], [0, 0], [r, 0], [0, 0]])[:, :, :-1])
    states = self._row_lstm(x)
    bias = tf.repeat(self._iteration_bias(tf.range(iterations)), batch, axis=0)
    context = (above + self.from_state(states) +
               self._progressive(flat(recent), flat(mean)) +
               bias[:, None, None])
    logits = self.intra_logits(self._head(context + left), x)
    return tf.reshape(logits, shape)

  def _row_lstm(self, x):
    """States [N, h, w, C]: the state of row i has seen rows 0 .. i-1."""
    rows_above = tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]
    input_gates = tf.transpose(self.lstm_input(rows_above), [1, 0, 2, 3])
    zeros = tf.zeros(tf.concat([tf.shape(x)[:1], tf.shape(x)[2:3],
                                [self.config.filters]], 0))

    def step(carry, gates):
      state, cell = carry
      gates += self.lstm_state(state[:, None])[:, 0]
      return self._lstm_update(gates, cell)

    states, _ = tf.scan(step, input_gates, initializer=(zeros, zeros))
    return tf.transpose(states, [1, 0, 2, 3])

  # --- Coding path: per iteration, per row, per position (batch 1). -------

  def progressive_context(self, recent, mean, iteration):
    """[h, w, C] from int32 t and float codes of the iterations before t.

    Args:
      recent: [H, h, w, K], b_{t-1}, ..., b_{t-H} (zeros before the first).
      mean: [h, w, K], mean_{s<t} b_s (zeros for t = 0).
      iteration: t.
    """
    recent = tf.concat(tf.unstack(recent, self.config.history), axis=-1)
    return (self._progressive(recent[None], mean[None])[0] +
            self._iteration_bias(iteration))

  def zero_row_state(self, width):
    zeros = tf.zeros(tf.stack([1, width, self.config.filters]))
    return zeros, zeros

  def row_context(self, window, row_state, progressive_row):
    """Context [w, C] of row i, and the row LSTM's state after row i - 1.

    Args:
      window: float [r, w + 2r, K], rows i-r .. i-1 of the codes, zero-padded
        by r columns on each side (zero rows above the image).
      row_state: (state, cell), each [1, w, C], after rows < i - 1.
      progressive_row: [w, C], row i of :meth:`progressive_context`.
    """
    r = self.config.radius
    above = self.above(window[None])[0, 0]
    gates = (self.lstm_input(window[None, r - 1:, r:-r]) +
             self.lstm_state(row_state[0][None]))[0]
    state, cell = self._lstm_update(gates, row_state[1])
    context = above + self.from_state(state[0]) + progressive_row
    return context, (state, cell)

  def position_logits(self, context, left_bits):
    """Logits [1, K] from context [1, C] and left_bits [1, r * K].

    Without the bits of the position itself: with bit groups, add them by
    :meth:`intra_logits` as they are coded.
    """
    kernel = tf.reshape(self.left.kernel, [-1, self.config.filters])
    return self._head(context + tf.matmul(left_bits, kernel))

  def intra_logits(self, logits, bits):
    """Logits [..., K] given the position's own bits [..., K] coded so far.

    Bit k's logit gains sum_m W[m, k] b_m over the bits m of earlier groups;
    ``bits`` may hold anything (0, say) for bits of group k's and later
    groups, which the mask ignores. The identity when ``bit_groups`` is 1.
    """
    if self.config.bit_groups == 1:
      return logits
    return logits + tf.einsum("...m,mk->...k", tf.cast(bits, logits.dtype),
                              self.intra * self._intra_mask)
