"""Training the entropy model on codes a codec produces from training images.

Data: :mod:`tfrnncomp.entropy.codes_dataset`. Loss
(:func:`~tfrnncomp.entropy.pixelrnn.bits_per_bit`): the cross-entropy in bits
per code bit,

    L = - 1 / (T B h w K) sum log2 P(b_t[i, j, k] | context),

which is the size the range coder achieves (up to the bins' rounding and a
few bytes per chunk) relative to the raw codes (1 bit per bit). Adam on
batches of crops with all their iterations, under the codec trainer's
schedule (:func:`tfrnncomp.training.scheduled_learning_rate`: warm-up, then
constant, then a cosine decay to 0 over the last ``decay_steps``);
checkpoints (model, optimizer, step) go to ``TRAIN_DIR/checkpoints`` every
``checkpoint_every`` steps and at the end, and a run resumes from the latest.
A new run can start from the weights of a saved entropy model
(:func:`tfrnncomp.export.restore_weights`), e.g. that of the codec a
fine-tuned codec came from: its codes change little, so a short run adapts it.
"""

import os
import time

import numpy as np
import tensorflow as tf

from tfrnncomp import training as codec_training
from tfrnncomp.entropy import pixelrnn

__all__ = ["Trainer"]


class Trainer:
  """Adam on the bits-per-bit loss, with resumable checkpoints."""

  def __init__(self, model, train_dir, learning_rate=1e-3, max_to_keep=2,
               warmup_steps=0, decay_steps=0):
    self.model = model
    self.learning_rate = learning_rate
    self.warmup_steps = warmup_steps
    self.decay_steps = decay_steps
    self.optimizer = tf.keras.optimizers.Adam(learning_rate)
    # Slots created now, not inside the tf.function, and restorable.
    self.optimizer.build(model.trainable_variables)
    self.step = tf.Variable(0, dtype=tf.int64, name="step")
    self.checkpoint = tf.train.Checkpoint(model=model,
                                          optimizer=self.optimizer,
                                          step=self.step)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(train_dir, "checkpoints"),
        max_to_keep=max_to_keep)

  def restore(self):
    """Resumes from the latest checkpoint; returns its path or None."""
    latest = self.manager.latest_checkpoint
    if latest:
      self.checkpoint.restore(latest).assert_existing_objects_matched()
    return latest

  @tf.function
  def train_step(self, codes):
    """One step on int8 codes [B, T, h, w, K]; returns the loss (bits/bit)."""
    codes = tf.transpose(tf.cast(codes, tf.float32), [1, 0, 2, 3, 4])
    with tf.GradientTape() as tape:
      loss = pixelrnn.bits_per_bit(self.model(codes), codes)
    variables = self.model.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                       variables))
    self.step.assign_add(1)
    return loss

  @tf.function
  def _iteration_bits(self, codes):
    codes = tf.transpose(tf.cast(codes, tf.float32), [1, 0, 2, 3, 4])
    logits = self.model(codes)
    return tf.reduce_mean(tf.nn.softplus(-codes * logits),
                          axis=[1, 2, 3, 4]) / np.log(2.)

  def evaluate(self, codes, batch_size=8):
    """Bits per bit of each iteration, float [T], over crops [N, T, ...]."""
    total = 0.
    for start in range(0, len(codes), batch_size):
      batch = codes[start:start + batch_size]
      total += self._iteration_bits(batch).numpy() * len(batch)
    return total / len(codes)

  def fit(self, codes, steps, batch_size, seed=0, log_every=50,
          checkpoint_every=500, log=print):
    """Trains until ``self.step`` reaches ``steps``; returns the last loss."""
    start_step = int(self.step.numpy())
    rng = np.random.default_rng([seed, start_step])
    losses, start, mean = [], time.time(), float("nan")
    while int(self.step.numpy()) < steps:
      self.optimizer.learning_rate.assign(
          codec_training.scheduled_learning_rate(
              self.learning_rate, int(self.step.numpy()), steps,
              self.warmup_steps, self.decay_steps, start_step))
      batch = codes[rng.choice(len(codes), batch_size, replace=False)
                    if batch_size <= len(codes) else
                    rng.integers(0, len(codes), batch_size)]
      losses.append(float(self.train_step(batch)))
      step = int(self.step.numpy())
      if step % log_every == 0 or step == steps:
        mean = float(np.mean(losses))
        log(f"step {step}: {mean:.4f} bits per bit "
            f"({(time.time() - start) / len(losses):.2f} s/step)")
        losses, start = [], time.time()
      if step % checkpoint_every == 0:
        self.manager.save(checkpoint_number=step)
    self.manager.save(checkpoint_number=int(self.step.numpy()))
    return mean
