r"""Rate-distortion evaluation of learned models and standard codecs.

Codes every test image at every point of each codec's rate sweep, measures
bpp (bytes actually written), PSNR, MS-SSIM and PSNR-HVS on the decoded 8-bit
RGB image, and writes one JSON per codec in CompressAI's layout to
--output_dir (see tfrnncomp/evaluation.py).

Examples:

  # The standard codecs on Kodak (built offline from ../shared/data/kodak):
  python tools/evaluate.py --codecs jpeg,webp,jpeg2000,avif,hevc,jpegxl \
      --dataset kodak --output_dir results/kodak --plot

  # A learned model on a folder of images:
  python tools/evaluate.py --models savedmodels/residual_gru_half \
      --image_dir ~/photos --output_dir results/photos

  # The same model encoding with the code search (tfrnncomp/code_search.py),
  # written as residual_gru+search4.json:
  python tools/evaluate.py --models savedmodels/residual_gru --search_steps 4 \
      --dataset kodak --output_dir results/kodak

Per-image results are cached in --output_dir/cache/CODEC/IMAGE.json; run the
same command again to resume an interrupted run. --plot also writes psnr.png,
ms_ssim.png, bd_rate.md and a side-by-side crop near 0.25 bpp.
"""

import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli  # pylint: disable=g-import-not-at-top

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STANDARD = "jpeg, webp, jpeg2000, avif, hevc, jpegxl"

FLAGS = flags.FLAGS
flags.DEFINE_list("models", [], "Learned codecs: comma-separated SavedModel "
                  "directories written by tools/export.py (the sweep is the "
                  "iteration count 1..T).")
flags.DEFINE_list("codecs", [], f"Standard codecs, comma-separated: "
                  f"{_STANDARD}. One whose library is missing is skipped with "
                  f"a message.")
flags.DEFINE_multi_string("qualities", [], "Override a sweep: CODEC=Q1,Q2,... "
                          "(e.g. jpeg=5,10 or jpeg2000=0.25,0.5 bpp or "
                          "residual_gru=1,2,4,8). Repeatable.")
flags.DEFINE_string("dataset", None, "TFDS test set: 'kodak' (built offline "
                    "on first use, see --kodak_dir).")
flags.DEFINE_string("image_dir", None, "A folder of test images instead of "
                    "--dataset.")
flags.DEFINE_string("data_dir", None, "TFDS data directory (default: TFDS' "
                    "~/tensorflow_datasets).")
flags.DEFINE_string("kodak_dir", None, "Folder of kodim01..24.png to build "
                    "'kodak' from (default: $TFRNNCOMP_KODAK_DIR, else "
                    "../shared/data/kodak beside the repository).")
flags.DEFINE_integer("max_images", None, "Use only the first N images (quick "
                     "checks).")
flags.DEFINE_string("output_dir", None, "Where to write CODEC.json, the cache "
                    "and the figures, e.g. results/kodak.")
flags.DEFINE_boolean("cache", True, "Reuse and write per-image results in "
                     "--output_dir/cache.")
flags.DEFINE_boolean("progress", True, "Show a progress bar on stderr.")
flags.DEFINE_boolean("plot", False, "Also write psnr.png, ms_ssim.png, "
                     "bd_rate.md (all JSONs in --output_dir with published "
                     "curves from --reference_dir) and crops.png.")
flags.DEFINE_string("reference_dir", os.path.join(
    os.path.dirname(_ROOT), "shared", "reference", "kodak"),
                    "Published results for --plot ('' for none).")
flags.DEFINE_string("crop_image", "kodim23.png", "Image (file name) of the "
                    "crop comparison for --plot.")
flags.DEFINE_list("crop_box", ["110", "390", "192", "256"], "Crop as "
                  "top,left,height,width.")
flags.DEFINE_integer("enhancement_quality", None, "akbari2020 models only: "
                     "add the HEVC enhancement layer of this quality (0..100) "
                     "at every point; the codec is named MODEL+hevcQ.")
flags.DEFINE_float("crop_bpp", 0.25, "Target bpp of the crop comparison.")
flags.DEFINE_integer("search_steps", 0, "Recurrent --models only: encode with "
                     "the code search, this many steps per iteration "
                     "(tfrnncomp/code_search.py; tools/encoder.py "
                     "--search_steps); the codec is named MODEL+searchN.")


