r"""Compresses every image of a folder (or a TFDS dataset), resumably.

  python tools/compress_folder.py --input_dir=photos/ --output_dir=codes/ \
      --iteration=3
  python tools/compress_folder.py --dataset=kodak --output_dir=kodak_codes/ \
      --bpp=0.5

Writes ``OUTPUT_DIR/<name>.rnc`` per image (subfolders kept; --format=npz
for the original .npz), each the file tools/encoder.py writes with the same
--iteration / --bpp, and ``OUTPUT_DIR/manifest.jsonl``, one JSON line per
image: file, output, bytes, bpp, psnr, ms_ssim, iterations, height, width
and the settings. Images are read and decoded by a parallel tf.data pipeline
(--parallel_reads); a progress bar goes to stderr. Run the same command again
to resume: images whose manifest entry and output are there are skipped.
Outputs and the manifest are written atomically. Unreadable images are
skipped and reported; the exit status is then 1. See tfrnncomp/batch.py.
"""

import functools
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli
from tfrnncomp import errors

DEFAULT_MODEL = os.path.join(ROOT, "savedmodels", "residual_gru")
MAX_ITERATION = 15

FLAGS = flags.FLAGS
flags.DEFINE_string("input_dir", None, "Folder of images (searched "
                    "recursively).")
flags.DEFINE_string("dataset", None, "Instead of --input_dir: a TFDS dataset "
                    "name (e.g. kodak).")
flags.DEFINE_string("split", "test", "TFDS split of --dataset.")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_string("output_dir", None, "Where the code files and "
                    "manifest.jsonl go (required; created).")
flags.DEFINE_integer("iteration", MAX_ITERATION, "Codes iteration+1 "
                     "iterations, as tools/encoder.py.")
flags.DEFINE_float("bpp", None, "Instead of --iteration: per image, the most "
                   "iterations whose file has at most this many bits per "
                   "pixel.")
flags.DEFINE_enum("format", "bitstream", ["bitstream", "npz"], "Code file "
                  "format: bitstream (.rnc) or the original .npz.")
flags.DEFINE_string("model", DEFAULT_MODEL, "Codec SavedModel directory.")
flags.DEFINE_string("manifest", None, "Manifest path (default "
                    "OUTPUT_DIR/manifest.jsonl).")
flags.DEFINE_integer("max_images", None, "Only the first images.")
flags.DEFINE_integer("parallel_reads", None, "Images read and decoded at "
                     "once (default: tf.data autotuning).")
flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.")
flags.DEFINE_integer("search_steps", 0, "Search each iteration's codes "
                     "against the decoder, this many steps (tools/encoder.py "
                     "--search_steps; 12-15x slower with 4). Recorded in the "
                     "manifest: a run with another value recodes.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if bool(FLAGS.input_dir) == bool(FLAGS.dataset):
    raise app.UsageError("give one of --input_dir and --dataset")
  if not FLAGS.output_dir:
    raise app.UsageError("--output_dir is required")
  if not 0 <= FLAGS.iteration <= MAX_ITERATION:
    raise app.UsageError(f"--iteration must be between 0 and {MAX_ITERATION}"
                         f", got {FLAGS.iteration}")
  iterations = FLAGS.iteration + 1
  if FLAGS.bpp is not None:
    if FLAGS["iteration"].present:
      raise app.UsageError("give --iteration or --bpp, not both")
    if not FLAGS.bpp > 0:
      raise app.UsageError(f"--bpp must be positive, got {FLAGS.bpp}")
    iterations = None
  if not 0 <= FLAGS.search_steps <= cli.MAX_SEARCH_STEPS:
    raise app.UsageError(f"--search_steps must be between 0 and "
                         f"{cli.MAX_SEARCH_STEPS}, got {FLAGS.search_steps}")
  for name in ("max_images", "parallel_reads"):
    if FLAGS[name].value is not None and FLAGS[name].value < 1:
      raise app.UsageError(f"--{name} must be positive")
  if FLAGS.input_dir and not os.path.isdir(FLAGS.input_dir):
    raise app.UsageError(f"--input_dir {FLAGS.input_dir} is not a folder")
  from tfrnncomp import batch  # pylint: disable=g-import-not-at-top
  from tfrnncomp import evaluation  # pylint: disable=g-import-not-at-top
  codec = cli.load_codec(FLAGS.model)
  progress = (functools.partial(evaluation.progress_bar,
                                description="compressing")
              if FLAGS.progress else None)
  result = batch.compress_images(
      codec, FLAGS.output_dir, folder=FLAGS.input_dir, dataset=FLAGS.dataset,
      split=FLAGS.split, data_dir=FLAGS.data_dir, iterations=iterations,
      bpp=FLAGS.bpp, fmt=FLAGS.format, manifest=FLAGS.manifest,
      max_images=FLAGS.max_images, parallel_reads=FLAGS.parallel_reads,
      progress=progress, search_steps=FLAGS.search_steps)
  print(result.describe())
  if result.failed:
    raise errors.InputError(f"{len(result.failed)} image(s) not coded; "
                            f"first: {result.failed[0][1]}")
  return 0


if __name__ == "__main__":
  cli.run(main)
