"""Training loop of the codecs, with the objective of each paper system.

Recurrent codecs (Toderici et al. 2017, Sec. 3.3; Islam et al. 2021): the
mean L1 norm of the residuals of all iterations,

    L = 1/T sum_t w_t mean |x - x_hat_t|,   w_t = T rho^(t-1) / sum_s rho^(s-1)

with the stochastic binarizer. The paper's loss has all w_t = 1
(``TrainConfig.iteration_weight_ratio`` rho = 1); rho < 1 weighs the early
iterations (the low rates) more, keeping the mean weight 1.

Variable-rate codec (Akbari et al. 2020, Sec. 2.3): the L2 and MS-SSIM
losses summed over the training bit depths B (``TrainConfig.bits_per_channel``,
three in the paper), with stochastic rounding in the quantizer,

    L = sum_B [ w_mse mean (x - x_hat_B)^2 + w_ms (1 - MS-SSIM(x, x_hat_B)) ]

on images in [0, 1]. MS-SSIM (:func:`ms_ssim`) is Wang et al. 2003 as
``tf.image.ssim_multiscale`` computes it, with negative contrast-structure
terms clamped to a small positive value instead of 0 (0^w has an infinite
derivative, which turns the gradient into NaN). Five scales need patches of
at least 11 * 2^4 = 176 pixels (256 by default); smaller patches use the
first ``ms_ssim_scales(patch_size)`` scales, their weights renormalized to
sum to 1. The default weights, ``w_mse = 20`` and ``w_ms = 1``, make the two
terms about equal near 30 dB PSNR / 0.98 MS-SSIM (0.02 each).

Rate term (recurrent codecs, ``TrainConfig.rate_weight`` lambda_R > 0): the
codes' cost under a trained entropy model (:mod:`tfrnncomp.entropy`, the
binary PixelRNN that codes them), the rate-distortion objective of learned
codecs (Ballé et al., "End-to-end Optimized Image Compression", ICLR 2017)
brought to the binary codes:

    L = L_distortion + 1/T sum_t w_t lambda_t R_t,
    lambda_t = lambda_R rho_R^(t-1),
    R_t = mean over the bits of iteration t of -log2 P(b | context)

(bits per bit; the file spends R_t / 8 bits per pixel on iteration t, 32
bits per 16 x 16 block; w_t are the distortion's iteration weights, so each
iteration's term is w_t (D_t + lambda_t R_t)). One lambda for all
iterations (rho_R = ``TrainConfig.rate_weight_ratio`` = 1) prices a bit the
same at every rate, and the late iterations, whose bits buy the least
distortion, give theirs up (measured: iterations 13-16 then add nothing);
rho_R < 1 follows the slope of the rate-distortion curve, which falls with
the rate, so that every truncation point stays a good operating point. The
gradient reaches the encoder through the binarizer's straight-through
estimator, both as the coded bit and as the context of later bits; the
entropy model itself stays frozen (retrain it on the new codes afterwards
with ``tools/train_entropy.py``).

Rate ceiling (``TrainConfig.rate_target`` R* > 0): the constrained problem
min L_distortion subject to R_t <= R* for every iteration, solved by
stochastic dual ascent on a multiplier per iteration (the Lagrangian method
of constrained optimization; Platt & Barr, "Constrained Differential
Optimization", NIPS 1987):

    lambda_t = lambda_R rho_R^(t-1) + mu_t,
    mu_t <- max(0, mu_t + eta (R_t - R*))   after every step,

for t >= ``TrainConfig.rate_target_from`` (mu_t = 0 before), eta =
``TrainConfig.rate_target_step``, R_t the step's batch mean. mu_t
grows while iteration t's codes cost more than R* bits per bit and shrinks
back to 0 once they cost less, so an iteration already under the ceiling
keeps the plain rate-distortion trade. The multipliers are checkpointed with
the weights. Files 15% smaller than t/8 bpp at every iteration count need
R_t <= 0.85 on average; a codec trained with the rate term alone codes its
third and later iterations at 0.9-0.98 bits per bit.
Toderici et al.
2017 train without one: their codes cost a fixed 1/8 bpp per iteration, and
the entropy coder saves only what is left to predict.

Both are minimized with Adam under a ``tf.distribute`` strategy, from random
patches (:mod:`tfrnncomp.data`). Checkpoints (model, optimizer, step) go to
``train_dir`` with the resolved config beside them, and training resumes from
the latest one.
"""

