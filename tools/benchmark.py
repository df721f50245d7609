r"""Times encoding and decoding on Kodak, beside JPEG, WebP, HEVC and AVIF.

  python tools/benchmark.py --images 24 --runs 3 \
      --output_json results/kodak/benchmark.json \
      --output_md results/kodak/benchmark.md --large

For each --models SavedModel and each --rates nominal bpp (iterations * bits
/ 256; the defaults 0.125 ... 2 are 1 to 16 iterations of the shipped
model), on the first --images images of --images_dir (or the names given):

- encode (network + entropy coding) and decode (entropy decoding +
  network) times, the median of --runs runs after a warm-up run per image
  shape; megapixels per second; the bpp of the bitstream and the PSNR;
- the peak memory of a fresh process that does only that (model, rate);
- the network's floating-point operations per second against a measured
  float32 matmul peak of this machine;
- JPEG, WebP, HEVC and AVIF (tfrnncomp/codecs.py) at the quality whose
  rate is closest to ours on each image, as ratios of our time to theirs.

--large adds one encode and decode of a 4000x3000 image at 0.25 bpp (tiled,
tfrnncomp/tiling.py) with its peak memory. Prints the Markdown tables;
--output_json and --output_md write them. Measure on an otherwise idle
machine: the numbers are only as good as the machine is quiet (the load
average is recorded). See tfrnncomp/benchmark.py for exactly what is timed.
Errors print one line "benchmark.py: error: ..." and exit non-zero.
"""

import json
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import benchmark
from tfrnncomp import cli

FLAGS = flags.FLAGS
flags.DEFINE_list("models", [os.path.join(ROOT, "savedmodels",
                                          "residual_gru")],
                  "Codec SavedModel directories (recurrent systems), "
                  "comma-separated.")
flags.DEFINE_string("images_dir", os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data", "kodak")), "Test images.")
flags.DEFINE_string("images", "24", "How many images (the first, sorted by "
                    "name), or comma-separated names (kodim01,kodim23).")
flags.DEFINE_list("rates", [f"{r:g}" for r in benchmark.RATES], "Nominal "
                  "bpp to measure, each a multiple of one iteration's bits / "
                  "256.")
flags.DEFINE_integer("runs", 3, "Timed runs per measurement (the median is "
                     "reported), after a warm-up run.")
flags.DEFINE_list("codecs", list(benchmark.STANDARD_CODECS), "Standard "
                  "codecs to time at similar rates (jpeg, webp, jpeg2000, "
                  "avif, hevc, jpegxl), or 'none'.")
flags.DEFINE_boolean("large", False, "Also encode and decode a 4000x3000 "
                     "image at 0.25 bpp and report its peak memory.")
flags.DEFINE_integer("intra_op_threads", 0, "TensorFlow intra-op threads "
                     "(0: TensorFlow's default, one per CPU).")
flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads "
                     "(0: TensorFlow's default).")
flags.DEFINE_boolean("isolate", True, "Measure each (model, rate) in a fresh "
                     "process, so each has its own peak memory.")
flags.DEFINE_string("output_json", None, "Where to write the results (JSON).")
flags.DEFINE_string("output_md", None, "Where to write the tables "
                    "(Markdown).")
_FLAGS = ("models", "images_dir", "images", "rates", "runs", "codecs",
          "large", "intra_op_threads", "inter_op_threads", "isolate",
          "output_json", "output_md")


def _rates():
  rates = []
  for text in FLAGS.rates:
    try:
      rate = float(text)
    except ValueError:
      rate = -1.
    if not rate > 0:
      raise app.UsageError(f"--rates must be positive numbers, got {text!r}")
    rates.append(rate)
  if not rates:
    raise app.UsageError("--rates is empty")
  return rates


def _codecs():
  from tfrnncomp import codecs  # pylint: disable=g-import-not-at-top
  names = [n.strip().lower() for n in FLAGS.codecs if n.strip()]
  if names == ["none"]:
    return []
  for name in names:
    if name not in codecs.STANDARD_CODECS:
      raise app.UsageError(f"--codecs: unknown codec {name!r}; choose from "
                           f"{', '.join(codecs.STANDARD_CODECS)} or none")
  return names


def _check_output(path, flag):
  if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
    raise app.UsageError(f"--{flag}: directory of {path} does not exist")


def _command():
  """The command line of this run (the flags given), for the JSON."""
  words = ["python tools/benchmark.py"]
  for name in _FLAGS:
    if FLAGS[name].present:
      value = FLAGS[name].value
      if isinstance(value, list):
        value = ",".join(map(str, value))
      words.append(f"--{name}={value}")
  return " ".join(words)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.runs < 1:
    raise app.UsageError(f"--runs must be >= 1, got {FLAGS.runs}")
  if FLAGS.intra_op_threads < 0 or FLAGS.inter_op_threads < 0:
    raise app.UsageError("thread counts must be >= 0")
  if not FLAGS.models:
    raise app.UsageError("--models is empty")
  rates = _rates()
  names = _codecs()
  _check_output(FLAGS.output_json, "output_json")
  _check_output(FLAGS.output_md, "output_md")
  for model in FLAGS.models:
    if not os.path.isfile(os.path.join(model, "config.json")):
      raise app.UsageError(f"--models: {model} is not a codec SavedModel "
                           f"directory (no config.json)")
  images = benchmark.select_images(FLAGS.images_dir, FLAGS.images)
  log = lambda line: print(line, file=sys.stderr, flush=True)
  results = benchmark.run(
      FLAGS.models, images, rates=rates, runs=FLAGS.runs,
      standard_codecs=names, large=FLAGS.large,
      threads={"intra_op": FLAGS.intra_op_threads,
               "inter_op": FLAGS.inter_op_threads},
      isolate=FLAGS.isolate, log=log)
  results["command"] = _command()
  table = benchmark.markdown(results)
  print(table)
  from tfrnncomp import export  # pylint: disable=g-import-not-at-top
  if FLAGS.output_json:
    export.write_atomic(FLAGS.output_json,
                        json.dumps(results, indent=1).encode())
  if FLAGS.output_md:
    export.write_atomic(FLAGS.output_md, table.encode())
  return 0


if __name__ == "__main__":
  cli.run(main)
