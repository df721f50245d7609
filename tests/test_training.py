"""Tests of the training loop and its data pipeline (tiny models, seconds)."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrnncomp import config
from tfrnncomp import data
from tfrnncomp import models
from tfrnncomp import testing
from tfrnncomp import training
from tfrnncomp.models import toderici2017



@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
  folder = tmp_path_factory.mktemp("images")
  for i, crop in enumerate(testing.photo_crops(6, 96)):
    Image.fromarray(crop).save(folder / f"{i}.png")
  (folder / "notes.txt").write_text("not an image")
  return str(folder)


@pytest.fixture(scope="module")
def trained(image_dir, tmp_path_factory):
  train_dir = str(tmp_path_factory.mktemp("run"))
  lines = []
  tf.keras.utils.set_random_seed(0)
  # 6 iterations unrolled, 4 tested: in a short run the last unrolled
  # iteration is the least trained (its output enters one loss term only).
  tc = training.TrainConfig(steps=300, batch_size=8, patch_size=32,
                            iterations=6, learning_rate=2e-3, warmup_steps=20,
                            log_every=50)
  model, _ = training.train(config.get_preset("tiny"), tc, image_dir,
                            train_dir, log=lines.append)
  return model, train_dir, lines, tc


def _loss(line):
  return float(line.split("loss ")[1].split()[0])


def test_training_loss_falls(trained):
  _, _, lines, _ = trained
  progress = [line for line in lines if line.startswith("step")]
  assert len(progress) == 6
  assert _loss(progress[-1]) < 0.8 * _loss(progress[0])


def _errors(model, images):
  """Mean absolute error (0..255) of each iteration's reconstruction."""
  x = np.stack(images)
  x_hats = model.decode(model.encode(x, 4), x.shape[1], x.shape[2])
  return [np.abs(x_hat.numpy().astype(float) - x).mean() for x_hat in x_hats]


def test_reconstruction_error_falls_with_every_iteration(trained):
  model, _, _, _ = trained
  errors = _errors(model, testing.photo_crops(6, 96))
  assert all(a > b for a, b in zip(errors, errors[1:])), errors


def test_training_lowers_the_error_of_every_iteration(trained):
  model, _, _, _ = trained
  crops = testing.photo_crops(6, 96)
  untrained = toderici2017.RecurrentCodec(model.config)
  untrained(tf.zeros([1, 32, 32, 3]), iterations=1)
  before, after = _errors(untrained, crops), _errors(model, crops)
  assert all(a < 0.8 * b for a, b in zip(after, before)), (after, before)


def test_training_resumes_from_its_checkpoint(trained, image_dir):
  model, train_dir, _, tc = trained
  lines = []
  resumed, _ = training.train(config.get_preset("tiny"),
                              tc.__class__(**{**tc.__dict__, "steps": 305}),
                              image_dir, train_dir, log=lines.append)
  assert lines[0].startswith("resumed from") and "step 300" in lines[0]
  assert "step 305" in lines[-1]
  assert tf.train.latest_checkpoint(train_dir).endswith("-305")
  with open(os.path.join(train_dir, "config.json")) as f:
    assert config.CodecConfig.from_dict(json.load(f)) == model.config


def test_resuming_with_another_config_is_an_error(trained, image_dir):
  _, train_dir, _, tc = trained
  with pytest.raises(ValueError, match="different model config"):
    training.train(config.resolve("tiny", {"cell": "lstm"}), tc, image_dir,
                   train_dir)


