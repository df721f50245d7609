r"""Fuzzes the decoder with mutated code files (tfrnncomp/fuzzing.py).

  nice -n 19 python tools/fuzz_decoder.py --cases=100000 --seed=0 \
      --corpus_dir=/tmp/fuzz_findings

Encodes a few small images with --model into bitstreams and .npz files, then
decodes --cases mutations of them (bit flips, byte changes, truncations,
splices, random bytes, forged header fields with valid CRCs, forged chunks,
hostile .npz arrays, .npy headers and zip fields) the way tools/decoder.py
does (tfrnncomp.cli.decode_file). Each must decode or raise a
tfrnncomp.errors.TfrnncompError; any other exception, a case slower than
--time_limit seconds or one that grows the peak memory by more than
--memory_limit_mb is a finding, saved to --corpus_dir. A crash (abort,
segfault) ends the run: the case that caused it is --corpus_dir/current.

Case i depends on (--seed, i) only: --start=i --cases=1 reruns it. Prints a
progress line every --report_every cases and a table of outcomes per mutator
at the end; exits 1 if there were findings.
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

FLAGS = flags.FLAGS
flags.DEFINE_integer("cases", 100000, "Number of cases.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Random seed of the run.")
flags.DEFINE_integer("start", 0, "Index of the first case.", lower_bound=0)
flags.DEFINE_string("model", DEFAULT_MODEL, "Codec SavedModel that makes the "
                    "seed files and decodes the cases (its entropy model, if "
                    "any, range-codes some chunks).")
flags.DEFINE_string("corpus_dir", None, "Directory for the inputs of "
                    "findings (and the running case); none if unset.")
flags.DEFINE_float("time_limit", 10., "Seconds above which a case is a "
                   "finding.")
flags.DEFINE_float("memory_limit_mb", 1024., "Peak-memory growth (MB) above "
                   "which a case is a finding.")
flags.DEFINE_integer("max_pixels", None, "Decoding limit of the cases "
                     "(default tfrnncomp.fuzzing.FUZZ_MAX_PIXELS).")
flags.DEFINE_integer("report_every", 5000, "Cases between progress lines.",
                     lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tfrnncomp import fuzzing  # pylint: disable=g-import-not-at-top
  codec = cli.load_codec(FLAGS.model)

  def progress(report):
    print(f"{FLAGS.start + report.cases} cases, {report.seconds:.0f} s, "
          f"{len(report.findings)} finding(s)", flush=True)

  report = fuzzing.fuzz(
      codec, FLAGS.cases, seed=FLAGS.seed, corpus_dir=FLAGS.corpus_dir,
      time_limit=FLAGS.time_limit, memory_limit_mb=FLAGS.memory_limit_mb,
      max_pixels=FLAGS.max_pixels or fuzzing.FUZZ_MAX_PIXELS,
      start=FLAGS.start, progress=progress,
      progress_every=FLAGS.report_every)
  print(report.describe())
  return 1 if report.findings else 0


if __name__ == "__main__":
  cli.run(main)
