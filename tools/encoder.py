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
pixel of the input image (file bytes * 8 / pixels). Any image Pillow reads is
accepted and converted to 8-bit RGB (see tfrnncomp/image_io.py). Prints one
line: the output file, the iterations, the nominal bpp (iterations * bits /
256) and the bpp of the file. Errors print one line "encoder.py: error: ..."
and exit non-zero; nothing is written then.
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
                   "the most iterations whose file has at most this many bits "
                   "per pixel.")
flags.DEFINE_string("output_codes", None, "File to write (required): the "
                    "original .npz code file if the name ends in .npz, else a "
                    "bitstream. Its directory must exist.")
flags.DEFINE_string("model", DEFAULT_MODEL, "Codec SavedModel directory, as "
                    "written by tfrnncomp.export.")
flags.DEFINE_boolean("overwrite", False, "Replace --output_codes if it "
                     "exists.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  for name in ("input_image", "output_codes"):
    if not FLAGS[name].value:
      raise app.UsageError(f"--{name} is required")
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
                           iterations, overwrite=FLAGS.overwrite, bpp=FLAGS.bpp)
  print(result.describe())
  return 0


if __name__ == "__main__":
  cli.run(main)
