"""Rate-distortion figures and BD-rate table from result JSONs.

Reads the CODEC.json files that tools/evaluate.py wrote and the published
curves under --reference_dir, and writes psnr.png, ms_ssim.png and
bd_rate.md (BD-rates against our JPEG and HEVC anchors):

  python tools/plot_results.py --results_dir results/kodak

See tfrnncomp/plotting.py for the reference formats and the BD-rate method.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli  # pylint: disable=g-import-not-at-top

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("results_dir", None, "Folder of result JSONs (e.g. "
                    "results/kodak).")
flags.DEFINE_string("reference_dir", os.path.join(
    os.path.dirname(_ROOT), "shared", "reference", "kodak"),
                    "Published results: tfc/, compressai/, islam2021/ ('' for "
                    "none).")
flags.DEFINE_list("references", None, "Published curves to include, e.g. "
                  "tfc/toderici-2017-cvpr,islam2021/gdn,compressai/jpeg "
                  "(default: tfrnncomp.plotting.DEFAULT_REFERENCES; 'all' for "
                  "every curve found).")
flags.DEFINE_string("output_dir", None, "Where to write (default: "
                    "--results_dir).")
flags.DEFINE_string("dataset", "kodak", "Dataset name for the titles.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.results_dir:
    raise app.UsageError("--results_dir is required")
  if not os.path.isdir(FLAGS.results_dir):
    raise app.UsageError(f"--results_dir {FLAGS.results_dir} is not a folder")
  if FLAGS.reference_dir and not os.path.isdir(FLAGS.reference_dir):
    raise app.UsageError(f"--reference_dir {FLAGS.reference_dir} is not a "
                         f"folder")
  from tfrnncomp import plotting  # pylint: disable=g-import-not-at-top
  references = plotting.DEFAULT_REFERENCES
  if FLAGS.references is not None:
    references = None if FLAGS.references == ["all"] else FLAGS.references
  for path in plotting.write_report(
      FLAGS.results_dir, FLAGS.reference_dir or None, FLAGS.output_dir,
      references=references, dataset=FLAGS.dataset):
    print(path)
  return 0


if __name__ == "__main__":
  cli.run(main)