import dataclasses
import math
import json
import os
import shutil
import time

import numpy as np
import tensorflow as tf

from tfrnncomp import config as config_lib
from tfrnncomp import data as data_lib
from tfrnncomp import export as export_lib
from tfrnncomp import models
from tfrnncomp.models import toderici2017

__all__ = ["TrainConfig", "learning_rate", "scheduled_learning_rate",
           "iteration_weights", "recurrent_loss", "ms_ssim", "ms_ssim_scales", "variable_rate_loss", "make_strategy", "train",
           "load_or_create_config", "MS_SSIM_WEIGHTS"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang et al. 2003 (finest scale first)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimization settings (the network is a :class:`CodecConfig`)."""
  steps: int = 100000
  batch_size: int = 32
  patch_size: int = 32
  iterations: int = 16
  learning_rate: float = 5e-4
  warmup_steps: int = 200
  decay_steps: int = 0
  clip_norm: float = 1.0
  candidates: int = 1
  # Recurrent codecs: weight of iteration t in the loss ~ ratio^(t-1).
  iteration_weight_ratio: float = 1.0
  # Recurrent codecs: lambda of each iteration's L1_t + lambda (1 - MS-SSIM_t).
  iteration_ms_ssim_weight: float = 0.0
  # Recurrent codecs: lambda_R of the rate term (bits per bit of the codes
  # under the entropy model in ``entropy_model``, a directory); 0: none.
  rate_weight: float = 0.0
  # lambda_t = rate_weight * rate_weight_ratio^(t-1).
  rate_weight_ratio: float = 1.0
  # A ceiling on every iteration's R_t (bits per bit under entropy_model);
  # 0: none. Enforced by a multiplier mu_t >= 0 added to lambda_t, raised by
  # dual ascent (rate_target_step) while R_t exceeds it.
  rate_target: float = 0.0
  rate_target_step: float = 0.002
  # The first iteration (1-based) the ceiling applies to.
  rate_target_from: int = 1
  entropy_model: str = ""
  seed: int = 0
  log_every: int = 20
  checkpoint_every_secs: float = 600.
  # Variable-rate codecs (Akbari 2020) only.
  bits_per_channel: tuple = (2, 4, 8)
  mse_weight: float = 20.
  ms_ssim_weight: float = 1.

  def __post_init__(self):
    object.__setattr__(self, "bits_per_channel",
                       tuple(int(b) for b in self.bits_per_channel))
    for b in self.bits_per_channel:
      if not 1 <= b <= config_lib.MAX_BITS_PER_CHANNEL:
        raise ValueError(f"bits_per_channel values must be in [1, "
                         f"{config_lib.MAX_BITS_PER_CHANNEL}], got {b}")
    if not self.bits_per_channel:
      raise ValueError("bits_per_channel needs at least one value")
    if not 0.1 <= self.iteration_weight_ratio <= 10:
      raise ValueError(f"iteration_weight_ratio must be in [0.1, 10], got "
                       f"{self.iteration_weight_ratio}")
    if not 0 <= self.iteration_ms_ssim_weight <= 100:
      raise ValueError(f"iteration_ms_ssim_weight must be in [0, 100], got "
                       f"{self.iteration_ms_ssim_weight}")
    if not 0 <= self.rate_weight <= 100:
      raise ValueError(f"rate_weight must be in [0, 100], got "
                       f"{self.rate_weight}")
    if not 0.1 <= self.rate_weight_ratio <= 10:
      raise ValueError(f"rate_weight_ratio must be in [0.1, 10], got "
                       f"{self.rate_weight_ratio}")
    if not 0 <= self.rate_target < 1:
      raise ValueError(f"rate_target must be in [0, 1) bits per bit, got "
                       f"{self.rate_target}")
    if not 0 < self.rate_target_step <= 1:
      raise ValueError(f"rate_target_step must be in (0, 1], got "
                       f"{self.rate_target_step}")
    if not 1 <= self.rate_target_from <= self.iterations:
      raise ValueError(f"rate_target_from must be in [1, iterations = "
                       f"{self.iterations}], got {self.rate_target_from}")
    if (self.rate_weight or self.rate_target) and not self.entropy_model:
      raise ValueError("rate_weight and rate_target need an entropy_model")
    if self.entropy_model and not (self.rate_weight or self.rate_target):
      raise ValueError("entropy_model is only used with a rate_weight > 0 "
                       "or a rate_target > 0")


def iteration_weights(iterations, ratio=1.0):
  """w_t = T ratio^(t-1) / sum_s ratio^(s-1): geometric, mean 1."""
  weights = np.power(float(ratio), np.arange(iterations, dtype=np.float64))
  return (weights * iterations / weights.sum()).astype(np.float32)


def recurrent_loss(x, x_hats, weight_ratio=1.0, ms_ssim_weight=0.0,
                   scales=None):
  """The recurrent codecs' loss over x [B, H, W, 3] and x_hats [T, B, H, W, 3].

  Toderici et al. 2017 train on the L1 norm of every iteration's residual,
  sum_t |r_t|. Here each iteration's term may add an MS-SSIM term, the mixed
  loss of Zhao et al., "Loss Functions for Image Restoration with Neural
  Networks" (IEEE TCI 2017), in the spirit of Johnston et al. 2018's
  SSIM-weighted loss for the same networks:

      loss = mean_t w_t [ mean|r_t| + lambda (1 - MS-SSIM(x, x_hat_t)) ],

  w_t from :func:`iteration_weights` (``weight_ratio``), lambda =
  ``ms_ssim_weight``; MS-SSIM on [0, 1] images with as many scales as the
  patches hold (:func:`ms_ssim_scales`; 2 on 32 x 32 patches). With lambda =
  0 the MS-SSIM is still computed, outside the gradient, for the metrics.

  Returns:
    The loss and [T, 2] metrics: the mean |r_t| and the MS-SSIM of each
    iteration (batch means).
  """
  iterations = x_hats.shape[0]
  l1 = tf.reduce_mean(tf.abs(x[None] - x_hats), axis=[1, 2, 3, 4])
  if scales is None:
    scales = ms_ssim_scales(min(x.shape[1], x.shape[2]))
  flat = tf.reshape(x_hats, tf.concat([[-1], tf.shape(x_hats)[2:]], 0))
  if not ms_ssim_weight:
    flat = tf.stop_gradient(flat)
  similarity = ms_ssim(tf.tile(x, [iterations, 1, 1, 1]) + .5, flat + .5,
                       scales=scales)
  similarity = tf.reduce_mean(tf.reshape(similarity, [iterations, -1]), 1)
  per_iteration = l1
  if ms_ssim_weight:
    per_iteration += ms_ssim_weight * (1. - similarity)
  weights = iteration_weights(iterations, weight_ratio)
  return (tf.reduce_mean(weights * per_iteration),
          tf.stack([l1, similarity], -1))


def rate(entropy_model, codes):
  """R_t: bits per bit of each iteration's codes [T, B, h, w, K] -> [T].

  -log2 P(b_t) under the entropy model, averaged over the batch, positions
  and bits of iteration t; differentiable in ``codes`` (as the coded bits and
  as their context).
  """
  logits = entropy_model(codes)
  codes = tf.cast(codes, logits.dtype)
  nats = tf.reduce_mean(tf.nn.softplus(-codes * logits), axis=[1, 2, 3, 4])
  return nats / math.log(2.)


def ms_ssim_scales(size, filter_size=11, most=len(MS_SSIM_WEIGHTS)):
  """Scales of MS-SSIM that fit in size x size images (at least 1)."""
  scales = 1
  while scales < most and size // 2 ** scales >= filter_size:
    scales += 1
  return scales


def _gaussian_taps(size, sigma):
  """1-D taps whose outer product is tf.image.ssim's Gaussian window."""
  coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.
  g = np.exp(-coords ** 2 / (2. * sigma ** 2))
  return (g / g.sum()).astype(np.float32)


def ms_ssim(x, y, max_val=1., scales=5, filter_size=11, filter_sigma=1.5,
            k1=0.01, k2=0.03, clamp=1e-6):
  """Differentiable MS-SSIM of image batches [B, H, W, C] -> [B].

  As ``tf.image.ssim_multiscale`` (per channel, then averaged over channels)
  with the first ``scales`` weights of :data:`MS_SSIM_WEIGHTS`, renormalized
  to sum to 1 when fewer than 5, and the contrast-structure / SSIM terms
  clamped at ``clamp`` instead of 0. The Gaussian window is applied as two
  1-D depthwise convolutions over the five moment maps stacked along the
  channels (on CPU, ~5x faster to differentiate than one 11x11 depthwise
  convolution, and ~10x faster than 1-channel conv2d).
  """
  weights = np.asarray(MS_SSIM_WEIGHTS[:scales], np.float64)
  if scales < len(MS_SSIM_WEIGHTS):
    weights /= weights.sum()
  taps = _gaussian_taps(filter_size, filter_sigma)
  moments_channels = 5 * x.shape[-1]
  rows = tf.constant(np.tile(taps.reshape(filter_size, 1, 1, 1),
                             [1, 1, moments_channels, 1]))
  cols = tf.constant(np.tile(taps.reshape(1, filter_size, 1, 1),
                             [1, 1, moments_channels, 1]))
  blur = lambda z: tf.nn.depthwise_conv2d(
      tf.nn.depthwise_conv2d(z, rows, [1, 1, 1, 1], "VALID"), cols,
      [1, 1, 1, 1], "VALID")
  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  terms = []
  for scale in range(scales):
    if scale:
      pad = [[0, 0], [0, x.shape[1] % 2], [0, x.shape[2] % 2], [0, 0]]
      x = tf.nn.avg_pool2d(tf.pad(x, pad, "SYMMETRIC"), 2, 2, "VALID")
      y = tf.nn.avg_pool2d(tf.pad(y, pad, "SYMMETRIC"), 2, 2, "VALID")
    filtered = tf.split(blur(tf.concat([x, y, x * x, y * y, x * y], -1)), 5,
                        axis=-1)
    mean_x, mean_y, e_xx, e_yy, e_xy = filtered
    num0 = 2. * mean_x * mean_y
    den0 = tf.square(mean_x) + tf.square(mean_y)
    luminance = (num0 + c1) / (den0 + c1)
    cs = (2. * e_xy - num0 + c2) / (e_xx + e_yy - den0 + c2)
    value = cs if scale < scales - 1 else luminance * cs
    terms.append(tf.maximum(tf.reduce_mean(value, axis=[1, 2]), clamp))
  per_channel = tf.reduce_prod(
      tf.pow(tf.stack(terms, -1), tf.constant(weights, tf.float32)), -1)
  return tf.reduce_mean(per_channel, -1)


def variable_rate_loss(x, x_hats, mse_weight=20., ms_ssim_weight=1.,
                       scales=5):
  """Akbari 2020 objective for x [B, H, W, 3] and x_hats [nB, B, H, W, 3].

  Images in [-0.5, 0.5]; MSE and MS-SSIM are computed on [0, 1]. Returns the
  loss summed over bit depths and, per bit depth, [nB, 2] (MSE, MS-SSIM).
  """
  depths = tf.shape(x_hats)[0]
  mse = tf.reduce_mean(tf.square(x[None] - x_hats), axis=[1, 2, 3, 4])
  # One MS-SSIM call for all bit depths (stacked along the batch).
  flat = tf.reshape(x_hats, tf.concat([[-1], tf.shape(x_hats)[2:]], 0))
  similarity = ms_ssim(tf.tile(x, [depths, 1, 1, 1]) + .5, flat + .5,
                       scales=scales)
  similarity = tf.reduce_mean(tf.reshape(similarity, [depths, -1]), axis=1)
  loss = tf.reduce_sum(mse_weight * mse + ms_ssim_weight * (1. - similarity))
  return loss, tf.stack([mse, similarity], -1)


def make_strategy(name="default"):
  """``default`` (one device), ``mirrored`` or ``multi_worker`` (TF_CONFIG)."""
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"unknown strategy {name!r}: use default, mirrored or "
                   "multi_worker")