def test_recurrent_loss_l1_terms_and_iteration_weights():
  x = tf.zeros([2, 16, 16, 3])
  x_hats = tf.stack([tf.fill([2, 16, 16, 3], 0.5),
                     tf.fill([2, 16, 16, 3], -0.1)])
  loss, metrics = training.recurrent_loss(x, x_hats)
  np.testing.assert_allclose(metrics.numpy()[:, 0], [0.5, 0.1], rtol=1e-6)
  np.testing.assert_allclose(loss.numpy(), 0.3, rtol=1e-6)
  # ratio 0.5: weights 4/3 and 2/3 (mean 1), per-iteration values unchanged.
  np.testing.assert_allclose(training.iteration_weights(2, 0.5), [4 / 3, 2 / 3])
  loss, again = training.recurrent_loss(x, x_hats, weight_ratio=0.5)
  np.testing.assert_allclose(again.numpy(), metrics.numpy())
  np.testing.assert_allclose(loss.numpy(), (4 / 3 * 0.5 + 2 / 3 * 0.1) / 2,
                             rtol=1e-6)
  weights = training.iteration_weights(16, 0.9)
  assert weights.mean() == pytest.approx(1.)
  assert np.all(np.diff(weights) < 0)
  with pytest.raises(ValueError, match="iteration_weight_ratio"):
    training.TrainConfig(iteration_weight_ratio=0.)


def test_recurrent_loss_ms_ssim_term():
  rng = np.random.default_rng(0)
  x = tf.constant(rng.uniform(-.5, .5, [2, 32, 32, 3]), tf.float32)
  noise = tf.constant(rng.normal(0, .1, [2, 2, 32, 32, 3]), tf.float32)
  x_hats = tf.stack([x + noise[0], x + noise[1] / 4])
  plain, metrics = training.recurrent_loss(x, x_hats)
  similarity = metrics.numpy()[:, 1]
  # MS-SSIM of each iteration, as training.ms_ssim computes it (2 scales fit
  # in 32 x 32), and higher for the closer reconstruction.
  expected = [np.mean(training.ms_ssim(x + .5, x_hat + .5, scales=2).numpy())
              for x_hat in x_hats]
  np.testing.assert_allclose(similarity, expected, rtol=1e-5)
  assert similarity[1] > similarity[0]
  mixed, again = training.recurrent_loss(x, x_hats, ms_ssim_weight=2.)
  np.testing.assert_allclose(again.numpy(), metrics.numpy())
  np.testing.assert_allclose(
      mixed.numpy(), plain.numpy() + 2. * np.mean(1. - similarity), rtol=1e-5)
  # The MS-SSIM term has a gradient only when it is in the loss.
  for weight in (0., 2.):
    with tf.GradientTape() as tape:
      tape.watch(x_hats)
      loss, _ = training.recurrent_loss(x, x_hats, ms_ssim_weight=weight)
      gradient = tape.gradient(loss, x_hats)
    l1_gradient = tf.sign(x_hats - x[None]) / np.prod(x_hats.shape[1:]) / 2
    difference = np.abs(gradient.numpy() - l1_gradient.numpy()).max()
    assert (difference > 1e-7) == bool(weight), (weight, difference)
  with pytest.raises(ValueError, match="iteration_ms_ssim_weight"):
    training.TrainConfig(iteration_ms_ssim_weight=-1.)


def test_patch_sampler_shapes_and_high_entropy_selection(image_dir):
  images = data.load_images(image_dir)
  assert len(images) == 6  # The text file is ignored.
  plain = data.PatchSampler(images, 16, candidates=1, seed=0).sample(64)
  picky = data.PatchSampler(images, 16, candidates=8, seed=0).sample(64)
  assert plain.shape == picky.shape == (64, 16, 16, 3)
  assert plain.dtype == np.uint8
  # Kept patches are the hardest to compress: more varied than random ones.
  assert picky.std(axis=(1, 2)).mean() > plain.std(axis=(1, 2)).mean()


def test_load_images_errors(tmp_path):
  with pytest.raises(ValueError, match="no images"):
    data.load_images(str(tmp_path))
  Image.fromarray(np.zeros([8, 8, 3], np.uint8)).save(tmp_path / "small.png")
  with pytest.raises(ValueError, match="at least 32"):
    data.load_images(str(tmp_path))


def test_normalization_round_trip():
  image = tf.constant(np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1))
  np.testing.assert_array_equal(
      toderici2017.to_uint8(toderici2017.to_float(image)).numpy(),
      image.numpy())


