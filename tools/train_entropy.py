r"""Trains the entropy model of a codec and saves it beside the codec.

One command, resumable (re-running it continues from the latest checkpoint
and reuses the cached codes):

  python tools/train_entropy.py --model savedmodels/residual_gru \
      --data_dir ../shared/data/train --train_dir ~/runs/entropy_residual_gru \
      --images 400 --steps 20000

1. Codes: one random --crop x --crop crop per training image (never Kodak),
   encoded by the codec to --iterations iterations, cached in
   --train_dir/codes.npz (keyed by the codec's weights hash; extended when
   --images grows; tfrnncomp/entropy/codes_dataset.py).
2. Training: Adam on the cross-entropy in bits per code bit
   (tfrnncomp/entropy/training.py), batches of --batch_size crops with all
   their iterations, --warmup_steps of warm-up and a cosine decay over the
   last --decay_steps; checkpoints in --train_dir/checkpoints. A new run can
   start from a saved entropy model (--init_from), e.g. when the codec was
   fine-tuned from one that has an entropy model:

     python tools/train_entropy.py --model ~/cand/fine_tuned \
         --init_from savedmodels/residual_gru --train_dir ~/runs/entropy_ft \
         --images 200 --steps 3000 --decay_steps 1500

   (--bit_groups G, with --init_from a model without groups: the same
   network plus the groups' weights, which start at 0.)
3. Export: the model, as a SavedModel with its range coder, to
   MODEL/entropy/ (tfrnncomp/entropy/saved_model.py), where tools/encoder.py
   and tools/decoder.py find it; prints its identifier and the held-out
   bits per bit of each iteration.
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
from tfrnncomp.entropy import codes_dataset

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(ROOT, "savedmodels", "residual_gru"),
                    "Codec SavedModel directory; the entropy model is saved "
                    "to its entropy/ subdirectory.")
flags.DEFINE_string("data_dir", os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data", "train")),
                    "Folder of training images (not Kodak).")
flags.DEFINE_string("train_dir", None, "Codes cache and checkpoints "
                    "(required).")
flags.DEFINE_integer("images", 400, "Training crops (one per image).")
flags.DEFINE_integer("crop", 256, "Crop side in pixels (multiple of 16).")
flags.DEFINE_integer("iterations", 16, "Codec iterations per crop.")
flags.DEFINE_integer("steps", 20000, "Total training steps.")
flags.DEFINE_integer("batch_size", 8, "Crops per step.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("warmup_steps", 0, "Linear warm-up of the learning rate "
                     "over the first steps of this run.")
flags.DEFINE_integer("decay_steps", 0, "Cosine decay of the learning rate to "
                     "0 over the last steps of --steps (0: constant).")
flags.DEFINE_string("init_from", None, "Start a new run from a saved entropy "
                    "model: a codec directory with an entropy/ subdirectory, "
                    "or an entropy directory. Ignored when --train_dir holds "
                    "a checkpoint to resume.")
flags.DEFINE_integer("filters", 32, "Channels of the entropy network.")
flags.DEFINE_integer("bit_groups", 1, "Code each position's bits in this "
                     "many groups, each conditioned on the ones before "
                     "(must divide the codec's bits; 1: all at once). More "
                     "groups, fewer bits, more range-coder calls when "
                     "decoding (tfrnncomp/entropy/pixelrnn.py). With "
                     "--init_from a model without groups, the groups' "
                     "weights start at 0.")
flags.DEFINE_integer("search_steps", 0, "Train on the codes of the searching "
                     "encoder (tools/encoder.py --search_steps; "
                     "tfrnncomp/code_search.py), this many steps; generating "
                     "them takes about 1 + this many times as long.")
flags.DEFINE_float("validation_fraction", 0.1, "Crops held out.")
flags.DEFINE_integer("seed", 0, "Image order, crops and batches.")
flags.DEFINE_integer("log_every", 50, "Steps between progress lines.")
flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.")
flags.DEFINE_boolean("export", True, "Save the model to MODEL/entropy/ at "
                     "the end.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.train_dir:
    raise app.UsageError("--train_dir is required")
  if not os.path.isdir(FLAGS.data_dir):
    raise app.UsageError(f"--data_dir {FLAGS.data_dir} is not a folder")
  if FLAGS.crop % 16 or FLAGS.crop < 16:
    raise app.UsageError("--crop must be a positive multiple of 16")
  for name in ("images", "iterations", "steps", "batch_size", "filters",
               "bit_groups"):
    if FLAGS[name].value < 1:
      raise app.UsageError(f"--{name} must be positive")
  for name in ("warmup_steps", "decay_steps", "search_steps"):
    if FLAGS[name].value < 0:
      raise app.UsageError(f"--{name} must not be negative")
  if FLAGS.decay_steps > FLAGS.steps:
    raise app.UsageError("--decay_steps must not exceed --steps")
  init_from = None
  if FLAGS.init_from:
    init_from = os.path.expanduser(FLAGS.init_from)
    if os.path.isdir(os.path.join(init_from, "entropy")):
      init_from = os.path.join(init_from, "entropy")
    if not os.path.isfile(os.path.join(init_from, "entropy.json")):
      raise app.UsageError(f"--init_from {FLAGS.init_from} is neither an "
                           f"entropy model nor a codec directory with one")
  codes_dataset.training_images(FLAGS.data_dir)  # Refuses Kodak at once.
  import json  # pylint: disable=g-import-not-at-top
  from tfrnncomp import export as export_lib
  from tfrnncomp.entropy import pixelrnn
  from tfrnncomp.entropy import saved_model
  from tfrnncomp.entropy import training
  log = lambda line: print(line, flush=True)
  train_dir = os.path.expanduser(FLAGS.train_dir)
  os.makedirs(train_dir, exist_ok=True)
  codec = cli.load_codec(FLAGS.model)
  log(f"codec {FLAGS.model}: {codec.describe_identity()}, {codec.bits} bits")
  try:  # Before the codes: a wrong flag costs no encoding.
    config = pixelrnn.EntropyConfig(bits=codec.bits, filters=FLAGS.filters,
                                    bit_groups=FLAGS.bit_groups)
  except ValueError as e:
    raise app.UsageError(f"--bit_groups: {e}") from None

  codes = codes_dataset.generate_codes(
      codec, FLAGS.data_dir, train_dir, FLAGS.images, crop=FLAGS.crop,
      iterations=FLAGS.iterations, seed=FLAGS.seed, log=log,
      search_steps=FLAGS.search_steps)
  train_codes, validation_codes = codes_dataset.split(
      codes, FLAGS.validation_fraction)
  log(f"codes: {len(train_codes)} training and {len(validation_codes)} "
      f"held-out crops of {codes.shape[1:]} (T, h, w, K)")

  config_path = os.path.join(train_dir, "entropy_config.json")
  if os.path.exists(config_path):
    with open(config_path) as f:
      saved = pixelrnn.EntropyConfig.from_dict(json.load(f))
    if saved != config:
      raise app.UsageError(f"{train_dir} holds a run of another entropy "
                           f"config ({config_path}); use a new --train_dir")
  else:
    with open(config_path, "w") as f:
      f.write(config.to_json())
  model = pixelrnn.BinaryPixelRNN(config).build_variables()
  trainer = training.Trainer(model, train_dir, FLAGS.learning_rate,
                             warmup_steps=FLAGS.warmup_steps,
                             decay_steps=FLAGS.decay_steps)
  resumed = trainer.restore()
  if resumed:
    log(f"resumed from {resumed} (step {int(trainer.step.numpy())})")
  elif init_from:
    try:
      kept = export_lib.restore_weights(model, init_from)
    except ValueError as e:
      raise app.UsageError(f"--init_from: {e}") from None
    kept = [name for name in kept if name.split(":")[0] != "intra"]
    if kept:
      raise app.UsageError(f"--init_from {FLAGS.init_from}: its entropy "
                           f"model lacks {', '.join(kept)}; configs differ")
    before = trainer.evaluate(validation_codes)
    log(f"initialized from {init_from}: held-out {before.mean():.4f} bits "
        f"per bit before training")
  trainer.fit(train_codes, FLAGS.steps, FLAGS.batch_size, seed=FLAGS.seed,
              log_every=FLAGS.log_every,
              checkpoint_every=FLAGS.checkpoint_every, log=log)
  per_iteration = trainer.evaluate(validation_codes)
  log("held-out bits per bit by iteration: " +
      " ".join(f"{b:.3f}" for b in per_iteration) +
      f" (mean {per_iteration.mean():.4f})")
  if FLAGS.export:
    info = saved_model.save(model, FLAGS.model, codec.identity, training={
        "steps": int(trainer.step.numpy()), "crops": int(len(train_codes)),
        "crop": FLAGS.crop, "iterations": FLAGS.iterations,
        "batch_size": FLAGS.batch_size, "learning_rate": FLAGS.learning_rate,
        "warmup_steps": FLAGS.warmup_steps, "decay_steps": FLAGS.decay_steps,
        "init_from": FLAGS.init_from, "search_steps": FLAGS.search_steps,
        "held_out_bits_per_bit": [round(float(b), 5) for b in per_iteration],
        "data_dir": os.path.basename(os.path.normpath(FLAGS.data_dir))})
    log(f"saved {saved_model.entropy_directory(FLAGS.model)}: {info['name']} "
        f"(weights {info['weights_sha256'][:12]})")
  return 0


if __name__ == "__main__":
  cli.run(main)