def load_or_create_config(train_dir, config):
  """Returns the config saved in ``train_dir``, or saves ``config`` there.

  Resuming with a different network config is an error, not a silent change.
  The precision of the convolutions (``compute_dtype``) is not part of the
  network: a run may resume in another, which is then saved.
  """
  path = os.path.join(train_dir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = config_lib.config_from_json(f.read())
    if config is None:
      return saved
    if _network(saved) != _network(config):
      raise ValueError(f"{train_dir} holds a run of a different model config "
                       f"({saved}); use another --train_dir")
    if saved == config:
      return saved
  os.makedirs(train_dir, exist_ok=True)
  export_lib.write_atomic(path, config.to_json().encode())
  return config


def _network(config):
  """``config`` without the settings that leave the weights unchanged."""
  if hasattr(config, "compute_dtype"):
    return dataclasses.replace(config, compute_dtype="float32")
  return config
def _value(variable):
  """A scalar variable's value (also for MirroredVariables, where int() fails)."""
  return int(variable.numpy())


def _barrier(strategy):
  """Waits until every worker gets here (a one-number all-reduce).

  Without it the chief may exit, and take the cluster's coordination service
  with it, while another worker is still writing its last checkpoint.
  """
  if strategy.num_replicas_in_sync > 1:
    tf.function(lambda: strategy.reduce(
        tf.distribute.ReduceOp.SUM,
        strategy.run(lambda: tf.constant(1.)), None))()


def _is_chief(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  return resolver is None or not resolver.task_type or (
      resolver.task_type in ("chief", "worker") and resolver.task_id == 0)


def train(config, train_config, data_dir, train_dir, strategy=None,
          init_from=None, log=print):
  """Trains ``config`` on patches of the images in ``data_dir``.

  Args:
    config: the network's CodecConfig or VariableRateConfig (checked against
      a resumed run's).
    train_config: a TrainConfig.
    data_dir: a folder of training images.
    train_dir: where checkpoints, config.json and TensorBoard logs go.
    strategy: a tf.distribute.Strategy (default: one device).
    init_from: a SavedModel exported by tfrnncomp to start from when
      ``train_dir`` has no checkpoint yet.
    log: called with each progress line.

  Returns:
    The trained model and the last step's metrics (numpy): [T, 2] L1 and
    MS-SSIM per iteration for recurrent codecs, [MSE, MS-SSIM] per training
    bit depth for the variable-rate codec.
  """
  strategy = strategy or tf.distribute.get_strategy()
  tc = train_config
  config = load_or_create_config(train_dir, config)
  with strategy.scope():
    model = models.build_model(config)
    optimizer = tf.keras.optimizers.Adam(tc.learning_rate,
                                         global_clipnorm=tc.clip_norm)
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    objective = _objective(config, tc)
    tracked = {}
    if tc.rate_target:  # Only recurrent codecs accept one (_objective).
      tracked["rate_multipliers"] = objective.multipliers
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     step=step, **tracked)
  chief = _is_chief(strategy)
  ckpt_dir = train_dir if chief else os.path.join(
      train_dir, f"worker_{strategy.cluster_resolver.task_id}")
  remove_partial_checkpoints(ckpt_dir, log)
  manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=3)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).expect_partial()
    log(f"resumed from {manager.latest_checkpoint} at step {_value(step)}")
  elif init_from:
    export_lib.restore_weights(model, init_from, log=log)
    log(f"initialized weights from {init_from}")
  start_step = _value(step)  # The warm-up restarts here (learning_rate).

  images = data_lib.load_images(data_dir, min_size=tc.patch_size)
  seed = tc.seed + _value(step) * 7919  # New patches after a resume.
  if getattr(strategy, "cluster_resolver", None) is not None:
    seed += 104729 * (strategy.cluster_resolver.task_id or 0)
  replicas = strategy.num_replicas_in_sync
  if tc.batch_size % replicas:
    raise ValueError(f"batch_size {tc.batch_size} is not a multiple of the "
                     f"{replicas} replicas")
  dataset = data_lib.patch_dataset(images, tc.batch_size // replicas,
                                   tc.patch_size, tc.candidates, seed)
  dist_dataset = strategy.experimental_distribute_dataset(dataset)

  def step_fn(patches):
    x = toderici2017.to_float(patches)
    with tf.GradientTape() as tape:
      loss, metrics = objective.loss(model, x)
      scaled = loss / replicas
    grads = tape.gradient(scaled, model.trainable_variables)
    # A step whose loss or gradients are not finite (GDN/IGDN outputs can
    # overflow) changes no weight: its gradients are zeroed, so a NaN never
    # reaches the weights or a checkpoint. The test is on the gradients'
    # global norm, which is also what clipping divides by: finite gradients
    # whose norm overflows float32 would make clip_by_global_norm return
    # NaNs (this happened with savedmodels/akbari2020 on training patches
    # where its IGDN decoder overflows to a loss of ~1e19).
    norm = tf.linalg.global_norm([g for g in grads if g is not None])
    applied = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))
    grads = [None if g is None else tf.where(applied, g, tf.zeros_like(g))
             for g in grads]
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return metrics, tf.cast(applied, tf.float32)

  @tf.function
  def train_step(patches):
    metrics, applied = strategy.run(step_fn, args=(patches,))
    # applied: the fraction of replicas whose gradients were finite.
    return (strategy.reduce(tf.distribute.ReduceOp.MEAN, metrics, None),
            strategy.reduce(tf.distribute.ReduceOp.MEAN, applied, None))

  writer = tf.summary.create_file_writer(
      os.path.join(train_dir, "logs") if chief else os.path.join(
          ckpt_dir, "logs"))
  iterator = iter(dist_dataset)
  last_save = time.time()
  window_start, window_steps, window_loss = time.time(), 0, 0.
  window_skipped = 0
  metrics = None
  while _value(step) < tc.steps:
    current = _value(step)
    optimizer.learning_rate.assign(learning_rate(tc, current, start_step))
    metrics, applied = train_step(next(iterator))
    metrics = metrics.numpy()
    step.assign_add(1)
    window_steps += 1
    if applied.numpy() == 1:
      objective.update(metrics)
      window_loss += objective.loss_value(metrics)
    else:
      window_skipped += 1  # No weight changed (see step_fn).
    if _value(step) % tc.log_every == 0 or _value(step) == tc.steps:
      elapsed = time.time() - window_start
      mean = window_loss / max(1, window_steps - window_skipped)
      skipped = (f"  ({window_skipped} non-finite steps skipped)"
                 if window_skipped else "")
      log(f"step {_value(step)}  {window_steps / elapsed:.2f} steps/s  "
          f"loss {mean:.5f}  {objective.describe(metrics)}{skipped}")
      with writer.as_default(step=_value(step)):
        tf.summary.scalar("loss", mean)
        tf.summary.scalar("learning_rate", optimizer.learning_rate)
        tf.summary.scalar("skipped_steps", window_skipped)
        objective.summaries(metrics)
      window_start, window_steps, window_loss = time.time(), 0, 0.
      window_skipped = 0
    if time.time() - last_save > tc.checkpoint_every_secs:
      manager.save(checkpoint_number=_value(step))
      last_save = time.time()
  manager.save(checkpoint_number=_value(step))
  if chief:
    export_lib.write_atomic(os.path.join(train_dir, "train_config.json"),
                            json.dumps(dataclasses.asdict(tc), indent=2).encode())
  _barrier(strategy)
  return model, metrics


