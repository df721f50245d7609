"""Variable-rate ResGDN image codec of Akbari et al. 2020.

M. Akbari, J. Liang, J. Han, "Learned Variable-Rate Image Compression with
Residual Divisive Normalization", ICME 2020 (arXiv:1912.05688). A one-shot
(not iterative) autoencoder whose code map is quantized with B bits per
channel, B chosen at test time; one set of weights serves B = 1..8:

    x (H x W x 3, edge-padded to multiples of 16)
    stage 1  Conv k5 /2, N  GDN                          H/2
    stage 2  Conv k3 /2, N  GDN   ResGDN(N)              H/4
    stage 3  Conv k3 /2, N  GDN   ResGDN(N)              H/8
    stage 4  Conv k3 /2, N  GDN   ResGDN(N)              H/16
    stage 5  Conv k3 /1, C  GDN           -> code map y  [H/16, W/16, C]
      (11 convolutions, each followed by GDN; ResGDN = two conv+GDN pairs
       around an identity shortcut, :class:`tfrnncomp.layers.ResGDN`)
    y_hat = Q_B(y): per-channel min/max uniform quantizer, B bits
      (:mod:`tfrnncomp.layers.scalable_quantizer`; min/max are side info)
      the decoder reads y_hat (the paper's), or with
      ``decoder_input="levels"`` the levels 2 q / L - 1 on [-1, 1]
    stage 1  Conv k3 /1, N  IGDN
    stage 2  ResIGDN(N)  ConvT k3 x2, N  IGDN
    stage 3  ResIGDN(N)  ConvT k3 x2, N  IGDN
    stage 4  ResIGDN(N)  ConvT k3 x2, N  IGDN
    stage 5  ConvT k5 x2, 3                    -> x_hat  (cropped to H x W)

Widths: ``N = filters`` (128) in every hidden stage and ``C = code_channels``
(8) as in the issue; the 5x5 outer kernels follow Ballé et al. 2017, whose
GDN network this one deepens. (The exact per-layer widths of the paper's
Fig. 1 could not be checked here; they are config fields.) The decoder
chains 10 IGDNs, each growing as |x|^2; ``igdn_max_gain`` > 0 bounds each
one's gain (:class:`tfrnncomp.layers.GDN`), 0 (the paper's) leaves them free.

Training (:mod:`tfrnncomp.training`) minimizes the variable-rate objective,
summed over a set of training bit depths (the paper uses three):

    L = sum_B [ w_mse ||x - x_hat_B||^2 + w_ms (1 - MS-SSIM(x, x_hat_B)) ]

with stochastic rounding in the quantizer and straight-through gradients.
The code map is then coded losslessly
(:mod:`tfrnncomp.models.akbari2020_coding`, range coding with an adaptive
model, in place of the paper's FLIF) and, optionally, the residual
x - x_hat as an HEVC enhancement layer (:mod:`tfrnncomp.enhancement`, in
place of BPG).

Images are normalized to x = image / 255 - 0.5 as in the recurrent codecs.
"""

import tensorflow as tf

from tfrnncomp import config as config_lib
from tfrnncomp import layers
from tfrnncomp.models.toderici2017 import pad_to_multiple, to_float, to_uint8

__all__ = ["BLOCK", "Encoder", "Decoder", "VariableRateCodec", "check_bits"]

BLOCK = 16
"""Pixels per code map position along each axis (four stride-2 stages)."""


def check_bits(bits):
  """``bits`` as an int32 tensor, asserted to be in [1, 8]."""
  bits = tf.convert_to_tensor(bits, tf.int32)
  tf.debugging.assert_greater_equal(bits, 1, "bits_per_channel must be >= 1")
  tf.debugging.assert_less_equal(
      bits, config_lib.MAX_BITS_PER_CHANNEL,
      f"bits_per_channel must be <= {config_lib.MAX_BITS_PER_CHANNEL}")
  return bits


class Encoder(tf.keras.layers.Layer):
  """Analysis transform: x [B, H, W, 3] -> code map y [B, H/16, W/16, C]."""

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    n, k = config.filters, config.kernel_size
    self.stages = []
    for i in range(4):
      stage = [tf.keras.layers.Conv2D(
          n, config.outer_kernel_size if i == 0 else k, strides=2,
          padding="same", name=f"stage{i + 1}_conv"),
               layers.GDN(name=f"stage{i + 1}_gdn")]
      if i:
        stage.append(layers.ResGDN(n, k, name=f"stage{i + 1}_resgdn"))
      self.stages.append(stage)
    self.stages.append([
        tf.keras.layers.Conv2D(config.code_channels, k, padding="same",
                               name="stage5_conv"),
        layers.GDN(name="stage5_gdn")])

  def call(self, x):
    for stage in self.stages:
      for layer in stage:
        x = layer(x)
    return x


