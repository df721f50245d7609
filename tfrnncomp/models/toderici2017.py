"""Full-resolution recurrent image codec of Toderici et al. 2017.

G. Toderici, D. Vincent, N. Johnston, S. J. Hwang, D. Minnen, J. Shor,
M. Covell, "Full Resolution Image Compression with Recurrent Neural Networks",
CVPR 2017, Fig. 1 and Sec. 3:

    x (H x W x 3)
    E-Conv   3x3 /2, 64            E-RNN#1 in 3x3 /2, hidden 1x1, 256
    E-RNN#2  in 3x3 /2, hidden 1x1, 512
    E-RNN#3  in 3x3 /2, hidden 1x1, 512
    Binarizer 1x1 -> tanh -> sign, 32 bits per 16x16 block   (1/8 bpp)
    D-Conv   1x1, 512
    D-RNN#1  in 2x2, hidden 1x1, 512 -> depth-to-space x2
    D-RNN#2  in 3x3, hidden 1x1, 512 -> depth-to-space x2
    D-RNN#3  in 3x3, hidden 3x3, 256 -> depth-to-space x2
    D-RNN#4  in 3x3, hidden 3x3, 128 -> depth-to-space x2
    Conv 1x1 -> 3 (RGB)

Each iteration t encodes the residual of the previous one, with the recurrent
states of encoder and decoder carried across iterations (Eq. 1-3):

    b_t = B(E_t(r_{t-1} . g_t)),   r_0 = x
    x_hat_t = D_t(b_t) / g_t + gamma * x_hat_{t-1}
    r_t = x - x_hat_t

with gamma = 0 ("one-shot": the decoder predicts the whole image every
iteration), gamma = 1 ("additive": it predicts the residual) and, for
"residual scaling", gamma = 1 with a gain g_t = G(x_hat_{t-1}) estimated from
the current reconstruction, applied to the residual before encoding and undone
after decoding (Sec. 3.2; g_t = 1 otherwise). Images are normalized to
x = image / 255 - 0.5 and edge-padded to a multiple of 16; reconstructions are
cropped back to the input size. Training minimizes sum_t |r_t| (L1, Sec. 3.3)
with the stochastic binarizer.

Hidden-state priming (``priming = k``; N. Johnston et al., "Improved Lossy
Image Compression with Priming and Spatially Adaptive Bit Rates for Recurrent
Networks", CVPR 2018, Sec. 3.1): the states start at zero, so the first
iteration, which matters most at low rates, runs with the least context. With
priming, the encoder and then the decoder of the first iteration run 1 + k
times on the same input (the residual r_0 = x, then the codes b_1), carrying
their states; only the last step's codes and output are used:

    s^E <- E(x; s^E) k times;  b_1 = B(E(x; s^E))
    s^D <- D(b_1; s^D) k times; x_hat_1 = D(b_1; s^D) (+ gamma * 0)

The bits are unchanged (same count, same meaning); each image costs k more
encoder and decoder steps. k = 0 is the plain network.

Islam et al. 2021 (``analysis="gdn"``; K. Islam, L. M. Dang, S. Lee, H. Moon,
"Image Compression with Recurrent Neural Network and Generalized Divisive
Normalization", CVPR Workshops 2021) add an *analysis block* at the encoder
input and a *synthesis block* in the decoder, built from GDN / IGDN
(:class:`tfrnncomp.layers.GDN`), placed as in the authors' released code
(github.com/khawar-islam/ImageCompression, ``network.py``):

    E-Conv 3x3 /2, 64  -> GDN(64)  -> E-RNN#1 ...
    D-Conv 1x1, 512    -> IGDN(512) -> D-RNN#1 ...

with the LSTM network and additive reconstruction (their training loop
subtracts each iteration's output from the residual), trained with the same
L1 loss. Everything else is the Toderici 2017 network. (The paper's text
speaks of a synthesis block that up-samples at the decoder; the released
code applies IGDN to the decoder's first convolution, as here, and ends
with the plain 1x1 RGB convolution.)
"""

import tensorflow as tf

from tfrnncomp import code_search
from tfrnncomp import config as config_lib
from tfrnncomp import layers
from tfrnncomp.layers import precision

__all__ = ["Encoder", "Decoder", "GainEstimator", "RecurrentCodec",
           "to_float", "to_uint8", "pad_to_multiple", "BLOCK"]

BLOCK = 16
"""Pixels per code position along each axis (four stride-2 stages)."""