def remove_partial_checkpoints(ckpt_dir, log=print):
  """Deletes what a run killed while saving a checkpoint left behind.

  TensorFlow writes a checkpoint's shards under ``<prefix>_temp/`` and moves
  them into place, and the ``checkpoint`` state file through a temporary
  ``checkpoint.tmp<id>`` renamed over it, so a run killed mid-save (even by
  ``kill -9``) leaves the last complete checkpoint named in ``checkpoint``
  plus, at most, these leftovers. They are never read; removing them keeps
  the directory to complete checkpoints only.
  """
  if not os.path.isdir(ckpt_dir):
    return
  for name in sorted(os.listdir(ckpt_dir)):
    path = os.path.join(ckpt_dir, name)
    if name.endswith("_temp") and os.path.isdir(path):
      shutil.rmtree(path, ignore_errors=True)
    elif name.startswith("checkpoint.tmp") and os.path.isfile(path):
      os.remove(path)
    else:
      continue
    log(f"removed {path}, left by a run killed while saving a checkpoint")


def learning_rate(train_config, step, start_step=0):
  """The learning rate at ``step``: linear warm-up, then constant, then a
  cosine decay to 0 over the last ``decay_steps`` steps (none if 0).

      lr(s) = lr0 * min(1, (s - s0 + 1) / warmup)
                  * (1 + cos(pi * max(0, s - (steps - decay)) / decay)) / 2

  ``s0`` (``start_step``) is the step the current process started at: every
  run warms up again, a resumed one included. Without that, resuming a
  finished run with a larger ``--steps`` jumps Adam from a learning rate
  near 0 straight back to lr0: measured on the residual GRU here, the loss
  went from 0.036 to 5.9 within 50 steps of such a resume and never came
  back (2,500 more steps ended at 0.16).

  The decay is what turns the noisy iterate of a constant-rate Adam run into
  a usable model: resume a run with a larger ``--steps`` and ``--decay_steps``
  to finish it.
  """
  tc = train_config
  return scheduled_learning_rate(tc.learning_rate, step, tc.steps,
                                 tc.warmup_steps, tc.decay_steps, start_step)


