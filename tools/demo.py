r"""Compresses one Kodak image at a few rates and reports bpp, PSNR, MS-SSIM.

  python tools/demo.py

For each iteration count in --iterations (default 2, 4 and 8: 0.25, 0.5 and
1 bpp nominal with the paper's 32 bits per 16x16 block), the image is encoded
to a bitstream exactly as tools/encoder.py does (range-coded with the model's
entropy model if it has one, tfrnncomp/bitstream.py) and decoded exactly as
tools/decoder.py does (both call tfrnncomp.cli), into --output_directory:

  demo_output/kodim23_t02.rnc      the bitstream (2 iterations)
  demo_output/kodim23_t02/         image_00.png, image_01.png (one per
                                   iteration)

and one line per rate is printed: the actual bpp of the file (bytes * 8 /
pixels) against the nominal bpp (iterations * bits / 256), how many
iterations were range-coded, and the PSNR (dB) and MS-SSIM of the last image
against the input (tfrnncomp.metrics, on 8-bit RGB). The outputs are
overwritten on each run.
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
from tfrnncomp import image_io
from tfrnncomp import metrics

DEFAULT_IMAGE = os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data", "kodak", "kodim23.png"))
DEFAULT_MODEL = os.path.join(ROOT, "savedmodels", "residual_gru")
MAX_ITERATIONS = 16

FLAGS = flags.FLAGS
flags.DEFINE_string("input_image", DEFAULT_IMAGE, "Image to compress.")
flags.DEFINE_list("iterations", ["2", "4", "8"], "Comma-separated numbers of "
                  "iterations to code, each 1 to 16 (tools/encoder.py's "
                  "--iteration plus one).")
flags.DEFINE_string("output_directory", os.path.join(ROOT, "demo_output"),
                    "Directory for the code files and decoded images; "
                    "created if needed, its files overwritten.")
flags.DEFINE_string("model", DEFAULT_MODEL, "Codec SavedModel directory, as "
                    "written by tfrnncomp.export.")


def _parse_iterations(values):
  try:
    counts = [int(v) for v in values]
  except ValueError:
    raise app.UsageError(f"--iterations must be integers, got "
                         f"{','.join(values)}") from None
  if not counts or not all(1 <= n <= MAX_ITERATIONS for n in counts):
    raise app.UsageError(f"--iterations must be between 1 and "
                         f"{MAX_ITERATIONS}, got {','.join(values)}")
  return sorted(set(counts))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  counts = _parse_iterations(FLAGS.iterations)
  x = image_io.read_image(FLAGS.input_image)
  codec = cli.load_codec(FLAGS.model)
  os.makedirs(FLAGS.output_directory, exist_ok=True)
  stem = os.path.splitext(os.path.basename(FLAGS.input_image))[0]
  height, width = x.shape[:2]
  entropy = codec.entropy
  how = (f"entropy model {entropy.name} (weights {entropy.weights_sha256[:12]})"
         if entropy else "no entropy model: raw bits")
  print(f"{FLAGS.input_image}: {width}x{height} pixels; model {FLAGS.model} "
        f"({codec.bits} bits per 16x16 block and iteration; {how})")
  for n in counts:
    name = os.path.join(FLAGS.output_directory, f"{stem}_t{n:02d}")
    encoded = cli.encode_file(codec, FLAGS.input_image, name + ".rnc", n,
                              overwrite=True)
    decoded = cli.decode_file(codec, encoded.output_codes, name, overwrite=True)
    x_hat = decoded.x_hat[-1]
    print(f"{n:2d} iteration{'s' if n > 1 else ' '}: "
          f"{encoded.file_bpp:.4f} bpp actual "
          f"({encoded.nominal_bpp:.4f} nominal: "
          f"{1 - encoded.file_bpp / encoded.nominal_bpp:.1%} fewer bits; "
          f"{encoded.range_coded}/{n} iterations range-coded), "
          f"PSNR {metrics.psnr(x, x_hat):.2f} dB, "
          f"MS-SSIM {metrics.ms_ssim(x, x_hat):.4f}  "
          f"[{encoded.output_codes} -> {decoded.paths[-1]}]")
  return 0


if __name__ == "__main__":
  cli.run(main)
