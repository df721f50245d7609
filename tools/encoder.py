r"""Encodes an image to a compressed file: a bitstream, or the original .npz.

  python tools/encoder.py --input_image=kodim23.png --output_codes=kodim23.rnc \
      --iteration=3
  python tools/encoder.py --input_image=kodim23.png --output_codes=kodim23.rnc \
      --bpp=0.25
  python tools/encoder.py --input_image=kodim23.png --output_codes=codes.npz \
      --iteration=15

The flags are those of tensorflow/models research/compression/image_encoder/
encoder.py, plus --bpp and --overwrite. The output format follows the name:

- a name ending in .npz gets the original release's code file, unchanged
  (`shape` and packed `codes`, which the original decoder.py reads, plus an
  `image_size` key; tfrnncomp/codes_io.py);
- any other name gets the progressive bitstream (tfrnncomp/bitstream.py):
  a header naming the codec and entropy model, then one chunk per iteration,
  range-coded with the model's entropy model (MODEL/entropy/, trained by
  tools/train_entropy.py) where that is smaller, else raw bits. Cut after any
  chunk, it still decodes (to fewer iterations). Without an entropy model the
  chunks are raw (iterations * bits / 256 bpp plus the header).

The rate: --iteration=k codes k+1 iterations (each adds bits/256 bpp before
entropy coding: 1/8 bpp with the paper's 32 bits per 16x16 block); or
--bpp=B codes the most iterations (up to 16) whose file has at most B bits per
pixel of the input image (file bytes * 8 / pixels).

--search_steps=N (recurrent models) searches each iteration's codes against
the decoder, N steps of gradient-guided bit flips kept only where decoding
shows the error fell (tfrnncomp/code_search.py): the same stream format and
decoder, a better image for the same iteration count, at 7-17% more bits
(on Kodak, 4 steps: BD-rate -7.8% in PSNR, -0.3% in MS-SSIM), encoding
12-15 times slower with 4 steps (README, "Code search"):

  python tools/encoder.py --input_image=kodim23.png --output_codes=k.rnc \
      --bpp=0.25 --search_steps=4

An Akbari et al. 2020 model (config.json "system": "akbari2020"; ICME 2020,
tfrnncomp/models/akbari2020.py) is variable-rate instead of iterative:

  python tools/encoder.py --input_image=kodim23.png --output_codes=k.rnc \
      --model=savedmodels/akbari2020 --bits_per_channel=4
  python tools/encoder.py --input_image=kodim23.png --output_codes=k.rnc \
      --model=savedmodels/akbari2020 --bpp=0.5 --enhancement_quality=40

--bits_per_channel=B (1 to 8, default 8) quantizes its code map with B bits
per channel (--iteration is an error for it); --bpp instead picks the largest
B whose file fits. --enhancement_quality=Q adds the residual coded by HEVC at
quality Q (0 to 100) as an enhancement layer (the paper's BPG layer); "none",
the default, adds none. The output is always a bitstream (format version 2,
see tfrnncomp/bitstream.py; an .npz name is an error) recording the system,
so tools/decoder.py picks the right decoder. Any image Pillow reads is
accepted and converted to 8-bit RGB (see tfrnncomp/image_io.py). Prints one
line: the output file, the iterations, the nominal bpp (iterations * bits /
256) and the bpp of the file. Errors print one line "encoder.py: error: ..."
and exit non-zero; nothing is written then. The output goes to a temporary
file (nameless on Linux) renamed into place when complete, so an
interrupted run (Ctrl-C: exit 130; even kill -9) never leaves a partial file.
"""

import os
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
# 3, not 2: TF 2.14 logs cuDNN/cuFFT/cuBLAS "factory already registered" errors
# at import even on CPU, which would bury the one-line error messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from tfrnncomp import cli

DEFAULT_MODEL = os.path.join(ROOT, "savedmodels", "residual_gru")
MAX_ITERATION = 15

FLAGS = flags.FLAGS
flags.DEFINE_string("input_image", None, "Image to encode (required). Any "
                    "format Pillow reads (PNG, JPEG, TIFF, ...); converted to "
                    "8-bit RGB with EXIF orientation applied and alpha over "
                    "white.")
flags.DEFINE_integer("iteration", MAX_ITERATION, "Quality level, 0 to 15: "
                     "codes iteration+1 iterations, each adding bits/256 bpp "
                     "before entropy coding (1/8 bpp for the 32-bit models).")
flags.DEFINE_float("bpp", None, "Instead of --iteration: a target rate; codes "
                   "the most iterations (akbari2020 models: the largest "
                   "--bits_per_channel) whose file has at most this many bits "
                   "per pixel.")
flags.DEFINE_string("output_codes", None, "File to write (required): the "
                    "original .npz code file if the name ends in .npz, else a "
                    "bitstream. Its directory must exist.")
flags.DEFINE_string("model", DEFAULT_MODEL, "Codec SavedModel directory, as "
                    "written by tfrnncomp.export (a recurrent or an akbari2020 "
                    "model: its config.json says which).")
