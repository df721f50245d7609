"""Exports a trained codec checkpoint (any system) as a SavedModel.

  python tools/export.py --train_dir ~/runs/residual_gru_half \
      --output savedmodels/residual_gru
  python tools/export.py --train_dir ~/runs/islam2021 \
      --output savedmodels/islam2021
  python tools/export.py --train_dir ~/runs/akbari2020 \
      --output savedmodels/akbari2020

The system comes from the training directory's ``config.json``. The
SavedModel has the signatures ``encode``, ``decode`` and ``serving_default``
of that system (see tfrnncomp/export.py), holds only core TensorFlow ops,
and has the resolved ``config.json`` and the model identifier ``model.json``
beside it.
"""

import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "Training directory of tools/train.py "
                    "(config.json and checkpoints).")
flags.DEFINE_string("checkpoint", None, "A specific checkpoint prefix; default: "
                    "the latest in --train_dir.")
flags.DEFINE_string("output", None, "SavedModel directory to write.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("train_dir", "output"):
    if not getattr(FLAGS, name):
      raise app.UsageError(f"--{name} is required")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp import export as export_lib
  from tfrnncomp import models
  from tfrnncomp import training
  train_dir = os.path.expanduser(FLAGS.train_dir)
  if not os.path.isfile(os.path.join(train_dir, "config.json")):
    raise app.UsageError(f"{train_dir} has no config.json: not a training "
                         "directory of tools/train.py")
  config = training.load_or_create_config(train_dir, None)
  checkpoint = FLAGS.checkpoint or tf.train.latest_checkpoint(train_dir)
  if not checkpoint:
    raise app.UsageError(f"no checkpoint in {train_dir}")
  model = models.build_model(config)
  tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
  if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
    raise app.UsageError(f"{FLAGS.output} exists; pass --overwrite to replace")
  identity = export_lib.export(model, FLAGS.output, overwrite=FLAGS.overwrite)
  print(f"exported {checkpoint} -> {FLAGS.output} "
        f"({config.system} {identity['name']}, weights sha256 "
        f"{identity['weights_sha256'][:16]})")
  return 0


if __name__ == "__main__":
  app.run(main)