def test_learning_rate_warms_up_then_decays_to_zero():
  tc = training.TrainConfig(steps=1000, learning_rate=1e-3, warmup_steps=100,
                            decay_steps=400)
  lr = lambda s: training.learning_rate(tc, s)
  assert lr(0) == pytest.approx(1e-5)
  assert lr(99) == lr(300) == lr(600) == pytest.approx(1e-3)
  assert lr(800) == pytest.approx(0.5e-3)
  assert lr(1000) == pytest.approx(0., abs=1e-12)
  assert all(lr(s) >= lr(s + 1) for s in range(600, 1000))
  constant = training.TrainConfig(steps=1000, learning_rate=1e-3)
  assert training.learning_rate(constant, 999) == pytest.approx(1e-3)


def test_a_resumed_run_warms_up_again():
  # Resuming a decayed run with a larger --steps must not jump Adam from ~0
  # back to the full rate (that blew up a residual GRU run here).
  tc = training.TrainConfig(steps=2000, learning_rate=1e-3, warmup_steps=100,
                            decay_steps=400)
  lr = lambda s: training.learning_rate(tc, s, start_step=1000)
  assert lr(1000) == pytest.approx(1e-5)
  assert lr(1049) == pytest.approx(0.5e-3)
  assert lr(1099) == lr(1500) == pytest.approx(1e-3)
  assert lr(2000) == pytest.approx(0., abs=1e-12)


@pytest.mark.parametrize("factor", [float("nan"), 1e34],
                         ids=["nan_loss", "finite_loss_overflowing_norm"])
def test_a_non_finite_step_changes_no_weight(image_dir, tmp_path, monkeypatch,
                                             factor):
  """A NaN loss (an overflowing IGDN, say) is skipped, never trained on.

  So is a finite loss whose gradients are finite but whose global norm
  overflows float32 (clipping by that norm would write NaNs).
  """
  recurrent = training._RecurrentObjective  # pylint: disable=protected-access
  original = recurrent.loss

  def poisoned(self, model, x):
    loss, metrics = original(self, model, x)
    return loss * factor, metrics * factor

  monkeypatch.setattr(recurrent, "loss", poisoned)
  tc = training.TrainConfig(steps=3, batch_size=2, patch_size=32,
                            iterations=2, warmup_steps=1, log_every=3)
  lines = []
  tf.keras.utils.set_random_seed(5)
  model, _ = training.train(config.get_preset("tiny"), tc, image_dir,
                            str(tmp_path / "run"), log=lines.append)
  tf.keras.utils.set_random_seed(5)
  initial = models.build_model(config.get_preset("tiny"))
  for trained_variable, initial_variable in zip(model.variables,
                                                initial.variables):
    np.testing.assert_array_equal(trained_variable.numpy(),
                                  initial_variable.numpy())
  assert "3 non-finite steps skipped" in lines[-1], lines


# --- The rate term. -----------------------------------------------------------


def _entropy_model_preferring_ones(directory, bits=8, logit=2.):
  """An entropy model whose logits are ``logit`` for every bit: P(+1) > 1/2.

  Its output layer has zero weights and bias ``logit``, so the cost of a
  code is known in closed form: softplus(-b logit) / ln 2 bits.
  """
  from tfrnncomp.entropy import pixelrnn  # pylint: disable=g-import-not-at-top
  from tfrnncomp.entropy import saved_model  # pylint: disable=g-import-not-at-top
  network = pixelrnn.BinaryPixelRNN(
      pixelrnn.EntropyConfig(bits=bits, filters=4)).build_variables()
  network.out.kernel.assign(tf.zeros_like(network.out.kernel))
  network.out.bias.assign(tf.fill(network.out.bias.shape, logit))
  os.makedirs(directory)
  saved_model.save(network, str(directory),
                   {"name": "tiny", "weights_sha256": "0" * 64})
  return str(directory)


def _bits(b, logit):
  return np.log1p(np.exp(-b * logit)) / np.log(2.)


