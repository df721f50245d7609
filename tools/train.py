"""Trains a recurrent codec on random patches of a folder of images.

Example (the shipped residual GRU model):

  python tools/train.py --preset residual_gru_half \
      --data_dir ../shared/data/train --train_dir ~/runs/residual_gru_half

Re-running the same command resumes from the latest checkpoint in
--train_dir. --init_from starts a new run from an exported SavedModel.
Progress lines show steps/s and the loss; TensorBoard logs are written to
--train_dir/logs.
"""

import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "residual_gru_half", "Network preset (see "
                    "tfrnncomp.config.PRESETS).")
flags.DEFINE_string("cell", None, "Override the preset's cell: lstm, gru, "
                    "residual_gru or associative_lstm.")
flags.DEFINE_string("reconstruction", None, "Override the reconstruction: "
                    "one_shot, additive or residual_scaling.")
flags.DEFINE_float("width", None, "Override the width multiplier.")
flags.DEFINE_string("data_dir", None, "Folder of training images.")
flags.DEFINE_string("train_dir", None, "Checkpoints, config and logs.")
flags.DEFINE_string("init_from", None, "SavedModel to start a new run from.")
flags.DEFINE_integer("steps", 100000, "Total training steps.")
flags.DEFINE_integer("batch_size", 32, "Patches per step (all replicas).")
flags.DEFINE_integer("patch_size", 32, "Patch side in pixels (multiple of 16).")
flags.DEFINE_integer("iterations", 16, "Iterations unrolled per step.")
flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate.")
flags.DEFINE_integer("warmup_steps", 200, "Linear warm-up steps.")
flags.DEFINE_integer("candidates", 1, "Draw this many patches per kept one and "
                     "keep those PNG compresses worst (high entropy); 1 = off.")
flags.DEFINE_integer("seed", 0, "Patch sampling seed.")
flags.DEFINE_integer("log_every", 20, "Steps between progress lines.")
flags.DEFINE_float("checkpoint_every_secs", 600., "Seconds between checkpoints.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy; multi_worker reads TF_CONFIG.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tfrnncomp import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfrnncomp import training
  for name in ("data_dir", "train_dir"):
    if not getattr(FLAGS, name):
      raise app.UsageError(f"--{name} is required")
  if not os.path.isdir(FLAGS.data_dir):
    raise app.UsageError(f"--data_dir {FLAGS.data_dir!r} is not a folder")
  if FLAGS.patch_size % 16:
    raise app.UsageError("--patch_size must be a multiple of 16")
  overrides = {k: getattr(FLAGS, k) for k in ("cell", "reconstruction", "width")
               if getattr(FLAGS, k) is not None}
  try:
    config = config_lib.resolve(FLAGS.preset, overrides)
    train_config = training.TrainConfig(
        steps=FLAGS.steps, batch_size=FLAGS.batch_size,
        patch_size=FLAGS.patch_size, iterations=FLAGS.iterations,
        learning_rate=FLAGS.learning_rate, warmup_steps=FLAGS.warmup_steps,
        candidates=FLAGS.candidates, seed=FLAGS.seed, log_every=FLAGS.log_every,
        checkpoint_every_secs=FLAGS.checkpoint_every_secs)
    strategy = training.make_strategy(FLAGS.strategy)
    training.train(config, train_config, FLAGS.data_dir,
                   os.path.expanduser(FLAGS.train_dir), strategy=strategy,
                   init_from=FLAGS.init_from,
                   log=lambda line: print(line, flush=True))
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e))
  return 0


if __name__ == "__main__":
  app.run(main)
