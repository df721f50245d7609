"""Tests of the encoder-side code search (tfrnncomp/code_search.py)."""

import numpy as np
import tensorflow as tf

from tfrnncomp import code_search
from tfrnncomp import config
from tfrnncomp import models
from tfrnncomp import testing
from tfrnncomp.models import toderici2017


_image = testing.halves_image  # Smooth and noisy halves.


def _errors(model, image, codes):
  """Mean squared error (0..255 scale) after each iteration of ``codes``."""
  x_hat = model.decode(codes, *image.shape[:2]).numpy()[:, 0].astype(float)
  return ((x_hat - image[None]) ** 2).mean(axis=(1, 2, 3))


def test_zero_steps_is_the_plain_encoder(tiny):
  image = _image()[None]
  plain = tiny.encode(image, 3).numpy()
  np.testing.assert_array_equal(tiny.encode(image, 3, search_steps=0), plain)
  np.testing.assert_array_equal(
      tiny.encode(image, 3, search_steps=tf.constant(0)), plain)


def test_searched_codes_decode_closer_at_every_iteration(tiny):
  image = _image()
  plain = tiny.encode(image[None], 3).numpy()
  searched = tiny.encode(image[None], 3, search_steps=3).numpy()
  assert searched.dtype == np.int8 and searched.shape == plain.shape
  assert set(np.unique(searched)) <= {-1, 1}
  assert (searched != plain).any()
  # Greedy per iteration: the first iteration's error falls for sure; the
  # later ones start from a better reconstruction and search again.
  assert np.all(_errors(tiny, image, searched) < _errors(tiny, image, plain))


def test_search_is_deterministic_and_more_steps_do_not_hurt_iteration_1(tiny):
  image = _image(seed=1)[None]
  once = tiny.encode(image, 1, search_steps=2).numpy()
  np.testing.assert_array_equal(tiny.encode(image, 1, search_steps=2), once)
  errors = [_errors(tiny, image[0], tiny.encode(image, 1, search_steps=k))[0]
            for k in (0, 1, 2, 4)]
  assert errors == sorted(errors, reverse=True), errors


def test_each_step_flips_at_most_one_bit_per_block_and_only_if_it_helps(tiny):
  image = _image(seed=2)
  x = toderici2017.pad_to_multiple(toderici2017.to_float(image[None]))
  encoder_state, decoder_state = tiny.zero_state(x)
  codes, _ = tiny.encode_step(x, tf.zeros_like(x), encoder_state)
  decode = lambda c: tiny.decode_step(c, tf.zeros_like(x), decoder_state)[0]
  searched = code_search.search(decode, x, codes, 1,
                                toderici2017.BLOCK).numpy()
  flips = (searched != codes.numpy()).sum(-1)
  assert flips.max() == 1 and flips.sum() > 0
  block_error = lambda c: tf.nn.avg_pool2d(tf.reduce_mean(tf.square(
      tf.clip_by_value(decode(c), -.5, .5) - x), -1, keepdims=True), 16, 16,
                                           "VALID").numpy()[..., 0]
  # The whole flipped set lowers the total error (blocks interact only
  # through the decoder's receptive field).
  assert block_error(searched).sum() < block_error(codes).sum()


def test_priming_models_search_their_primed_first_iteration():
  tf.random.set_seed(1)
  model = models.build_model(config.resolve("tiny", {"priming": 1}))
  image = _image(seed=3)
  plain = model.encode(image[None], 2).numpy()
  searched = model.encode(image[None], 2, search_steps=2).numpy()
  assert _errors(model, image, searched)[0] < _errors(model, image, plain)[0]
