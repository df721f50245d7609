r"""Trains a codec (any system) on random patches of a folder of images.

Examples (the shipped residual GRU model; Islam et al. 2021; Akbari et al.
2020 with its variable-rate objective over B = 2, 4, 8):

  python tools/train.py --preset residual_gru_half \
      --data_dir ../shared/data/train --train_dir ~/runs/residual_gru_half
  python tools/train.py --preset islam2021 \
      --data_dir ../shared/data/train --train_dir ~/runs/islam2021
  python tools/train.py --preset akbari2020 --bits_per_channel 2,4,8 \
      --data_dir ../shared/data/train --train_dir ~/runs/akbari2020

The preset's system (config.json's "system") decides the model and the loss:
L1 on the residuals of every iteration for the recurrent codecs (Toderici
2017, Islam 2021), L2 + MS-SSIM summed over --bits_per_channel for Akbari
2020. --patch_size and --batch_size default to 32 / 32 for the recurrent
codecs and 256 / 8 for Akbari 2020 (5 MS-SSIM scales need >= 176 pixels).

--rate_weight adds the codes' cost under a trained entropy model to a
recurrent codec's loss (lambda_R times the bits per bit of each iteration,
weighted like its distortion; tfrnncomp.training): the codec learns codes
that its entropy coder predicts better. The entropy model (frozen) comes
from --entropy_model, by default the one of --init_from; retrain it on the
new codes afterwards with tools/train_entropy.py. E.g.

  python tools/train.py --preset residual_gru_half --rate_weight 0.005 \
      --init_from savedmodels/residual_gru --data_dir ../shared/data/train \
      --train_dir ~/runs/residual_gru_rate

--rate_target R caps every iteration's bits per bit instead of pricing
them: each iteration's lambda gains a multiplier that grows while its codes
cost more than R under the entropy model and falls back to 0 once they cost
less (tfrnncomp.training, "Rate ceiling").

Re-running the same command resumes from the latest checkpoint in
--train_dir (the learning-rate warm-up restarts). --init_from starts a new
run from an exported SavedModel. A step whose loss or gradients are not
finite is skipped (no weight changes) and counted in the progress line.
Progress lines show steps/s and the loss; TensorBoard logs are written to
--train_dir/logs.
"""

import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
from tfrnncomp import errors

FLAGS = flags.FLAGS
flags.DEFINE_string("preset", "residual_gru_half", "Network preset (see "
                    "tfrnncomp.config.PRESETS).")
flags.DEFINE_string("cell", None, "Override the preset's cell: lstm, gru, "
                    "residual_gru or associative_lstm.")
flags.DEFINE_string("reconstruction", None, "Override the reconstruction: "
                    "one_shot, additive or residual_scaling.")
flags.DEFINE_float("width", None, "Override the width multiplier.")
flags.DEFINE_enum("analysis", None, ["conv", "gdn"], "Override the recurrent "
                  "codec's analysis/synthesis blocks (gdn: Islam et al. 2021).")
flags.DEFINE_enum("compute_dtype", None, ["float32", "bfloat16"], "Recurrent "
                  "codecs: precision of the convolutions (float32 weights "
                  "either way); bfloat16 is faster on CPUs with AVX512-BF16 "
                  "or AMX. A run may resume in another precision.")
flags.DEFINE_integer("priming", None, "Recurrent codecs: hidden-state "
                     "priming (Johnston et al. 2018): the first iteration's "
                     "encoder and decoder run this many extra steps on the "
                     "same input (0..8; same bits, more computation). Saved "
                     "in the model's config.")
flags.DEFINE_integer("filters", None, "Akbari 2020: override the hidden width.")
flags.DEFINE_integer("code_channels", None, "Akbari 2020: override C, the "
                     "code map's channels.")
flags.DEFINE_float("igdn_max_gain", None, "Akbari 2020: bound the gain of each "
                   "decoder IGDN to this value (0: unbounded, the paper's).")