def scheduled_learning_rate(base, step, steps, warmup_steps=0, decay_steps=0,
                            start_step=0):
  """:func:`learning_rate`'s schedule with its parameters spelt out.

  Linear warm-up over ``warmup_steps`` from ``start_step``, then ``base``,
  then a cosine decay to 0 over the last ``decay_steps`` of ``steps``; also
  used by the entropy model's trainer (:mod:`tfrnncomp.entropy.training`).
  """
  factor = min(1., (step - start_step + 1) / max(1, warmup_steps))
  if decay_steps > 0:
    into = max(0, step - (steps - decay_steps))
    factor *= 0.5 * (1. + math.cos(math.pi * min(1., into / decay_steps)))
  return base * factor


class _RecurrentObjective:
  """:func:`recurrent_loss`, plus the rate term if ``tc.rate_weight`` or
  ``tc.rate_target``.

  Metrics: [T, 2] L1 and MS-SSIM per iteration, and a third column R_t (bits
  per bit, :func:`rate`) with the rate term.
  """

  def __init__(self, tc, config):
    self.iterations = tc.iterations
    self.weight_ratio = tc.iteration_weight_ratio
    self.ms_ssim_weight = tc.iteration_ms_ssim_weight
    self.scales = ms_ssim_scales(tc.patch_size)
    self.rate_base = tc.rate_weight * np.power(
        tc.rate_weight_ratio, np.arange(tc.iterations)).astype(np.float32)
    self.rate_target = tc.rate_target
    self.rate_target_step = tc.rate_target_step
    self.rate_target_mask = (np.arange(tc.iterations) + 1 >=
                             tc.rate_target_from).astype(np.float32)
    # mu_t of the rate ceiling (module docstring); zeros without one.
    self.multipliers = tf.Variable(tf.zeros([tc.iterations]), trainable=False,
                                   name="rate_multipliers")
    self.entropy_model = None
    if tc.rate_weight or tc.rate_target:
      from tfrnncomp.entropy import saved_model  # pylint: disable=g-import-not-at-top
      self.entropy_model, _ = saved_model.load_network(tc.entropy_model)
      self.entropy_model.trainable = False
      if self.entropy_model.config.bits != config.bits:
        raise ValueError(
            f"the entropy model in {tc.entropy_model} models "
            f"{self.entropy_model.config.bits}-bit codes, the codec makes "
            f"{config.bits}-bit codes")

  def loss(self, model, x):
    codes, x_hats = model(x, iterations=self.iterations, training=True)
    loss, metrics = recurrent_loss(x, x_hats, self.weight_ratio,
                                   self.ms_ssim_weight, self.scales)
    if self.entropy_model is None:
      return loss, metrics
    bits = rate(self.entropy_model, codes)
    weights = iteration_weights(self.iterations, self.weight_ratio)
    lambdas = self.rate_base + self.multipliers
    return (loss + tf.reduce_mean(weights * lambdas * bits),
            tf.concat([metrics, bits[:, None]], -1))

  @property
  def rate_weights(self):
    """lambda_t of every iteration now (numpy [T])."""
    return self.rate_base + self.multipliers.numpy()

  def update(self, metrics):
    """One dual-ascent step of the rate ceiling's multipliers (if any)."""
    if not self.rate_target:
      return
    self.multipliers.assign(self.rate_target_mask * tf.maximum(
        0., self.multipliers + self.rate_target_step *
        (metrics[:, 2] - self.rate_target)))

  def loss_value(self, metrics):
    """The loss without the iteration weights (mean L1 when lambda = 0)."""
    value = np.mean(metrics[:, 0] + self.ms_ssim_weight * (1. - metrics[:, 1]))
    if self.entropy_model is not None:
      value += np.mean(self.rate_weights * metrics[:, 2])
    return float(value)

  def describe(self, metrics):
    line = (f"L1 first/last iteration {metrics[0, 0]:.4f}/"
            f"{metrics[-1, 0]:.4f}  MS-SSIM {metrics[0, 1]:.4f}/"
            f"{metrics[-1, 1]:.4f}")
    if self.entropy_model is not None:
      line += (f"  bits/bit first/mean/last {metrics[0, 2]:.3f}/"
               f"{np.mean(metrics[:, 2]):.3f}/{metrics[-1, 2]:.3f}")
    if self.rate_target:
      mu = self.multipliers.numpy()
      line += f"  mu mean/max {np.mean(mu):.4f}/{np.max(mu):.4f}"
    return line

  def summaries(self, metrics):
    for t, values in enumerate(metrics):
      tf.summary.scalar(f"l1/iteration_{t + 1:02d}", values[0])
      tf.summary.scalar(f"ms_ssim/iteration_{t + 1:02d}", values[1])
      if self.entropy_model is not None:
        tf.summary.scalar(f"bits_per_bit/iteration_{t + 1:02d}", values[2])
      if self.rate_target:
        tf.summary.scalar(f"rate_multiplier/iteration_{t + 1:02d}",
                          self.multipliers[t])


