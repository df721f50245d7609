r"""Compresses and decompresses images through a running TensorFlow Serving.

  python tools/serving_client.py compress --input_image=kodim23.png \
      --output_codes=kodim23.rnc --iteration=3 \
      --model_name=residual_gru --model=serving/residual_gru/1
  python tools/serving_client.py decompress --input_codes=kodim23.rnc \
      --output_directory=out/ \
      --model_name=residual_gru --model=serving/residual_gru/1
  python tools/serving_client.py compress ... --protocol=grpc \
      --server=localhost:8500

The network (the codec SavedModel's ``encode`` and ``decode`` signatures,
core TensorFlow ops only) runs on the server, model --model_name (version
--model_version, default the server's latest); the entropy coding (range
coding with tensorflow-compression's ops, which TF Serving lacks) runs here,
with the entropy model of --model, a local copy of the served version's
directory (as tools/export.py --serving_dir writes it), which also gives the
model identifier the bitstream records. The files are byte for byte those of
tools/encoder.py with that model, and decode with tools/decoder.py (and the
reverse). See tfrnncomp/serving.py.

Flags --input_image, --output_codes, --iteration, --bpp, --input_codes,
--output_directory and --overwrite mean what they mean for tools/encoder.py
(compress) and tools/decoder.py (decompress). --protocol=rest (default,
standard library only, ``http://localhost:8501``) or grpc (needs the
tensorflow-serving-api package, ``pip install '.[serving]'``,
``localhost:8500``). Errors print one line and exit non-zero.
"""

import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli

DEFAULT_MODEL = os.path.join(ROOT, "savedmodels", "residual_gru")
MAX_ITERATION = 15
ACTIONS = ("compress", "decompress")

FLAGS = flags.FLAGS
flags.DEFINE_string("server", None, "TF Serving address: a REST base URL "
                    "(default http://localhost:8501) or, with "
                    "--protocol=grpc, host:port (default localhost:8500).")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "TF Serving API.")
flags.DEFINE_string("model_name", None, "Served model name (required): the "
                    "server's --model_name.")
flags.DEFINE_integer("model_version", None, "Served version to use (default: "
                     "the server's latest). Pin the version --model is a "
                     "copy of.")
flags.DEFINE_string("model", DEFAULT_MODEL, "Local copy of the served "
                    "version's directory: model.json (the model identifier) "
                    "and entropy/ (the entropy model).")
flags.DEFINE_float("timeout", 300., "Seconds for each request.")
flags.DEFINE_string("input_image", None, "compress: image to encode.")
flags.DEFINE_string("output_codes", None, "compress: file to write (.npz: "
                    "the original code format; else a bitstream).")
flags.DEFINE_integer("iteration", None, "compress: codes iteration+1 "
                     f"iterations (default {MAX_ITERATION}); decompress: the "
                     "last iteration to decode (default: all in the file).")
flags.DEFINE_float("bpp", None, "compress: instead of --iteration, a target "
                   "rate (file bits per pixel).")
flags.DEFINE_integer("search_steps", 0, "compress: search each iteration's "
                     "codes on the server (its encode_search signature; "
                     "tools/encoder.py --search_steps), this many steps.")
flags.DEFINE_string("input_codes", None, "decompress: code file to decode.")
flags.DEFINE_string("output_directory", None, "decompress: directory for "
                    "image_00.png ...")
flags.DEFINE_boolean("overwrite", False, "Replace existing outputs.")


def _require(*names):
  for name in names:
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")


def _refuse(action, *names):
  for name in names:
    if FLAGS[name].present:
      raise app.UsageError(f"--{name} does not apply to {action}")


def _iterations(action):
  if FLAGS.iteration is None:
    return None
  if not 0 <= FLAGS.iteration <= MAX_ITERATION:
    raise app.UsageError(f"--iteration must be between 0 and "
                         f"{MAX_ITERATION} for {action}, got "
                         f"{FLAGS.iteration}")
  return FLAGS.iteration + 1


def main(argv):
  if len(argv) != 2 or argv[1] not in ACTIONS:
    raise app.UsageError(f"give one action, {' or '.join(ACTIONS)}; got "
                         f"{' '.join(argv[1:]) or 'none'}")
  action = argv[1]
  _require("model_name")
  if action == "compress":
    _require("input_image", "output_codes")
    _refuse(action, "input_codes", "output_directory")
    iterations = _iterations(action)
    if FLAGS.bpp is not None:
      if iterations is not None:
        raise app.UsageError("give --iteration or --bpp, not both")
      if not FLAGS.bpp > 0:
        raise app.UsageError(f"--bpp must be positive, got {FLAGS.bpp}")
    elif iterations is None:
      iterations = MAX_ITERATION + 1
  else:
    _require("input_codes", "output_directory")
    _refuse(action, "input_image", "output_codes", "bpp", "search_steps")
    iterations = _iterations(action)
  from tfrnncomp import serving  # pylint: disable=g-import-not-at-top
  codec = serving.connect(FLAGS.server, FLAGS.model_name, FLAGS.model,
                          version=FLAGS.model_version,
                          protocol=FLAGS.protocol, timeout=FLAGS.timeout)
  if action == "compress":
    result = cli.encode_file(codec, FLAGS.input_image, FLAGS.output_codes,
                             iterations, overwrite=FLAGS.overwrite,
                             bpp=FLAGS.bpp, search_steps=FLAGS.search_steps)
  else:
    result = cli.decode_file(codec, FLAGS.input_codes, FLAGS.output_directory,
                             iterations, overwrite=FLAGS.overwrite)
  print(result.describe())
  return 0


if __name__ == "__main__":
  cli.run(main)