flags.DEFINE_enum("decoder_input", None, ["dequantized", "levels"], "Akbari "
                  "2020: what the decoder reads, the dequantized code map "
                  "(the paper's) or its levels on [-1, 1] (a fixed scale).")
flags.DEFINE_string("data_dir", None, "Folder of training images.")
flags.DEFINE_string("train_dir", None, "Checkpoints, config and logs.")
flags.DEFINE_string("init_from", None, "SavedModel to start a new run from. "
                    "Variables are matched by name: a network with more "
                    "variables (e.g. islam2021_residual_gru_half from "
                    "savedmodels/residual_gru) keeps the extra ones at their "
                    "initial values.")
flags.DEFINE_integer("steps", 100000, "Total training steps.")
flags.DEFINE_integer("batch_size", None, "Patches per step (all replicas); "
                     "default 32 (recurrent) or 8 (Akbari 2020).")
flags.DEFINE_integer("patch_size", None, "Patch side in pixels (multiple of "
                     "16); default 32 (recurrent) or 256 (Akbari 2020).")
flags.DEFINE_integer("iterations", 16, "Iterations unrolled per step "
                     "(recurrent codecs).")
flags.DEFINE_float("rate_weight", 0., "Recurrent codecs: lambda_R of the "
                   "rate term, the mean bits per bit of the codes under the "
                   "entropy model of --entropy_model (0: no rate term).")
flags.DEFINE_float("rate_weight_ratio", 1., "With --rate_weight: iteration "
                   "t's lambda is rate_weight * rate_weight_ratio^(t-1) (< 1 "
                   "prices the late iterations' bits lower).")
flags.DEFINE_float("rate_target", 0., "Recurrent codecs: a ceiling on every "
                   "iteration's bits per bit under the entropy model, on the "
                   "training patches (0.85 on 96 x 96 patches gave about 0.7 on "
                   "whole images), kept by a multiplier "
                   "per iteration added to its lambda and raised while the "
                   "ceiling is exceeded (dual ascent; 0: none).")
flags.DEFINE_float("rate_target_step", 0.002, "With --rate_target: the dual "
                   "ascent's step, mu_t += step * (R_t - rate_target) after "
                   "each training step (mu_t >= 0).")
flags.DEFINE_integer("rate_target_from", 1, "With --rate_target: the first "
                     "iteration it applies to (e.g. 2 when the first "
                     "iteration's codes are cheap enough already).")
flags.DEFINE_string("entropy_model", None, "With --rate_weight or "
                    "--rate_target: a codec "
                    "directory holding entropy/, or an entropy model "
                    "directory; default --init_from's.")
flags.DEFINE_list("bits_per_channel", ["2", "4", "8"], "Akbari 2020: the bit "
                  "depths B whose losses are summed (the paper uses three).")
flags.DEFINE_float("mse_weight", 20., "Akbari 2020: weight of the L2 loss "
                   "(images in [0, 1]).")
flags.DEFINE_float("ms_ssim_weight", 1., "Akbari 2020: weight of 1 - MS-SSIM.")
flags.DEFINE_float("learning_rate", 5e-4, "Adam learning rate.")
flags.DEFINE_integer("warmup_steps", 200, "Linear warm-up steps.")
flags.DEFINE_integer("decay_steps", 0, "Cosine decay of the learning rate to 0 "
                     "over the last decay_steps of --steps (0: none). Finish "
                     "a run by resuming it with a larger --steps and this.")
flags.DEFINE_float("iteration_weight_ratio", 1.0, "Recurrent codecs: the loss "
                   "weighs iteration t by ratio^(t-1), normalized to a "
                   "mean of 1 (1: all alike, as in the paper; < 1: the early "
                   "iterations, i.e. the low rates, count more). The progress "
                   "line's loss stays the unweighted mean.")