class _VariableRateObjective:
  """L2 + MS-SSIM over several bit depths (metrics: [nB, 2] MSE, MS-SSIM)."""

  def __init__(self, tc):
    self.bits = tc.bits_per_channel
    self.mse_weight = tc.mse_weight
    self.ms_ssim_weight = tc.ms_ssim_weight
    self.scales = ms_ssim_scales(tc.patch_size)

  def update(self, metrics):
    """Nothing to adapt (the recurrent objective's rate ceiling only)."""
    del metrics

  def loss(self, model, x):
    _, x_hats = model(x, bits=self.bits, training=True)
    return variable_rate_loss(x, x_hats, self.mse_weight, self.ms_ssim_weight,
                              self.scales)

  def loss_value(self, metrics):
    return float(np.sum(self.mse_weight * metrics[:, 0] +
                        self.ms_ssim_weight * (1. - metrics[:, 1])))

  def describe(self, metrics):
    psnr = "/".join(f"{_psnr(m):.2f}" for m in metrics[:, 0])
    similarity = "/".join(f"{m:.4f}" for m in metrics[:, 1])
    bits = "/".join(str(b) for b in self.bits)
    return f"B={bits}: PSNR {psnr} dB  MS-SSIM {similarity}"

  def summaries(self, metrics):
    for b, (mse, similarity) in zip(self.bits, metrics):
      tf.summary.scalar(f"psnr/bits_{b}", _psnr(mse))
      tf.summary.scalar(f"ms_ssim/bits_{b}", similarity)


def _psnr(mse):
  """PSNR in dB of an MSE on [0, 1] images."""
  return float(10. * np.log10(1. / max(float(mse), 1e-10)))


def _objective(config, tc):
  if models.is_iterative(config):
    return _RecurrentObjective(tc, config)
  if tc.rate_weight or tc.rate_target:
    raise ValueError("rate_weight and rate_target apply to the recurrent "
                     "codecs only")
  return _VariableRateObjective(tc)
