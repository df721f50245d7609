"""Range coding of the codes with the binary PixelRNN entropy model.

Each iteration's codes b_t [h, w, K] become one range-coded string (a *chunk*
of the bitstream, :mod:`tfrnncomp.bitstream`), coded with tensorflow-
compression's ops (``tfc.create_range_encoder``, ``tfc.entropy_encode_index``,
``tfc.entropy_encode_finalize`` and their decoder twins) against the fixed
table of :mod:`tfrnncomp.entropy.bins`: bit k of position (i, j) is coded with
bin ``logits_to_bins(l[i, j, k])``. Chunk t depends on the codes of
iterations < t only, so the chunks of the first n iterations decode without
the rest (progressive transmission).

Determinism by construction. A range decoder that computes one bin
differently from the encoder decodes garbage from there on. Computing the
encoder's logits in one batched pass and the decoder's position by position
would use different kernels and summation orders, and float rounding could
move a logit across a bin boundary. So both sides run *one* Python function,
:func:`_code_iteration`, which traces the same operations on the same shapes:

    per iteration t:  P = progressive_context(b_{t-1..t-3}, mean_{s<t} b_s, t)
      per row i:      context, state = row_context(b_t[i-3..i-1], state, P[i])
        per column j: logits = position_logits(context[j], b_t[i, j-3..j-1])
          per group g: bins = logits_to_bins(intra_logits(logits, groups < g))
                      encoder: entropy_encode_index(handle, bins, b_t[i, j, g])
                      decoder: b_t[i, j, g] = entropy_decode_index(handle, bins)

(K / G bits per group; one group of all K bits, and no ``intra_logits``,
unless the model has ``bit_groups`` G > 1.)

The only difference is where b_t[i, j] comes from; the network's inputs are
the same bits, built by the same ops, in both. Rows and positions are nested
``tf.while_loop`` s carrying the coder handle.

Across machines the same function is not enough: another CPU, or oneDNN
switched off, runs other float kernels that sum in another order (measured on
kodim23: 5 of 786,432 bins differed, and its stream decoded its first
iteration only). So ``model`` here is the network's integer twin,
:class:`tfrnncomp.entropy.integer.IntegerPixelRNN` (Ballé, Johnston, Minnen,
"Integer Networks for Data Compression with Latent-Variable Models", ICLR
2019), whose logits are exact on every machine; the float
:class:`~tfrnncomp.entropy.pixelrnn.BinaryPixelRNN` has the same interface
and runs here too (tests), exact only on one machine and kernel set.
"""

import tensorflow as tf
import tensorflow_compression as tfc

from tfrnncomp.entropy import bins as bins_lib

__all__ = ["compress", "decompress"]


def _code_iteration(model, handle, iteration, recent, mean, codes=None,
                    height=None, width=None):
  """Encodes (``codes`` given) or decodes one iteration.

  Args:
    model: the BinaryPixelRNN.
    handle: a range encoder (encoding) or decoder (decoding) handle, shape [].
    iteration: int32 t.
    recent: float [H, h, w, K], b_{t-1} .. b_{t-H} (zeros before t = 0).
    mean: float [h, w, K], mean_{s<t} b_s (zeros for t = 0).
    codes: float +-1 [h, w, K] to encode, or None to decode.
    height, width: int32 h and w.

  Returns:
    (handle, codes): the handle after the iteration and its +-1 codes
    [h, w, K], as coded.
  """
  decoding = codes is None
  bits, r = model.config.bits, model.config.radius
  progressive = model.progressive_context(recent, mean, iteration)
  if not decoding:
    symbols = tf.cast(codes > 0, tf.int32)

  groups = model.config.bit_groups
  size = bits // groups

  def column(j, handle, row, context, i):
    left = tf.reshape(row[j:j + r], [1, r * bits])
    logits = model.position_logits(context[j][None], left)
    coded = []  # The position's symbols so far, group by group.
    for g in range(groups):
      if g:  # Condition on the groups before g (zeros stand for the rest).
        known = tf.concat(coded, axis=0) * 2 - 1
        known = tf.pad(known, [[0, bits - g * size]])[None]
        group_logits = model.intra_logits(logits, known)
      else:
        group_logits = logits
      group_bins = bins_lib.logits_to_bins(
          group_logits[0, g * size:(g + 1) * size])
      if decoding:
        handle, symbol = tfc.entropy_decode_index(
            handle, group_bins, tf.constant([size]), tf.int32)
      else:
        symbol = symbols[i, j, g * size:(g + 1) * size]
        handle = tfc.entropy_encode_index(handle, group_bins, symbol)
      coded.append(symbol)
    symbol = coded[0] if groups == 1 else tf.concat(coded, axis=0)
    code = tf.cast(symbol, tf.float32) * 2. - 1.
    row = tf.tensor_scatter_nd_update(row, [[j + r]], code[None])
    return handle, row

  def row_body(i, handle, window, row_state, rows):
    context, row_state = model.row_context(window, row_state, progressive[i])
    row = tf.zeros(tf.stack([width + r, bits]))
    _, handle, row = tf.while_loop(
        lambda j, *_: j < width,
        lambda j, handle, row: (j + 1,) + column(j, handle, row, context, i),
        (tf.constant(0), handle, row))
    row = row[r:]
    padded = tf.pad(row, [[r, r], [0, 0]])
    window = tf.concat([window[1:], padded[None]], axis=0)
    return i + 1, handle, window, row_state, rows.write(i, row)

  window = tf.zeros(tf.stack([r, width + 2 * r, bits]))
  rows = tf.TensorArray(tf.float32, size=height, element_shape=[None, bits])
  _, handle, _, _, rows = tf.while_loop(
      lambda i, *_: i < height, row_body,
      (tf.constant(0), handle, window, model.zero_row_state(width), rows))
  # Both sides continue from the coded symbols (an encoder given a code of 0
  # codes it as -1 and must not condition on the 0).
  return handle, rows.stack()