def test_rate_is_the_entropy_models_bits_per_bit(tmp_path):
  from tfrnncomp.entropy import saved_model  # pylint: disable=g-import-not-at-top
  directory = _entropy_model_preferring_ones(tmp_path / "codec")
  network, info = saved_model.load_network(directory)
  assert info["config"]["bits"] == 8
  codes = np.ones([3, 2, 2, 5, 8], np.float32)
  codes[1, :, :, :, :2] = -1.  # A quarter of iteration 2's bits are -1.
  codes[2] = -1.
  expected = [_bits(1., 2.), (3 * _bits(1., 2.) + _bits(-1., 2.)) / 4,
              _bits(-1., 2.)]
  np.testing.assert_allclose(training.rate(network, codes).numpy(), expected,
                             rtol=1e-5)


def test_the_rate_term_adds_to_the_loss_and_its_metrics(tmp_path):
  directory = _entropy_model_preferring_ones(tmp_path / "codec")
  codec = config.get_preset("tiny")
  plain_tc = training.TrainConfig(patch_size=32, iterations=3,
                                  iteration_weight_ratio=0.5)
  rate_tc = training.TrainConfig(patch_size=32, iterations=3,
                                 iteration_weight_ratio=0.5, rate_weight=0.5,
                                 entropy_model=directory)
  falling_tc = dataclasses.replace(rate_tc, rate_weight_ratio=0.25)
  tf.keras.utils.set_random_seed(1)
  model = models.build_model(codec)
  x = tf.constant(testing.photo_crops(2, 32)[0][None] / 255. - .5, tf.float32)
  results = []
  for tc in (plain_tc, rate_tc, falling_tc):
    objective = training._objective(codec, tc)  # pylint: disable=protected-access
    tf.random.set_seed(7)  # The same stochastic codes in every call.
    results.append(objective.loss(model, x))
  (plain, plain_metrics), (loss, metrics), (falling, _) = results
  assert plain_metrics.shape == (3, 2) and metrics.shape == (3, 3)
  np.testing.assert_allclose(metrics.numpy()[:, :2], plain_metrics.numpy())
  bits = metrics.numpy()[:, 2]
  # Stochastic codes of the untrained model: about half +1, half -1.
  assert np.all((bits > _bits(1., 2.)) & (bits < _bits(-1., 2.)))
  # Each iteration's term is w_t (D_t + lambda R_t): w = 4/7, 2/7, 1/7 x 3.
  weights = np.array([4., 2., 1.]) * 3 / 7
  np.testing.assert_allclose(loss.numpy(),
                             plain.numpy() + 0.5 * np.mean(weights * bits),
                             rtol=1e-5)
  # With rate_weight_ratio 0.25: lambda_t = 0.5, 0.125, 0.03125.
  lambdas = 0.5 * np.array([1., .25, .0625])
  np.testing.assert_allclose(falling.numpy(),
                             plain.numpy() + np.mean(weights * lambdas * bits),
                             rtol=1e-5)


def test_the_rate_term_trains_the_encoder_towards_predictable_codes(tmp_path):
  """Minimizing the rate alone: the codes become what the model predicts.

  The gradient reaches the encoder through the binarizer's straight-through
  estimator; with an entropy model that expects +1 everywhere, a few steps
  on the rate turn most (deterministic) codes to +1.
  """
  directory = _entropy_model_preferring_ones(tmp_path / "codec", logit=3.)
  codec = config.get_preset("tiny")
  tc = training.TrainConfig(patch_size=32, iterations=2, rate_weight=1.,
                            entropy_model=directory)
  objective = training._objective(codec, tc)  # pylint: disable=protected-access
  tf.keras.utils.set_random_seed(2)
  model = models.build_model(codec)
  images = np.stack(testing.photo_crops(4, 32))
  x = tf.constant(images / 255. - .5, tf.float32)

  def ones():
    codes = model.encode(tf.constant(images), 2)
    return float(np.mean(codes.numpy() > 0))

  before = ones()
  optimizer = tf.keras.optimizers.Adam(1e-2)
  for _ in range(15):
    with tf.GradientTape() as tape:
      _, metrics = objective.loss(model, x)
      rate = tf.reduce_mean(metrics[:, 2])
    grads = tape.gradient(rate, model.trainable_variables)
    encoder_grads = [g for g, v in zip(grads, model.trainable_variables)
                     if "encoder" in v.name or "binarizer" in v.name]
    assert encoder_grads and all(g is not None for g in encoder_grads)
    # The decoder does not make the codes: no gradient from the rate.
    optimizer.apply_gradients(
        (g, v) for g, v in zip(grads, model.trainable_variables)
        if g is not None)
  assert before < 0.7 < ones(), (before, ones())