def _parse_qualities(entries):
  overrides = {}
  for entry in entries:
    name, sep, values = entry.partition("=")
    if not sep or not values:
      raise app.UsageError(f"--qualities {entry!r} is not CODEC=Q1,Q2,...")
    try:
      overrides[name.strip()] = [float(v) if "." in v else int(v)
                                 for v in values.split(",")]
    except ValueError:
      raise app.UsageError(f"--qualities {entry!r}: qualities must be "
                           f"numbers") from None
  return overrides


def _make_codecs(overrides):
  from tfrnncomp import codecs  # pylint: disable=g-import-not-at-top
  made = []
  for name in FLAGS.codecs:
    name = name.strip().lower()
    reason = codecs.unavailable_reason(name)  # InputError if unknown.
    if reason:
      print(f"skipping {name}: {reason}", file=sys.stderr)
      continue
    made.append(codecs.get_codec(name, overrides.pop(name, None)))
  for directory in FLAGS.models:
    name = os.path.basename(os.path.normpath(directory))
    made.append(codecs.LearnedCodec(directory, overrides.pop(name, None),
                                    FLAGS.enhancement_quality,
                                    FLAGS.search_steps))
  if overrides:
    raise app.UsageError(f"--qualities names no evaluated codec: "
                         f"{', '.join(overrides)}")
  return made


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.models and not FLAGS.codecs:
    raise app.UsageError("give --codecs and/or --models")
  if not FLAGS.output_dir:
    raise app.UsageError("--output_dir is required")
  if (FLAGS.dataset is None) == (FLAGS.image_dir is None):
    raise app.UsageError("give exactly one of --dataset and --image_dir")
  if FLAGS.image_dir is not None and not os.path.isdir(FLAGS.image_dir):
    raise app.UsageError(f"--image_dir {FLAGS.image_dir} is not a folder")
  for directory in FLAGS.models:
    if not os.path.isdir(directory):
      raise app.UsageError(f"--models: {directory} is not a folder")
  try:
    box = [int(v) for v in FLAGS.crop_box]
  except ValueError:
    box = []
  if len(box) != 4:
    raise app.UsageError("--crop_box needs 4 integers: top,left,height,width")

  from tfrnncomp import evaluation  # pylint: disable=g-import-not-at-top
  codec_list = _make_codecs(_parse_qualities(FLAGS.qualities))
  if not codec_list:
    raise app.UsageError("none of the codecs can run here")
  images = evaluation.load_images(
      dataset=FLAGS.dataset, image_dir=FLAGS.image_dir,
      data_dir=FLAGS.data_dir, manual_dir=FLAGS.kodak_dir,
      max_images=FLAGS.max_images)
  dataset = FLAGS.dataset or os.path.abspath(FLAGS.image_dir)
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  cache_dir = os.path.join(FLAGS.output_dir, "cache") if FLAGS.cache else None

  for codec in codec_list:
    progress = (evaluation.progress_bar(len(images), codec.name)
                if FLAGS.progress else None)
    per_image = evaluation.evaluate_codec(codec, images, cache_dir, progress)
    summary = evaluation.summarize(codec, per_image, dataset)
    path = os.path.join(FLAGS.output_dir, f"{codec.name}.json")
    evaluation.write_json(path, summary)
    print(f"{path}: {len(summary['results']['bpp'])} rate points on "
          f"{len(images)} images")

  if FLAGS.plot:
    from tfrnncomp import plotting  # pylint: disable=g-import-not-at-top
    for path in plotting.write_report(
        FLAGS.output_dir, FLAGS.reference_dir or None,
        dataset=os.path.basename(dataset)):
      print(path)
    crop_image = dict(images).get(FLAGS.crop_image)
    if crop_image is None:
      print(f"no crop figure: {FLAGS.crop_image} is not among the images",
            file=sys.stderr)
    else:
      path = os.path.join(FLAGS.output_dir, "crops.png")
      plotting.crop_comparison(
          codec_list, crop_image, path, box, FLAGS.crop_bpp,
          title=f"{FLAGS.crop_image}, closest point to {FLAGS.crop_bpp} bpp")
      print(path)
  return 0


if __name__ == "__main__":
  cli.run(main)