def _mean(total, iteration):
  """mean_{s<t} b_s from the running sum (exact integers) and t."""
  return total / tf.cast(tf.maximum(iteration, 1), tf.float32)


def _push(recent, codes):
  """[H, h, w, K] history with ``codes`` as the most recent iteration."""
  return tf.concat([codes[None], recent[:-1]], axis=0)


def compress(model, lookup, codes):
  """+-1 codes [T, h, w, K] (any dtype) -> string [T], one chunk each."""
  codes = tf.cast(codes, tf.float32)
  shape = tf.shape(codes)
  zeros = tf.zeros(shape[1:])
  no_history = tf.zeros(tf.concat([[model.config.history], shape[1:]], 0))

  def body(t, recent, total, strings):
    handle = tfc.create_range_encoder([], lookup)
    handle, codes_t = _code_iteration(model, handle, t, recent,
                                      _mean(total, t), codes[t], shape[1],
                                      shape[2])
    strings = strings.write(t, tfc.entropy_encode_finalize(handle))
    return t + 1, _push(recent, codes_t), total + codes_t, strings

  *_, strings = tf.while_loop(
      lambda t, *_: t < shape[0], body,
      (tf.constant(0), no_history, zeros,
       tf.TensorArray(tf.string, size=shape[0], element_shape=[])))
  return strings.stack()


def decompress(model, lookup, strings, rows, columns, context):
  """Chunks string [n] -> (int8 +-1 codes [n, rows, columns, K], bool [n] ok).

  ``context`` holds the codes of the t0 >= 0 iterations before the first
  chunk, int8 [t0, rows, columns, K] (decoded earlier, or stored raw): the
  chunks are iterations t0 .. t0 + n - 1. ``ok[t]`` is false if the range
  decoder did not end exactly at the end of its chunk: the chunk is corrupt,
  or was coded with another model.
  """
  context = tf.cast(context, tf.float32)
  start = tf.shape(context)[0]
  count = tf.shape(strings)[0]
  history = model.config.history
  size = tf.stack([rows, columns, model.config.bits])
  # b_{t0-1}, ..., b_{t0-H}: the context's last H iterations, newest first.
  recent = tf.concat([tf.reverse(context[tf.maximum(start - history, 0):],
                                 [0]),
                      tf.zeros(tf.concat([[tf.maximum(history - start, 0)],
                                          size], 0))], axis=0)
  total = tf.reduce_sum(context, axis=0) + tf.zeros(size)

  def body(n, recent, total, decoded, ok):
    t = start + n
    handle = tfc.create_range_decoder(strings[n], lookup)
    handle, codes_t = _code_iteration(model, handle, t, recent,
                                      _mean(total, t), None, rows, columns)
    ok = ok.write(n, tfc.entropy_decode_finalize(handle))
    decoded = decoded.write(n, tf.cast(codes_t, tf.int8))
    return n + 1, _push(recent, codes_t), total + codes_t, decoded, ok

  *_, decoded, ok = tf.while_loop(
      lambda n, *_: n < count, body,
      (tf.constant(0), tf.ensure_shape(recent, [history, None, None,
                                                model.config.bits]), total,
       tf.TensorArray(tf.int8, size=count,
                      element_shape=[None, None, model.config.bits]),
       tf.TensorArray(tf.bool, size=count, element_shape=[])))
  return decoded.stack(), ok.stack()