def test_rate_term_configuration_errors(tmp_path):
  with pytest.raises(ValueError, match="need an entropy_model"):
    training.TrainConfig(rate_weight=0.1)
  with pytest.raises(ValueError, match="only used with a rate_weight"):
    training.TrainConfig(entropy_model=str(tmp_path))
  with pytest.raises(ValueError, match=r"rate_weight must be in \[0, 100\]"):
    training.TrainConfig(rate_weight=-1., entropy_model=str(tmp_path))
  with pytest.raises(ValueError, match=r"rate_weight_ratio must be in"):
    training.TrainConfig(rate_weight=.1, rate_weight_ratio=0.,
                         entropy_model=str(tmp_path))
  directory = _entropy_model_preferring_ones(tmp_path / "codec", bits=16)
  tc = training.TrainConfig(rate_weight=0.1, entropy_model=directory)
  objective = training._objective  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="16-bit codes, the codec makes 8-bit"):
    objective(config.get_preset("tiny"), tc)
  with pytest.raises(ValueError, match="recurrent codecs only"):
    objective(config.get_preset("akbari2020_tiny"), tc)
  from tfrnncomp import errors  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.ModelError, match="entropy.json"):
    objective(config.get_preset("tiny"), training.TrainConfig(
        rate_weight=0.1, entropy_model=str(tmp_path)))


def test_a_run_with_the_rate_term_logs_the_bits(image_dir, tmp_path):
  directory = _entropy_model_preferring_ones(tmp_path / "codec")
  tc = training.TrainConfig(steps=2, batch_size=2, patch_size=32,
                            iterations=2, warmup_steps=1, log_every=2,
                            rate_weight=0.1, entropy_model=directory)
  lines = []
  _, metrics = training.train(config.get_preset("tiny"), tc, image_dir,
                              str(tmp_path / "run"), log=lines.append)
  assert metrics.shape == (2, 3)
  assert "bits/bit first/mean/last" in lines[-1], lines
  with open(tmp_path / "run" / "train_config.json") as f:
    saved = json.load(f)
  assert saved["rate_weight"] == 0.1 and saved["entropy_model"] == directory


# --- The rate ceiling (dual ascent on per-iteration multipliers). -------------


