"""Training loop of the recurrent codecs (Toderici et al. 2017, Sec. 3.3).

Loss: the mean L1 norm of the residuals of all iterations,

    L = 1/T sum_t mean |x - x_hat_t|,

minimized with Adam under a ``tf.distribute`` strategy, from random patches
(:mod:`tfrnncomp.data`), with the stochastic binarizer. Checkpoints (model,
optimizer, step) go to ``train_dir`` with the resolved config beside them, and
training resumes from the latest one.
"""

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from tfrnncomp import config as config_lib
from tfrnncomp import data as data_lib
from tfrnncomp import export as export_lib
from tfrnncomp import models
from tfrnncomp.models import toderici2017

__all__ = ["TrainConfig", "residual_l1_loss", "make_strategy", "train",
           "load_or_create_config"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimization settings (the network is a :class:`CodecConfig`)."""
  steps: int = 100000
  batch_size: int = 32
  patch_size: int = 32
  iterations: int = 16
  learning_rate: float = 5e-4
  warmup_steps: int = 200
  clip_norm: float = 1.0
  candidates: int = 1
  seed: int = 0
  log_every: int = 20
  checkpoint_every_secs: float = 600.


def residual_l1_loss(x, x_hats):
  """Mean |r_t| over iterations and pixels; also returns it per iteration."""
  per_iteration = tf.reduce_mean(tf.abs(x[None] - x_hats), axis=[1, 2, 3, 4])
  return tf.reduce_mean(per_iteration), per_iteration


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
  """
  path = os.path.join(train_dir, "config.json")
  if os.path.exists(path):
    with open(path) as f:
      saved = config_lib.CodecConfig.from_json(f.read())
    if config is not None and saved != config:
      raise ValueError(f"{train_dir} holds a run of a different model config "
                       f"({saved}); use another --train_dir")
    return saved
  os.makedirs(train_dir, exist_ok=True)
  export_lib.write_atomic(path, config.to_json().encode())
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
    config: the network's CodecConfig (checked against a resumed run's).
    train_config: a TrainConfig.
    data_dir: a folder of training images.
    train_dir: where checkpoints, config.json and TensorBoard logs go.
    strategy: a tf.distribute.Strategy (default: one device).
    init_from: a SavedModel exported by tfrnncomp to start from when
      ``train_dir`` has no checkpoint yet.
    log: called with each progress line.

  Returns:
    The trained model and the last loss per iteration (numpy).
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
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                     step=step)
  chief = _is_chief(strategy)
  ckpt_dir = train_dir if chief else os.path.join(
      train_dir, f"worker_{strategy.cluster_resolver.task_id}")
  manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, max_to_keep=3)
  if manager.latest_checkpoint:
    checkpoint.restore(manager.latest_checkpoint).expect_partial()
    log(f"resumed from {manager.latest_checkpoint} at step {_value(step)}")
  elif init_from:
    export_lib.restore_weights(model, init_from)
    log(f"initialized weights from {init_from}")

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
      _, x_hats = model(x, iterations=tc.iterations, training=True)
      loss, per_iteration = residual_l1_loss(x, x_hats)
      scaled = loss / replicas
    grads = tape.gradient(scaled, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return per_iteration

  @tf.function
  def train_step(patches):
    per_iteration = strategy.run(step_fn, args=(patches,))
    return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_iteration, None)

  writer = tf.summary.create_file_writer(
      os.path.join(train_dir, "logs") if chief else os.path.join(
          ckpt_dir, "logs"))
  iterator = iter(dist_dataset)
  last_save = time.time()
  window_start, window_steps, window_loss = time.time(), 0, 0.
  per_iteration = None
  while _value(step) < tc.steps:
    current = _value(step)
    warmup = min(1., (current + 1) / max(1, tc.warmup_steps))
    optimizer.learning_rate.assign(tc.learning_rate * warmup)
    per_iteration = train_step(next(iterator)).numpy()
    step.assign_add(1)
    window_steps += 1
    window_loss += float(per_iteration.mean())
    if _value(step) % tc.log_every == 0 or _value(step) == tc.steps:
      elapsed = time.time() - window_start
      log(f"step {_value(step)}  {window_steps / elapsed:.2f} steps/s  "
          f"loss {window_loss / window_steps:.5f}  "
          f"L1 first/last iteration {per_iteration[0]:.4f}/"
          f"{per_iteration[-1]:.4f}")
      with writer.as_default(step=_value(step)):
        tf.summary.scalar("loss", window_loss / window_steps)
        tf.summary.scalar("learning_rate", optimizer.learning_rate)
        for t, value in enumerate(per_iteration):
          tf.summary.scalar(f"l1/iteration_{t + 1:02d}", value)
      window_start, window_steps, window_loss = time.time(), 0, 0.
    if time.time() - last_save > tc.checkpoint_every_secs:
      manager.save(checkpoint_number=_value(step))
      last_save = time.time()
  manager.save(checkpoint_number=_value(step))
  if chief:
    export_lib.write_atomic(os.path.join(train_dir, "train_config.json"),
                            json.dumps(dataclasses.asdict(tc), indent=2).encode())
  _barrier(strategy)
  return model, per_iteration