def to_float(image):
  """uint8 image -> x in [-0.5, 0.5]."""
  return tf.cast(image, tf.float32) / 255. - 0.5


def to_uint8(x_hat):
  """x_hat in [-0.5, 0.5] -> rounded, clipped uint8 image."""
  return tf.cast(tf.clip_by_value(tf.round((x_hat + 0.5) * 255.), 0., 255.),
                 tf.uint8)


def pad_to_multiple(x, multiple=BLOCK):
  """Edge-pads [B, H, W, C] at the bottom and right to a multiple of 16.

  Edge replication (not zeros or reflection) keeps the padded area as cheap to
  code as possible and works for any size, including 1x1.
  """
  shape = tf.shape(x)
  padded = lambda n: (n + multiple - 1) // multiple * multiple
  rows = tf.minimum(tf.range(padded(shape[1])), shape[1] - 1)
  cols = tf.minimum(tf.range(padded(shape[2])), shape[2] - 1)
  return tf.gather(tf.gather(x, rows, axis=1), cols, axis=2)


def _make_cell(config, filters, kernel_size, strides, hidden_kernel_size, name):
  return layers.CELLS[config.cell](
      config.scaled(filters), kernel_size=kernel_size, strides=strides,
      hidden_kernel_size=hidden_kernel_size,
      compute_dtype=config.compute_dtype, name=name)


class Encoder(tf.keras.layers.Layer):
  """E-Conv (+ GDN), E-RNN#1..3: residual [B, H, W, 3] -> features at H/16."""

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    self.conv = precision.Conv2D(
        config.scaled(config.encoder_conv_filters), 3, strides=2,
        padding="same", compute_dtype=config.compute_dtype, name="conv")
    # Created only for Islam 2021, so the Toderici 2017 variable layout (and
    # its checkpoints) stay as they were.
    if config.analysis == "gdn":
      self.gdn = layers.GDN(name="gdn")
    else:
      self.gdn = None
    self.rnns = [_make_cell(config, f, 3, 2, 1, name=f"rnn{i + 1}")
                 for i, f in enumerate(config.encoder_filters)]

  def zero_state(self, batch_size, height, width):
    states = []
    height, width = (height + 1) // 2, (width + 1) // 2  # After E-Conv.
    for rnn in self.rnns:
      states.append(rnn.zero_state(batch_size, height, width))
      height, width = rnn.output_spatial_shape(height, width)
    return tuple(states)

  def call(self, residual, states):
    y = self.conv(residual)
    if self.gdn is not None:
      y = self.gdn(y)
    new_states = []
    for rnn, state in zip(self.rnns, states):
      y, state = rnn(y, state)
      new_states.append(state)
    return y, tuple(new_states)


class Decoder(tf.keras.layers.Layer):
  """D-Conv (+ IGDN), D-RNN#1..4, depth-to-space: codes -> [B, H, W, 3]."""

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    self.conv = precision.Conv2D(
        config.scaled(config.decoder_conv_filters), 1,
        compute_dtype=config.compute_dtype, name="conv")
    if config.analysis == "gdn":
      self.igdn = layers.GDN(inverse=True, name="igdn")
    else:
      self.igdn = None
    self.rnns = [
        _make_cell(config, f, k, 1, hk, name=f"rnn{i + 1}")
        for i, (f, k, hk) in enumerate(zip(config.decoder_filters,
                                           config.decoder_kernels,
                                           config.decoder_hidden_kernels))]
    self.to_rgb = precision.Conv2D(3, 1, compute_dtype=config.compute_dtype,
                                   name="to_rgb")

  def zero_state(self, batch_size, height, width):
    """States for codes of spatial size height x width (= H/16 x W/16)."""
    states = []
    for i, rnn in enumerate(self.rnns):
      states.append(rnn.zero_state(batch_size, height * 2 ** i, width * 2 ** i))
    return tuple(states)

  def call(self, codes, states):
    y = self.conv(codes)
    if self.igdn is not None:
      y = self.igdn(y)
    new_states = []
    for rnn, state in zip(self.rnns, states):
      y, state = rnn(y, state)
      new_states.append(state)
      y = tf.nn.depth_to_space(y, 2)
    return self.to_rgb(y), tuple(new_states)