def test_the_rate_ceiling_raises_a_multiplier_only_while_it_is_exceeded(
    tmp_path):
  directory = _entropy_model_preferring_ones(tmp_path / "codec")
  tc = training.TrainConfig(patch_size=32, iterations=3, rate_weight=0.1,
                            rate_weight_ratio=0.5, rate_target=0.5,
                            rate_target_step=0.01, entropy_model=directory)
  objective = training._objective(config.get_preset("tiny"), tc)  # pylint: disable=protected-access
  metrics = np.zeros([3, 3], np.float32)
  metrics[:, 2] = [0.9, 0.5, 0.2]  # Over, at and under the ceiling.
  for _ in range(10):
    objective.update(metrics)
  np.testing.assert_allclose(objective.multipliers.numpy(), [0.04, 0., 0.],
                             atol=1e-6)
  # lambda_t = lambda_R rho^(t-1) + mu_t.
  np.testing.assert_allclose(objective.rate_weights, [0.14, 0.05, 0.025],
                             atol=1e-6)
  # Under the ceiling the multiplier falls back, but never below 0.
  metrics[:, 2] = 0.3
  for _ in range(30):
    objective.update(metrics)
  np.testing.assert_allclose(objective.multipliers.numpy(), 0., atol=1e-7)
  # The multipliers price the bits in the loss: d loss / d mu_t = w_t R_t / T.
  x = tf.constant(np.asarray(testing.photo_crops(1, 32)), tf.float32) / 255. - .5
  model = models.build_model(config.get_preset("tiny"))
  tf.random.set_seed(0)
  base, metrics = objective.loss(model, x)
  objective.multipliers.assign([1., 0., 0.])
  tf.random.set_seed(0)
  priced, again = objective.loss(model, x)
  weights = training.iteration_weights(3)
  np.testing.assert_allclose(again.numpy(), metrics.numpy(), rtol=1e-5)
  np.testing.assert_allclose(priced - base, weights[0] * metrics[0, 2] / 3,
                             rtol=1e-4)
  # rate_target_from: the iterations before it are never constrained.
  later = training._objective(config.get_preset("tiny"), dataclasses.replace(  # pylint: disable=protected-access
      tc, rate_target_from=2))
  later.update(np.ones([3, 3], np.float32))
  np.testing.assert_allclose(later.multipliers.numpy(), [0., .005, .005])
  # Without a ceiling, update() changes nothing.
  plain = training._objective(config.get_preset("tiny"), dataclasses.replace(  # pylint: disable=protected-access
      tc, rate_target=0.))
  plain.update(np.ones([3, 3], np.float32))
  np.testing.assert_array_equal(plain.multipliers.numpy(), 0.)


def test_rate_ceiling_configuration_errors(tmp_path):
  with pytest.raises(ValueError, match=r"rate_target must be in \[0, 1\)"):
    training.TrainConfig(rate_target=1., entropy_model=str(tmp_path))
  with pytest.raises(ValueError, match=r"rate_target_step must be in"):
    training.TrainConfig(rate_target=.8, rate_target_step=0.,
                         entropy_model=str(tmp_path))
  with pytest.raises(ValueError, match="need an entropy_model"):
    training.TrainConfig(rate_target=.8)
  with pytest.raises(ValueError, match=r"rate_target_from must be in \[1, "):
    training.TrainConfig(rate_target=.8, iterations=4, rate_target_from=5,
                         entropy_model=str(tmp_path))
  # A ceiling alone (lambda_R = 0) is a valid rate term.
  assert training.TrainConfig(rate_target=.8,
                              entropy_model=str(tmp_path)).rate_weight == 0.


def test_the_rate_ceilings_multipliers_are_checkpointed_and_resumed(
    image_dir, tmp_path):
  directory = _entropy_model_preferring_ones(tmp_path / "codec")
  # Codes cost at least 0.18 bits per bit here: the ceiling is always exceeded.
  tc = training.TrainConfig(steps=2, batch_size=2, patch_size=32,
                            iterations=2, warmup_steps=1, log_every=1,
                            rate_target=0.01, rate_target_step=0.1,
                            entropy_model=directory)
  run = str(tmp_path / "run")
  lines = []
  training.train(config.get_preset("tiny"), tc, image_dir, run,
                 log=lines.append)
  assert "mu mean/max" in lines[-1], lines
  reader = tf.train.load_checkpoint(run)
  saved = reader.get_tensor("rate_multipliers/.ATTRIBUTES/VARIABLE_VALUE")
  assert saved.shape == (2,) and np.all(saved > 0.02), saved
  lines = []
  training.train(config.get_preset("tiny"), dataclasses.replace(tc, steps=3),
                 image_dir, run, log=lines.append)
  assert "resumed from" in lines[0], lines
  resumed = tf.train.load_checkpoint(run).get_tensor(
      "rate_multipliers/.ATTRIBUTES/VARIABLE_VALUE")
  # One more step from the restored values, not from 0.
  assert np.all(resumed > saved), (saved, resumed)