flags.DEFINE_boolean("overwrite", False, "Replace --output_codes if it "
                     "exists.")
flags.DEFINE_enum("entropy_coding", "auto", list(cli.ENTROPY_CODING),
                  "Bitstreams of recurrent models with an entropy model: "
                  "'auto' range-codes each iteration when that is smaller "
                  "than its raw bits; 'always' range-codes every iteration; "
                  "'off' stores raw bits and skips the (slow) entropy model.")
flags.DEFINE_integer("bits_per_channel", None, "akbari2020 models only: B, "
                     "the bits per code map channel, 1 to 8 (default 8; or "
                     "--bpp).")
flags.DEFINE_string("enhancement_quality", "none", "akbari2020 models only: "
                    "HEVC quality (0 to 100) of the enhancement layer, or "
                    "'none' for none.")
flags.DEFINE_integer("search_steps", 0, "Recurrent models only: search each "
                     "iteration's codes against the decoder for this many "
                     f"steps (0 to {cli.MAX_SEARCH_STEPS}; "
                     "tfrnncomp/code_search.py): better images at the same "
                     "bits, any decoder reads them; 4 encodes 12-15x "
                     "slower. 0: the encoder's codes.")

DEFAULT_BITS_PER_CHANNEL = 8


def _variable_rate(system):
  """The encode_file arguments of an akbari2020 model, from the flags."""
  if FLAGS["iteration"].present:
    raise app.UsageError(f"--iteration is for the recurrent systems; --model "
                         f"{FLAGS.model} is {system}: give --bits_per_channel "
                         f"(1 to {cli.MAX_BITS_PER_CHANNEL}) or --bpp")
  bits = FLAGS.bits_per_channel
  if FLAGS.bpp is not None:
    if bits is not None:
      raise app.UsageError("give --bits_per_channel or --bpp, not both")
    if not FLAGS.bpp > 0:
      raise app.UsageError(f"--bpp must be positive, got {FLAGS.bpp}")
  elif bits is None:
    bits = DEFAULT_BITS_PER_CHANNEL
  if bits is not None and not 1 <= bits <= cli.MAX_BITS_PER_CHANNEL:
    raise app.UsageError(f"--bits_per_channel must be between 1 and "
                         f"{cli.MAX_BITS_PER_CHANNEL}, got {bits}")
  quality = FLAGS.enhancement_quality.strip().lower()
  if quality == "none":
    quality = None
  else:
    try:
      quality = int(quality)
    except ValueError:
      quality = -1
    if not 0 <= quality <= 100:
      raise app.UsageError(f"--enhancement_quality must be 'none' or between "
                           f"0 and 100, got {FLAGS.enhancement_quality!r}")
  return {"bpp": FLAGS.bpp, "bits_per_channel": bits,
          "enhancement_quality": quality}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("input_image", "output_codes"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")
  if not 0 <= FLAGS.search_steps <= cli.MAX_SEARCH_STEPS:
    raise app.UsageError(f"--search_steps must be between 0 and "
                         f"{cli.MAX_SEARCH_STEPS}, got {FLAGS.search_steps}")
  system = cli.model_system(FLAGS.model)  # Reads config.json only.
  if system == cli.VARIABLE_RATE_SYSTEM:
    if FLAGS["search_steps"].present and FLAGS.search_steps:
      raise app.UsageError(f"--search_steps is for recurrent models; --model "
                           f"{FLAGS.model} is {system}")
    if FLAGS["entropy_coding"].present:
      raise app.UsageError(f"--entropy_coding is for recurrent models; "
                           f"--model {FLAGS.model} is {system}, whose code "
                           f"map is always range coded")
    result = cli.encode_file(FLAGS.model, FLAGS.input_image,
                             FLAGS.output_codes, overwrite=FLAGS.overwrite,
                             **_variable_rate(system))
    print(result.describe())
    return 0
  for name in ("bits_per_channel", "enhancement_quality"):
    if FLAGS[name].present:
      raise app.UsageError(f"--{name} is for akbari2020 models; --model "
                           f"{FLAGS.model} is {system}")
  if not 0 <= FLAGS.iteration <= MAX_ITERATION:
    raise app.UsageError(f"--iteration must be between 0 and {MAX_ITERATION}, "
                         f"got {FLAGS.iteration}")
  if FLAGS.bpp is not None:
    if FLAGS["iteration"].present:
      raise app.UsageError("give --iteration or --bpp, not both")
    if not FLAGS.bpp > 0:
      raise app.UsageError(f"--bpp must be positive, got {FLAGS.bpp}")
    iterations = None
  else:
    iterations = FLAGS.iteration + 1
  result = cli.encode_file(FLAGS.model, FLAGS.input_image, FLAGS.output_codes,
                           iterations, overwrite=FLAGS.overwrite, bpp=FLAGS.bpp,
                           entropy_coding=FLAGS.entropy_coding,
                           search_steps=FLAGS.search_steps)
  print(result.describe())
  return 0


if __name__ == "__main__":
  cli.run(main)