class Decoder(tf.keras.layers.Layer):
  """Synthesis transform: y_hat [B, h, w, C] -> x_hat [B, 16h, 16w, 3]."""

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    n, k = config.filters, config.kernel_size
    gain = config.igdn_max_gain
    self.stages = [[tf.keras.layers.Conv2D(n, k, padding="same",
                                           name="stage1_conv"),
                    layers.GDN(inverse=True, max_gain=gain,
                               name="stage1_igdn")]]
    for i in range(1, 4):
      self.stages.append([
          layers.ResGDN(n, k, inverse=True, max_gain=gain,
                        name=f"stage{i + 1}_resigdn"),
          tf.keras.layers.Conv2DTranspose(n, k, strides=2, padding="same",
                                          name=f"stage{i + 1}_deconv"),
          layers.GDN(inverse=True, max_gain=gain,
                     name=f"stage{i + 1}_igdn")])
    self.stages.append([tf.keras.layers.Conv2DTranspose(
        3, config.outer_kernel_size, strides=2, padding="same",
        name="stage5_deconv")])

  def call(self, y_hat):
    for stage in self.stages:
      for layer in stage:
        y_hat = layer(y_hat)
    return y_hat


class VariableRateCodec(tf.keras.Model):
  """Akbari 2020 codec: ``encode`` images to B-bit code maps, ``decode`` them.

  ``call`` is the training path (any H, W multiples of 16; one encoder pass
  and one decoder pass per bit depth); ``encode`` / ``decode`` take uint8
  images of any size and are wrapped in ``tf.function``s by
  :mod:`tfrnncomp.export`.
  """

  def __init__(self, config, **kwargs):
    super().__init__(name=kwargs.pop("name", config.name), **kwargs)
    self.config = config
    self.encoder = Encoder(config, name="encoder")
    self.quantizer = layers.ScalableQuantizer(name="quantizer")
    self.decoder = Decoder(config, name="decoder")

  def get_config(self):
    return self.config.to_dict()

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(config_lib.VariableRateConfig.from_dict(config))

  def build_variables(self):
    """Creates all weights by running the network on a 16x16 image."""
    self(tf.zeros([1, BLOCK, BLOCK, 3]), bits=(8,))
    return self

  # --- Training path. ----------------------------------------------------

  def call(self, x, bits=(8,), training=False):
    """x in [-0.5, 0.5] [B, H, W, 3] (H, W multiples of 16) -> x_hats.

    Returns (code map y [B, H/16, W/16, C], x_hats [len(bits), B, H, W, 3]),
    one reconstruction per bit depth in ``bits`` (Python ints), quantized
    with stochastic rounding if ``training``.
    """
    y = self.encoder(x)
    normalize = self.config.decoder_input == "levels"
    x_hats = []
    for b in bits:
      y_hat, _, _, _ = self.quantizer(y, b, training=training,
                                      normalize=normalize)
      x_hats.append(self.decoder(y_hat))
    return y, tf.stack(x_hats)

  # --- Inference path. ---------------------------------------------------

  def encode(self, image, bits):
    """uint8 images [B, H, W, 3] -> (code map, minimum, maximum).

    The code map is uint8 [B, ceil(H/16), ceil(W/16), C] with levels in
    [0, 2^bits - 1]; minimum and maximum are float32 [B, C] (float16 values).
    """
    bits = check_bits(bits)
    y = self.encoder(pad_to_multiple(to_float(image), BLOCK))
    minimum, maximum = layers.channel_range(y)
    q = layers.quantize(y, bits, minimum, maximum)
    return tf.cast(q, tf.uint8), minimum, maximum

  def decode(self, code_map, minimum, maximum, bits, height, width):
    """(code map, minimum, maximum) -> uint8 images [B, height, width, 3]."""
    bits = check_bits(bits)
    shape = tf.shape(code_map)
    tf.debugging.assert_less_equal(
        tf.stack([height, width]), shape[1:3] * BLOCK,
        "height and width must fit in 16 x the code map's spatial size")
    tf.debugging.assert_less_equal(
        tf.cast(tf.reduce_max(code_map), tf.int32),
        tf.bitwise.left_shift(1, bits) - 1,
        "code map levels exceed 2^bits_per_channel - 1")
    if self.config.decoder_input == "levels":
      y_hat = layers.normalized_levels(code_map, bits)
    else:
      y_hat = layers.dequantize(code_map, bits, minimum, maximum)
    x_hat = self.decoder(y_hat)
    return to_uint8(x_hat[:, :height, :width])
