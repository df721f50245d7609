r"""Measures spatially adaptive bit allocation (Johnston 2018) on Kodak.

  python tools/measure_block_allocation.py --model savedmodels/residual_gru \
      --images 8 --criterion mse --targets 30,32,34,36 \
      --output_json ~/block_allocation_mse.json

Runs the recurrent codec of --model (its Keras network, rebuilt from the
SavedModel's config and weights) on the first --images images of --images_dir
for --iterations iterations, once plainly and once per target with the rule
of tfrnncomp/block_allocation.py: a 16 x 16 block stops getting codes (and
keeps its pixels) once its error is below the target. For each run it prints
the mean bpp (raw codes, plus the per-block iteration counts for the
adaptive runs), PSNR and MS-SSIM after each iteration, and the BD-rate of
each adaptive curve against the plain one over iterations 1..T (MS-SSIM in
dB). No entropy coding is involved: it measures what the rule would buy
before the bitstream and the entropy model carry it.
"""

import datetime
import json
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np

from tfrnncomp import block_allocation
from tfrnncomp import cli
from tfrnncomp import data as data_lib
from tfrnncomp import errors
from tfrnncomp import export as export_lib
from tfrnncomp import image_io
from tfrnncomp import metrics
from tfrnncomp import models
from tfrnncomp import plotting

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(ROOT, "savedmodels", "residual_gru"),
                    "Recurrent codec SavedModel directory (from "
                    "tools/export.py).")
flags.DEFINE_string("images_dir", os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data", "kodak")), "Test images.")
flags.DEFINE_integer("images", 8, "How many images (sorted by name).")
flags.DEFINE_integer("iterations", 16, "Iterations T.")
flags.DEFINE_enum("criterion", "mse", list(block_allocation.CRITERIA),
                  "Block error: mse (targets are block PSNRs in dB) or ssim "
                  "(variance-normalized error; targets are its values).")
flags.DEFINE_list("targets", ["30", "32", "34", "36"], "Quality targets.")
flags.DEFINE_string("output_json", None, "Where to write the results.")


def _load(directory):
  model = export_lib.load_network(directory)
  if not models.is_iterative(model.config):
    raise errors.ModelError(f"{directory} is not a recurrent codec")
  return model


def _curve(runs, images):
  """Mean bpp, PSNR, MS-SSIM, active fraction per iteration."""
  out = {"bpp": [], "psnr": [], "ms_ssim": [], "active": []}
  for t in range(len(runs[0]["bpp"])):
    out["bpp"].append(float(np.mean([r["bpp"][t] for r in runs])))
    out["psnr"].append(float(np.mean(
        [metrics.psnr(i, r["x_hat"][t]) for i, r in zip(images, runs)])))
    out["ms_ssim"].append(float(np.mean(
        [metrics.ms_ssim(i, r["x_hat"][t]) for i, r in zip(images, runs)])))
    out["active"].append(float(np.mean([r["active"][t] for r in runs])))
  return out


def _bd(plain, curve):
  db = lambda values: [metrics.ms_ssim_db(v) for v in values]
  return {"psnr": plotting.bd_rate(plain["bpp"], plain["psnr"], curve["bpp"],
                                   curve["psnr"]),
          "ms_ssim": plotting.bd_rate(plain["bpp"], db(plain["ms_ssim"]),
                                      curve["bpp"], db(curve["ms_ssim"]))}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.iterations < 1:
    raise app.UsageError("--iterations must be >= 1")
  try:
    targets = [float(t) for t in FLAGS.targets]
    for target in targets:
      block_allocation.threshold(FLAGS.criterion, target)
  except ValueError as error:
    raise app.UsageError(f"--targets: {error}")
  model = _load(FLAGS.model)
  paths = data_lib.list_images(FLAGS.images_dir)[:FLAGS.images]
  if not paths:
    raise errors.InputError(f"no images in {FLAGS.images_dir}")
  images = [image_io.read_image(p) for p in paths]
  curves = {}
  for target in [None] + targets:
    runs = [block_allocation.run(model, image, FLAGS.iterations,
                                 FLAGS.criterion, target) for image in images]
    curves[target] = _curve(runs, images)
  plain = curves[None]
  results = []
  for target, curve in curves.items():
    name = "plain" if target is None else f"{FLAGS.criterion} {target:g}"
    entry = {"target": target, **curve}
    line = f"{name:>10}: " + "  ".join(
        f"t{t + 1} {curve['bpp'][t]:.3f}/{curve['psnr'][t]:.2f}/"
        f"{curve['ms_ssim'][t]:.4f}" for t in range(FLAGS.iterations)
        if t + 1 in (1, 2, 4, 8, 12, 16) or t + 1 == FLAGS.iterations)
    if target is not None:
      entry["bd_rate_vs_plain"] = _bd(plain, curve)
      line += (f"  BD-rate PSNR {entry['bd_rate_vs_plain']['psnr']:+.1f}% "
               f"MS-SSIM {entry['bd_rate_vs_plain']['ms_ssim']:+.1f}%")
    print(line, flush=True)
    results.append(entry)
  if FLAGS.output_json:
    with open(FLAGS.output_json, "w") as f:
      json.dump({"description": "Spatially adaptive bit allocation at "
                                "inference: bpp (raw codes + count map) / "
                                "PSNR / MS-SSIM per iteration",
                 "command": " ".join(sys.argv),
                 "date": datetime.datetime.now().isoformat(timespec="seconds"),
                 "model": FLAGS.model, "criterion": FLAGS.criterion,
                 "images": [os.path.basename(p) for p in paths],
                 "curves": results}, f, indent=1)
  return 0


if __name__ == "__main__":
  cli.run(main)
