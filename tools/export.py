"""Exports a trained codec checkpoint (any system) as a SavedModel.

  python tools/export.py --train_dir ~/runs/residual_gru_half \
      --output savedmodels/residual_gru
  python tools/export.py --train_dir ~/runs/islam2021 \
      --output savedmodels/islam2021
  python tools/export.py --train_dir ~/runs/akbari2020 \
      --output savedmodels/akbari2020

For TensorFlow Serving, --serving_dir writes version --version (default:
the next free one) of model --serving_name (default: the config's name) as
``SERVING_DIR/NAME/VERSION/``, the layout TF Serving polls; --savedmodel
instead of --train_dir copies an exported codec there, its entropy model
included:

  python tools/export.py --train_dir ~/runs/residual_gru_half \
      --serving_dir ~/serving --serving_name residual_gru --version 1
  python tools/export.py --savedmodel savedmodels/residual_gru \
      --serving_dir ~/serving --serving_name residual_gru

The system comes from the training directory's ``config.json``. The
SavedModel has the signatures ``encode``, ``decode`` and ``serving_default``
of that system (see tfrnncomp/export.py), holds only core TensorFlow ops
(TF Serving runs them; entropy coding, which needs tensorflow-compression's
ops, stays in the client, tools/serving_client.py), and has the resolved
``config.json`` and the model identifier ``model.json`` beside it.
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
flags.DEFINE_string("savedmodel", None, "Instead of --train_dir: an exported "
                    "codec directory to copy to --serving_dir.")
flags.DEFINE_string("serving_dir", None, "Instead of --output: the TF Serving "
                    "base directory; writes SERVING_DIR/NAME/VERSION/.")
flags.DEFINE_string("serving_name", None, "Model name under --serving_dir "
                    "(default: the codec's name).")
flags.DEFINE_integer("version", None, "Version to write under --serving_dir "
                     "(default: one more than the highest there, or 1).")


def _serving(source_directory=None, model=None, name=None):
  """Writes the serving version; returns its directory."""
  from tfrnncomp import export as export_lib  # pylint: disable=g-import-not-at-top
  try:
    if model is not None:
      directory, _ = export_lib.export_for_serving(
          model, FLAGS.serving_dir, name, FLAGS.version)
    else:
      directory = export_lib.copy_for_serving(
          source_directory, FLAGS.serving_dir, name, FLAGS.version)
  except (ValueError, FileExistsError) as e:
    raise app.UsageError(str(e)) from None
  return directory


def _copy_savedmodel():
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  source = os.path.expanduser(FLAGS.savedmodel)
  codec = cli.load_codec(source)  # Checks it is a codec SavedModel.
  name = FLAGS.serving_name or codec.name
  directory = _serving(source_directory=source, name=name)
  print(f"copied {source} -> {directory} ({codec.describe_identity()}; "
        f"serve with --model_name={name} "
        f"--model_base_path={os.path.dirname(directory)})")
  return 0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if bool(FLAGS.train_dir) == bool(FLAGS.savedmodel):
    raise app.UsageError("give one of --train_dir and --savedmodel")
  if bool(FLAGS.output) == bool(FLAGS.serving_dir):
    raise app.UsageError("give one of --output and --serving_dir")
  if FLAGS.savedmodel:
    if not FLAGS.serving_dir:
      raise app.UsageError("--savedmodel is copied to a --serving_dir")
    return _copy_savedmodel()
  if not FLAGS.serving_dir and (FLAGS.serving_name or
                                FLAGS.version is not None):
    raise app.UsageError("--serving_name and --version need --serving_dir")
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
  if FLAGS.serving_dir:
    name = FLAGS.serving_name or config.name
    directory = _serving(model=model, name=name)
    print(f"exported {checkpoint} -> {directory} ({config.system} "
          f"{config.name}; serve with --model_name={name} "
          f"--model_base_path={os.path.dirname(directory)})")
    return 0
  if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
    raise app.UsageError(f"{FLAGS.output} exists; pass --overwrite to replace")
  identity = export_lib.export(model, FLAGS.output, overwrite=FLAGS.overwrite)
  print(f"exported {checkpoint} -> {FLAGS.output} "
        f"({config.system} {identity['name']}, weights sha256 "
        f"{identity['weights_sha256'][:16]})")
  return 0


if __name__ == "__main__":
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
