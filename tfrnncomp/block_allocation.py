"""Spatially adaptive bit allocation for the recurrent codecs (a measurement).

Johnston et al., "Improved Lossy Image Compression with Priming and Spatially
Adaptive Bit Rates for Recurrent Networks" (CVPR 2018), stop sending codes
for a 16 x 16 block once its reconstruction meets a quality target, so that
the bits go where the image is hard. This module runs that rule at inference
on a trained :class:`~tfrnncomp.models.RecurrentCodec` (the network is not
retrained), to measure what it would buy before the bitstream carries it:

    active_0[b] = 1
    active_t[b] = active_{t-1}[b] * [e_b(x, x_hat_{t-1}) > tau]     (t >= 1)
    codes_t     = active_t * B(E(x - x_hat_{t-1}))       (0 in stopped blocks)
    x_hat_t     = x_hat_{t-1} + up_16(active_t) * D(codes_t)
                  (additive reconstruction; in general the decoder's new
                   x_hat in active blocks and the previous one elsewhere)

A stopped block keeps its pixels (the decoder still runs, on zero codes, for
its state and for the blocks around it), so its error stays below tau and
the masks are monotone: one iteration count per block says which codes
exist, as the paper's per-block counts do. Bits of a stream of t
iterations: ``bits * sum_{s <= t} |active_s|`` for the codes plus
``ceil(log2(t))`` per block for the counts min(count_b, t) in 1..t (raw, an
upper bound of their cost), over the image's pixels. No entropy coding:
compare against the codec's raw t/8 bpp.

Block errors e_b (over the 16 x 16 x 3 values of block b, 0..255 scale):

- ``"mse"``: the mean squared error; ``tau = 255^2 / 10^(target / 10)`` for
  a target block PSNR in dB;
- ``"ssim"``: ``mse / (2 var_b(x) + C2)``, C2 = (0.03 * 255)^2, roughly
  1 - the contrast-structure term of SSIM (Wang et al. 2004) for a
  reconstruction of the block's mean and variance: flat blocks must get
  closer than busy ones; ``tau = target``.
"""

import math
import weakref

import tensorflow as tf

from tfrnncomp.models import toderici2017

__all__ = ["CRITERIA", "threshold", "block_errors", "run"]

CRITERIA = ("mse", "ssim")
_C2 = (0.03 * 255.) ** 2


def threshold(criterion, target):
  """tau for a target (block PSNR in dB for "mse", the error for "ssim")."""
  if criterion not in CRITERIA:
    raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
  if criterion == "mse":
    return 255. ** 2 / 10. ** (target / 10.)
  if target < 0:
    raise ValueError(f"an ssim target must be >= 0, got {target}")
  return float(target)


def block_errors(x, x_hat, criterion):
  """e_b [B, H/16, W/16, 1] of x_hat against x (both in [-0.5, 0.5])."""
  block = toderici2017.BLOCK
  pool = lambda a: tf.nn.avg_pool2d(a, block, block, "VALID")
  x255 = (x + .5) * 255.
  squared = tf.square(tf.clip_by_value(x_hat, -.5, .5) * 255. + 127.5 - x255)
  error = tf.reduce_mean(pool(squared), -1, keepdims=True)
  if criterion == "mse":
    return error
  variance = tf.reduce_mean(pool(tf.square(x255)) - tf.square(pool(x255)), -1,
                            keepdims=True)
  return error / (2. * variance + _C2)


_STEPS = weakref.WeakKeyDictionary()


def _steps(model):
  """The model's encode and decode steps as tf.functions, made once per model
  (traced once per image size, not run op by op)."""
  if model not in _STEPS:
    _STEPS[model] = (tf.function(model.encode_step),
                     tf.function(model.decode_step))
  return _STEPS[model]


def run(model, image, iterations, criterion="mse", target=None):
  """Encodes and decodes ``image`` with per-block stopping.

  Args:
    model: a :class:`~tfrnncomp.models.RecurrentCodec` (Keras).
    image: uint8 [H, W, 3].
    iterations: T.
    criterion: "mse" or "ssim" (see the module docstring).
    target: the quality target, or None for the plain codec (no block stops
      and no count map).

  Returns:
    dict of per-iteration lists: ``x_hat`` (uint8 [H, W, 3] each), ``bpp``
    (codes and count map, as the file would hold after t iterations),
    ``active`` (the fraction of blocks that got codes at iteration t),
    ``mask`` (float [H/16, W/16], 1 for those blocks; H, W padded to 16).
  """
  height, width = image.shape[:2]
  x = toderici2017.pad_to_multiple(toderici2017.to_float(image[None]))
  tau = None if target is None else threshold(criterion, target)
  encoder_state, decoder_state = model.zero_state(x)
  x_hat = tf.zeros_like(x)
  blocks = (x.shape[1] // toderici2017.BLOCK) * (x.shape[2] //
                                                 toderici2017.BLOCK)
  code_bits, result = 0, {"x_hat": [], "bpp": [], "active": [], "mask": []}
  active = None
  encode_step, decode_step = _steps(model)
  for t in range(iterations):
    if t == 0 and model.config.priming:
      encoder_state = model.prime_encoder(x, x_hat, encoder_state)
    codes, encoder_state = encode_step(x, x_hat, encoder_state)
    if active is None or tau is None:
      active = tf.ones_like(codes[..., :1])
    else:
      active *= tf.cast(block_errors(x, x_hat, criterion) > tau, codes.dtype)
    codes *= active
    if t == 0 and model.config.priming:
      decoder_state = model.prime_decoder(codes, decoder_state)
    updated, decoder_state = decode_step(codes, x_hat, decoder_state)
    pixels = tf.repeat(tf.repeat(active, toderici2017.BLOCK, 1),
                       toderici2017.BLOCK, 2)
    x_hat = tf.where(pixels > 0, updated, x_hat)
    count = float(tf.reduce_sum(active))
    code_bits += count * model.config.bits
    result["x_hat"].append(
        toderici2017.to_uint8(x_hat)[0, :height, :width].numpy())
    side_bits = 0 if tau is None else blocks * math.ceil(math.log2(t + 1))
    result["bpp"].append((code_bits + side_bits) / (height * width))
    result["active"].append(count / blocks)
    result["mask"].append(active[0, ..., 0].numpy())
  return result
