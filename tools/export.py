r"""Exports a trained codec checkpoint (any system) as a SavedModel.

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

--savedmodel with --output re-exports a codec SavedModel (e.g. in another
--compute_dtype, or one exported by an earlier version; the weights and
their hash carry over, the entropy model is re-saved from its network in
the current format):

  python tools/export.py --savedmodel savedmodels/residual_gru \
      --output /tmp/residual_gru_float32 --compute_dtype float32

--compute_dtype sets the precision of a recurrent codec's convolutions
(float32 weights either way, tfrnncomp/layers/precision.py): bfloat16 is
about twice as fast on CPUs with AVX512-BF16 or AMX, float32 is the choice
on others.

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
flags.DEFINE_enum("compute_dtype", None, ["float32", "bfloat16"], "Recurrent "
                  "codecs: precision of the exported convolutions (default: "
                  "that of the config).")
flags.DEFINE_string("savedmodel", None, "Instead of --train_dir: an exported "
                    "codec directory: copied to --serving_dir, or re-exported "
                    "to --output (see --compute_dtype).")
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


def _with_compute_dtype(config):
  if FLAGS.compute_dtype is None or getattr(
      config, "compute_dtype", None) == FLAGS.compute_dtype:
    return config
  if not hasattr(config, "compute_dtype"):
    raise app.UsageError(f"--compute_dtype applies to the recurrent codecs, "
                         f"not to {config.system}")
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(config, compute_dtype=FLAGS.compute_dtype)


def _reexport():
  """--savedmodel to --output: the same weights, the config's precision set."""
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  from tfrnncomp import errors
  from tfrnncomp import config as config_lib
  from tfrnncomp import export as export_lib
  from tfrnncomp import models
  source = os.path.expanduser(FLAGS.savedmodel)
  codec = cli.load_codec(source)  # Checks it is a codec SavedModel.
  if os.path.abspath(source) == os.path.abspath(FLAGS.output):
    raise app.UsageError("--output must differ from --savedmodel")
  if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
    raise app.UsageError(f"{FLAGS.output} exists; pass --overwrite to replace")
  with open(os.path.join(source, "config.json")) as f:
    config = _with_compute_dtype(config_lib.config_from_json(f.read()))
  model = models.build_model(config)
  if export_lib.restore_weights(model, source):
    raise app.UsageError(f"{source} lacks weights of its own config")
  entropy = os.path.join(source, "entropy")
  network = None
  if os.path.isdir(entropy):  # It models these same weights: loaded first,
    # so that an unreadable one stops the tool before anything is written.
    from tfrnncomp.entropy import saved_model  # pylint: disable=g-import-not-at-top
    try:
      network, info = saved_model.load_network(entropy)
    except errors.ModelError as e:
      raise app.UsageError(str(e)) from None
  identity = export_lib.export(model, FLAGS.output, overwrite=FLAGS.overwrite)
  if identity["weights_sha256"] != codec.identity["weights_sha256"]:
    raise app.UsageError(f"re-exported weights of {source} hash differently")
  entropy_note = ""
  if network is not None:
    # Re-saved from its network, in the current format (e.g. with the
    # integer coding path): its weights hash changes if the format did.
    saved = saved_model.save(network, FLAGS.output, identity,
                             training=info.get("training"))
    entropy_note = (f", entropy model re-saved (weights sha256 "
                    f"{saved['weights_sha256'][:16]})")
  print(f"exported {source} -> {FLAGS.output} ({config.system} "
        f"{identity['name']}, weights sha256 "
        f"{identity['weights_sha256'][:16]}"
        + (f", compute_dtype {config.compute_dtype}"
           if hasattr(config, "compute_dtype") else "")
        + entropy_note + ")")
  return 0


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if bool(FLAGS.train_dir) == bool(FLAGS.savedmodel):
    raise app.UsageError("give one of --train_dir and --savedmodel")
  if bool(FLAGS.output) == bool(FLAGS.serving_dir):
    raise app.UsageError("give one of --output and --serving_dir")
  if FLAGS.savedmodel:
    if FLAGS.output:
      return _reexport()
    if FLAGS.compute_dtype:
      raise app.UsageError("--compute_dtype with --savedmodel needs --output "
                           "(a re-export)")
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
  config = _with_compute_dtype(
      training.load_or_create_config(train_dir, None))
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
