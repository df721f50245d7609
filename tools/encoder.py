r"""Encodes an image to a code file, like the original release's encoder.py.

  python tools/encoder.py --input_image=kodim23.png --output_codes=codes.npz \
      --iteration=15

The flags are those of tensorflow/models research/compression/image_encoder/
encoder.py (plus --overwrite), and so is the output: an .npz with `shape`
(iterations, 1, H/16, W/16, bits) and `codes` (np.packbits of the codes), which
the original decoder.py reads; an extra `image_size` key lets tools/decoder.py
crop to the input size. See tfrnncomp/codes_io.py for the format.

--iteration=k codes k+1 iterations, i.e. (k+1)/8 bpp with the paper's 32 bits
per 16x16 block (before the padding to a multiple of 16 pixels). Any image
Pillow reads is accepted and converted to 8-bit RGB (see tfrnncomp/image_io.py).
Prints one line: the output file, the iterations, the nominal bpp
(iterations * bits / 256) and the bpp of the file (bytes * 8 / pixels).
Errors print one line "encoder.py: error: ..." and exit non-zero; nothing is
written then.
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
                     "(1/8 bpp for the 32-bit models).")
flags.DEFINE_string("output_codes", None, "Code file (.npz) to write "
                    "(required). Its directory must exist.")
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
  result = cli.encode_file(FLAGS.model, FLAGS.input_image, FLAGS.output_codes,
                           FLAGS.iteration + 1, overwrite=FLAGS.overwrite)
  print(result.describe())
  return 0


if __name__ == "__main__":
  cli.run(main)
