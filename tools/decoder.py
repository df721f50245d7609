r"""Decodes a compressed file to PNGs, like the original release's decoder.py.

  python tools/decoder.py --input_codes=kodim23.rnc \
      --output_directory=/tmp/decoded --iteration=-1

The flags are those of tensorflow/models research/compression/image_encoder/
decoder.py (plus --overwrite), and so is the output: image_00.png,
image_01.png, ... in --output_directory, the reconstruction after each
iteration.

The input is recognized by its content, not its name: a bitstream of
tools/encoder.py (tfrnncomp/bitstream.py; also one cut after any iteration's
chunk, which decodes to the iterations it holds), or an .npz code file of
tools/encoder.py or of the original encoder (tfrnncomp/codes_io.py; the
original's decode to the padded size 16 * H/16 x 16 * W/16 since they do not
record the input size). A bitstream decodes only with the codec (and entropy
model) that made it: the header's codec name and weights hash must be
--model's.

A bitstream of an Akbari et al. 2020 model (the header's system
"akbari2020", tfrnncomp/models/akbari2020.py) decodes to one image,
image_00.png: its code map at the B bits per channel the stream records,
plus its HEVC enhancement layer if it has one (--iteration must stay -1).
The header names the system, so --model must be that akbari2020 model: a
model of another system, or other weights, is an error naming both.

Nothing is written if any image_XX.png to be written exists, unless
--overwrite. Errors (also a corrupt or truncated file, caught by the
bitstream's CRCs) print one line "decoder.py: error: ..." and exit non-zero;
no partial output is left.

Untrusted input. A code file names its model but never a path: the model is
always --model (a SavedModel runs its graph: use only models you trust),
and a file made by another model is refused. Any file, however malformed,
ends in decoded images or one line of error (tools/fuzz_decoder.py checks
this). A small file can declare a large image, and decoding takes time and
memory in proportion to it, so images over --max_pixels (after padding to
multiples of 16) are refused before anything is decoded.
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
from tfrnncomp import codes_io

DEFAULT_MODEL = os.path.join(ROOT, "savedmodels", "residual_gru")

FLAGS = flags.FLAGS
flags.DEFINE_string("input_codes", None, "Bitstream or .npz code file "
                    "written by tools/encoder.py, or an .npz of the original "
                    "encoder (required).")
flags.DEFINE_integer("iteration", -1, "Last iteration to decode: k writes "
                     "image_00.png ... image_kk.png (k+1 images, an error if "
                     "the file holds fewer iterations); -1 decodes all the "
                     "file holds (akbari2020 streams: -1 only, one image).")
flags.DEFINE_string("output_directory", None, "Directory for the PNGs "
                    "(required); created if needed.")
flags.DEFINE_string("model", DEFAULT_MODEL, "Codec SavedModel directory, as "
                    "written by tfrnncomp.export: the one that made a "
                    "bitstream; for an .npz, its bits per block must match.")
flags.DEFINE_boolean("overwrite", False, "Replace existing image_XX.png "
                     "files in --output_directory.")
flags.DEFINE_integer("max_pixels", cli.MAX_DECODE_PIXELS, "Refuse files whose "
                     "image has more pixels (padded to multiples of 16); "
                     "decoding needs about 1.2 KB of memory per pixel with "
                     "the shipped model.", lower_bound=1)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("input_codes", "output_directory"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")
  last = codes_io.MAX_ITERATIONS - 1
  if not -1 <= FLAGS.iteration <= last:
    raise app.UsageError(f"--iteration must be -1 (all) or between 0 and "
                         f"{last}, got {FLAGS.iteration}")
  iterations = None if FLAGS.iteration == -1 else FLAGS.iteration + 1
  result = cli.decode_file(FLAGS.model, FLAGS.input_codes,
                           FLAGS.output_directory, iterations,
                           overwrite=FLAGS.overwrite,
                           max_pixels=FLAGS.max_pixels)
  print(result.describe())
  return 0


if __name__ == "__main__":
  cli.run(main)
