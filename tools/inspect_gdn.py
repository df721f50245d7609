r"""How nonlinear a trained model's GDN / IGDN layers are, on real images.

  python tools/inspect_gdn.py --model savedmodels/akbari2020
  python tools/inspect_gdn.py --model savedmodels/islam2021 --iterations 16

Runs the Keras network of --model (rebuilt from the SavedModel's config and
weights) on the first --images images of --images_dir and prints, for every
GDN and IGDN layer, the distribution of its gain relative to linear

    g = ((beta_i + sum_j gamma_ji |x_j|^alpha) / beta_i)^epsilon

over all pixels, channels and calls (tfrnncomp/gdn_regime.py). g = 1 means
the layer only scales its input by a fixed per-channel factor: a network
whose GDNs stay near g = 1 is a linear transform. Akbari 2020 codecs run
with --bits_per_channel, recurrent codecs for --iterations.
"""

import dataclasses
import json
import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli
from tfrnncomp import data as data_lib
from tfrnncomp import errors
from tfrnncomp import export as export_lib
from tfrnncomp import gdn_regime
from tfrnncomp import image_io
from tfrnncomp import models
from tfrnncomp.models import toderici2017

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(ROOT, "savedmodels", "akbari2020"),
                    "Codec SavedModel directory holding GDN layers (systems "
                    "islam2021 and akbari2020).")
flags.DEFINE_string("images_dir", os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data", "kodak")), "Images to run.")
flags.DEFINE_integer("images", 4, "How many images (sorted by name).")
flags.DEFINE_integer("iterations", 16, "Recurrent codecs: iterations to run.")
flags.DEFINE_integer("bits_per_channel", 8, "Akbari 2020: bits B per "
                     "code map channel.")
flags.DEFINE_string("output_json", None, "Also write the results here.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.images < 1:
    raise app.UsageError("--images must be >= 1")
  if FLAGS.iterations < 1:
    raise app.UsageError("--iterations must be >= 1")
  if not 1 <= FLAGS.bits_per_channel <= 8:
    raise app.UsageError("--bits_per_channel must be in [1, 8]")
  model = export_lib.load_network(FLAGS.model)
  if not gdn_regime.gdn_layers(model):
    raise errors.ModelError(f"{FLAGS.model} has no GDN layers (system "
                            f"{model.config.system})")
  if models.is_iterative(model.config):
    call_kwargs = {"iterations": FLAGS.iterations}
  else:
    call_kwargs = {"bits": (FLAGS.bits_per_channel,)}
  paths = data_lib.list_images(FLAGS.images_dir)[:FLAGS.images]
  if not paths:
    raise errors.InputError(f"no images in {FLAGS.images_dir}")
  # The networks' training path takes sizes in multiples of 16: crop.
  images = []
  for path in paths:
    image = image_io.read_image(path)
    height, width = (s - s % toderici2017.BLOCK for s in image.shape[:2])
    if not height or not width:
      raise errors.InputError(f"{path} is smaller than 16 x 16 pixels")
    images.append(image[:height, :width])
  results = gdn_regime.measure(model, images, **call_kwargs)
  print(f"{FLAGS.model} ({model.config.system}), {len(images)} images from "
        f"{FLAGS.images_dir}, {call_kwargs}:\n")
  print(gdn_regime.format_table(results))
  if FLAGS.output_json:
    with open(FLAGS.output_json, "w") as f:
      json.dump({"command": " ".join(sys.argv), "model": FLAGS.model,
                 "images": [os.path.basename(p) for p in paths],
                 "layers": [dataclasses.asdict(r) for r in results]},
                f, indent=1)
  return 0


if __name__ == "__main__":
  cli.run(main)