class GainEstimator(tf.keras.layers.Layer):
  """Residual-scaling gain g = G(x_hat) (Toderici et al. 2017, Sec. 3.2).

  Three stride-2 3x3 convolutions (ELU) and a 1x1 convolution give one gain
  per 8x8 block, ``g = 2 + ELU(.) > 1``, upsampled to pixels (nearest). The last
  convolution starts at zero, so training starts from a constant gain of 2.
  """

  def __init__(self, config, **kwargs):
    super().__init__(**kwargs)
    filters = config.scaled(32)
    self.convs = [precision.Conv2D(filters, 3, strides=2, padding="same",
                                   activation="elu",
                                   compute_dtype=config.compute_dtype,
                                   name=f"conv{i + 1}")
                  for i in range(3)]
    self.out = precision.Conv2D(1, 1, kernel_initializer="zeros",
                                compute_dtype=config.compute_dtype, name="out")

  def call(self, x_hat):
    y = x_hat
    for conv in self.convs:
      y = conv(y)
    gain = 2. + tf.nn.elu(self.out(y))
    gain = tf.repeat(tf.repeat(gain, 8, axis=1), 8, axis=2)
    return gain[:, :tf.shape(x_hat)[1], :tf.shape(x_hat)[2]]


class RecurrentCodec(tf.keras.Model):
  """Toderici 2017 / Islam 2021 codec: ``encode`` to +-1 codes, ``decode``.

  Conventions: codes are [iterations, batch, H/16, W/16, bits] (the original
  release's layout); reconstructions are [iterations, batch, H, W, 3].
  ``call`` is the differentiable training path (iterations unrolled);
  ``encode`` and ``decode`` run a ``tf.while_loop`` over a dynamic number of
  iterations and are wrapped in ``tf.function``s by :mod:`tfrnncomp.export`.
  """

  def __init__(self, config, **kwargs):
    super().__init__(name=kwargs.pop("name", config.name), **kwargs)
    self.config = config
    self.encoder = Encoder(config, name="encoder")
    self.binarizer = layers.Binarizer(
        config.bits, compute_dtype=config.compute_dtype, name="binarizer")
    self.decoder = Decoder(config, name="decoder")
    self.gain = (GainEstimator(config, name="gain")
                 if config.reconstruction == "residual_scaling" else None)

  def get_config(self):
    return self.config.to_dict()

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(config_lib.CodecConfig.from_dict(config))

  def build_variables(self):
    """Creates all weights by running one iteration on a 16x16 image."""
    self(tf.zeros([1, BLOCK, BLOCK, 3]), iterations=1)
    return self

  # --- One iteration, split at the channel. ------------------------------

  def zero_state(self, x):
    """Encoder and decoder states for a padded batch x [B, H, W, 3]."""
    shape = tf.shape(x)
    batch, height, width = shape[0], shape[1], shape[2]
    return (self.encoder.zero_state(batch, height, width),
            self.decoder.zero_state(batch, height // BLOCK, width // BLOCK))

  def encode_step(self, x, x_hat, encoder_state, training=False):
    """Codes of the residual x - x_hat (scaled by the gain if enabled)."""
    residual = x - x_hat
    if self.gain is not None:
      residual *= self.gain(x_hat)
    features, encoder_state = self.encoder(residual, encoder_state)
    return self.binarizer(features, training=training), encoder_state

  def decode_step(self, codes, x_hat, decoder_state):
    """The next reconstruction from one iteration's codes."""
    output, decoder_state = self.decoder(codes, decoder_state)
    if self.config.reconstruction == "one_shot":
      return output, decoder_state
    if self.gain is not None:
      output /= self.gain(x_hat)
    return x_hat + output, decoder_state

  def prime_encoder(self, x, x_hat, encoder_state, training=False):
    """The encoder state after ``priming`` extra steps on the first residual."""
    for _ in range(self.config.priming):
      _, encoder_state = self.encode_step(x, x_hat, encoder_state, training)
    return encoder_state

  def prime_decoder(self, codes, decoder_state, steps=None):
    """The decoder state after ``steps`` (default ``priming``) extra steps on
    the first codes.

    A tensor ``steps`` runs a ``tf.while_loop`` (the inference paths: a
    ``tf.cond`` inside their iteration loop was computed differently by a
    loaded SavedModel in TF 2.14); an int, a Python loop (training).
    """
    if steps is None:
      steps = self.config.priming
    for _ in tf.range(steps) if tf.is_tensor(steps) else range(steps):
      _, decoder_state = self.decoder(codes, decoder_state)
    return decoder_state

  # --- Training path. ----------------------------------------------------

  def call(self, x, iterations=None, training=False):
    """Runs ``iterations`` iterations on x in [-0.5, 0.5] (H, W multiples of 16).

    Returns (codes [T, B, H/16, W/16, bits] float +-1, x_hats [T, B, H, W, 3]).
    """
    iterations = iterations or self.config.iterations
    encoder_state, decoder_state = self.zero_state(x)
    x_hat = tf.zeros_like(x)
    all_codes, x_hats = [], []
    for t in range(iterations):
      if t == 0:
        encoder_state = self.prime_encoder(x, x_hat, encoder_state, training)
      codes, encoder_state = self.encode_step(x, x_hat, encoder_state, training)
      if t == 0:
        decoder_state = self.prime_decoder(codes, decoder_state)
      x_hat, decoder_state = self.decode_step(codes, x_hat, decoder_state)
      all_codes.append(codes)
      x_hats.append(x_hat)
    return tf.stack(all_codes), tf.stack(x_hats)

  # --- Inference path. ---------------------------------------------------

  def encode(self, image, iterations, search_steps=0):
    """uint8 images [B, H, W, 3] -> int8 +-1 codes [T, B, ceil(H/16), ceil(W/16), bits].

    Only ``iterations`` iterations run, and without a search the decoder is
    skipped on the last one (its reconstruction is not needed to produce
    codes). ``search_steps`` > 0 (an int or int32 tensor) searches each
    iteration's codes against the decoder (:mod:`tfrnncomp.code_search`);
    the decoder is unchanged.
    """
    iterations = tf.convert_to_tensor(iterations, tf.int32)
    tf.debugging.assert_positive(iterations, "iterations must be >= 1")
    x = pad_to_multiple(to_float(image))
    encoder_state, decoder_state = self.zero_state(x)
    x_hat = tf.zeros_like(x)
    codes_array = tf.TensorArray(tf.int8, size=iterations)
    searching = not (isinstance(search_steps, int) and search_steps == 0)
    encoder_state = self.prime_encoder(x, x_hat, encoder_state)
    codes, encoder_state = self.encode_step(x, x_hat, encoder_state)
    if searching:
      primed = ((lambda c: self.prime_decoder(
          c, decoder_state, tf.constant(self.config.priming)))
                if self.config.priming else (lambda c: decoder_state))
      codes = code_search.search(
          lambda c: self.decode_step(c, x_hat, primed(c))[0], x, codes,
          search_steps, BLOCK)
    codes_array = codes_array.write(0, tf.cast(codes, tf.int8))
    if self.config.priming:  # Only if a second iteration needs the decoder.
      decoder_state = self.prime_decoder(
          codes, decoder_state,
          self.config.priming * tf.minimum(iterations - 1, 1))
    for t in tf.range(1, iterations):
      x_hat, decoder_state = self.decode_step(codes, x_hat, decoder_state)
      codes, encoder_state = self.encode_step(x, x_hat, encoder_state)
      if searching:
        codes = code_search.search(
            lambda c: self.decode_step(c, x_hat, decoder_state)[0], x, codes,
            search_steps, BLOCK)
      codes_array = codes_array.write(t, tf.cast(codes, tf.int8))
    return codes_array.stack()

  def decode(self, codes, height, width):
    """int8 codes [T, B, h, w, bits] -> uint8 images [T, B, height, width, 3].

    The reconstruction after every iteration is returned, cropped to
    height x width (which must fit in 16h x 16w).
    """
    codes = tf.cast(codes, tf.float32)
    shape = tf.shape(codes)
    tf.debugging.assert_less_equal(
        tf.stack([height, width]), shape[2:4] * BLOCK,
        "height and width must fit in 16 x the codes' spatial size")
    x_hat = tf.zeros(tf.stack([shape[1], shape[2] * BLOCK, shape[3] * BLOCK, 3]))
    decoder_state = self.decoder.zero_state(shape[1], shape[2], shape[3])
    images = tf.TensorArray(tf.uint8, size=shape[0])
    if self.config.priming:
      decoder_state = self.prime_decoder(codes[0], decoder_state,
                                         tf.constant(self.config.priming))
    for t in tf.range(shape[0]):
      x_hat, decoder_state = self.decode_step(codes[t], x_hat, decoder_state)
      images = images.write(t, to_uint8(x_hat[:, :height, :width]))
    return images.stack()