flags.DEFINE_float("iteration_ms_ssim_weight", 0., "Recurrent codecs: lambda "
                   "of the MS-SSIM term in each iteration's loss, L1_t + "
                   "lambda (1 - MS-SSIM_t) (0: L1 only, as in the paper). "
                   "MS-SSIM uses the scales the patches hold (2 at 32 x 32, "
                   "3 at 64 x 64).")
flags.DEFINE_integer("candidates", 1, "Draw this many patches per kept one and "
                     "keep those PNG compresses worst (high entropy); 1 = off.")
flags.DEFINE_integer("seed", 0, "Patch sampling seed.")
flags.DEFINE_integer("log_every", 20, "Steps between progress lines.")
flags.DEFINE_float("checkpoint_every_secs", 600., "Seconds between checkpoints.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker"],
                  "tf.distribute strategy; multi_worker reads TF_CONFIG.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tfrnncomp import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfrnncomp import training
  for name in ("data_dir", "train_dir"):
    if not getattr(FLAGS, name):
      raise app.UsageError(f"--{name} is required")
  if not os.path.isdir(FLAGS.data_dir):
    raise app.UsageError(f"--data_dir {FLAGS.data_dir!r} is not a folder")
  overrides = {k: getattr(FLAGS, k)
               for k in ("cell", "reconstruction", "width", "analysis",
                         "compute_dtype", "priming", "filters",
                         "code_channels", "igdn_max_gain",
                         "decoder_input")
               if getattr(FLAGS, k) is not None}
  try:
    config = config_lib.resolve(FLAGS.preset, overrides)
    iterative = config.system != "akbari2020"
    patch_size = FLAGS.patch_size or (32 if iterative else 256)
    batch_size = FLAGS.batch_size or (32 if iterative else 8)
    if patch_size % 16:
      raise app.UsageError("--patch_size must be a multiple of 16")
    entropy_model = ""
    if FLAGS.rate_weight or FLAGS.rate_target:
      entropy_model = FLAGS.entropy_model or FLAGS.init_from
      if not entropy_model:
        raise app.UsageError("--rate_weight and --rate_target need "
                             "--entropy_model (or an --init_from with an "
                             "entropy model)")
      entropy_model = os.path.expanduser(entropy_model)
    elif FLAGS.entropy_model:
      raise app.UsageError("--entropy_model is only used with --rate_weight "
                           "or --rate_target")
    train_config = training.TrainConfig(
        steps=FLAGS.steps, batch_size=batch_size,
        patch_size=patch_size, iterations=FLAGS.iterations,
        learning_rate=FLAGS.learning_rate, warmup_steps=FLAGS.warmup_steps,
        decay_steps=FLAGS.decay_steps,
        candidates=FLAGS.candidates,
        iteration_weight_ratio=FLAGS.iteration_weight_ratio,
        iteration_ms_ssim_weight=FLAGS.iteration_ms_ssim_weight,
        rate_weight=FLAGS.rate_weight,
        rate_weight_ratio=FLAGS.rate_weight_ratio,
        rate_target=FLAGS.rate_target,
        rate_target_step=FLAGS.rate_target_step,
        rate_target_from=FLAGS.rate_target_from, entropy_model=entropy_model,
        seed=FLAGS.seed, log_every=FLAGS.log_every,
        checkpoint_every_secs=FLAGS.checkpoint_every_secs,
        bits_per_channel=tuple(int(b) for b in FLAGS.bits_per_channel),
        mse_weight=FLAGS.mse_weight, ms_ssim_weight=FLAGS.ms_ssim_weight)
    strategy = training.make_strategy(FLAGS.strategy)
    training.train(config, train_config, FLAGS.data_dir,
                   os.path.expanduser(FLAGS.train_dir), strategy=strategy,
                   init_from=FLAGS.init_from,
                   log=lambda line: print(line, flush=True))
  except (ValueError, FileNotFoundError, errors.TfrnncompError) as e:
    raise app.UsageError(str(e))
  return 0


if __name__ == "__main__":
  cli.run(main)
