r"""Measures the bitstream's entropy coding on Kodak: bpp, overhead, times.

  python tools/measure_entropy_coding.py --model savedmodels/residual_gru \
      --images 24 --output_json results/kodak/entropy_coding.json

For each image (the first --images of --images_dir, sorted), the codec
encodes --iterations iterations once (the codes of t iterations are the first
t of them) and the codec's entropy model range-codes every iteration. Then,
for every iteration count t:

- nominal bpp: t * bits / 256 (the raw codes of the padded image);
- actual bpp: bytes * 8 / pixels of the bitstream tools/encoder.py writes for
  t iterations (header included; each chunk range-coded or raw, whichever is
  smaller);
- the model's cross-entropy (bits, unquantized probabilities) against the
  range-coded chunks' bits: the coding overhead (bins, range coder
  termination).

Every stream is decoded back and its codes compared with the codec's, bit
for bit, and every cut at a chunk boundary is read. For the first
--timing_images images, encoding (codec + entropy coding + container) and
decoding (container + entropy decoding + codec) are timed at 2 and 8
iterations (0.25 and 1 bpp nominal), and the decoded pixels compared with the
codec's decoding of the same codes without entropy coding.
Prints a table; --output_json writes the numbers with how they were made.
"""

import datetime
import json
import os
import sys
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import data as data_lib
from tfrnncomp import errors
from tfrnncomp import image_io

FLAGS = flags.FLAGS
flags.DEFINE_string("model", os.path.join(ROOT, "savedmodels", "residual_gru"),
                    "Codec SavedModel directory with an entropy/ model.")
flags.DEFINE_string("images_dir", os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data", "kodak")), "Test images.")
flags.DEFINE_integer("images", 24, "How many images (sorted by name).")
flags.DEFINE_integer("iterations", 16, "Largest iteration count.")
flags.DEFINE_integer("timing_images", 2, "Images timed at 2 and 8 "
                     "iterations (after a warm-up on a 32 x 32 crop).")
flags.DEFINE_string("output_json", None, "Where to write the results.")


def _timed(function, *args):
  start = time.perf_counter()
  result = function(*args)
  return result, time.perf_counter() - start


def _measure(codec, path, iterations):
  image = image_io.read_image(path)
  height, width = image.shape[:2]
  codes = codec.encode(image, iterations)
  entropy = codec.entropy
  coded = entropy.compress(codes)
  cross_entropy = entropy.cross_entropy(codes)
  chunks = cli.stream_chunks(codec, codes)
  actual = []
  for t in range(1, iterations + 1):
    data = cli.write_stream(codec, chunks[:t], height, width)
    actual.append(len(data) * 8 / (height * width))
  header, read = bitstream.read(data)
  decoded = cli.stream_codes(codec, header, read)
  if not np.array_equal(decoded, codes):
    raise AssertionError(f"{path}: the stream does not decode bit-exactly")
  for t in range(1, iterations):  # Every cut at a chunk boundary reads.
    assert bitstream.read(bitstream.truncate(data, t))[1] == read[:t]
  return {
      "image": os.path.basename(path), "height": height, "width": width,
      "bpp": actual,
      "range_coded": [c == bitstream.RANGE_CODED for c, _ in chunks],
      "range_coded_bits": [len(c) * 8 for c in coded],
      "cross_entropy_bits": [float(b) for b in cross_entropy],
      "raw_bits": int(codes[0].size),
  }, codes


def _timing(codec, path, codes):
  image = image_io.read_image(path)
  result = {"image": os.path.basename(path)}
  for t in (2, 8):  # Warm-up: the first run of a graph optimizes it.
    cli.decompress(codec, cli.compress(codec, image[:32, :32], t))
  for t in (2, 8):
    data, encode_time = _timed(cli.compress, codec, image, t)
    decompressed, decode_time = _timed(cli.decompress, codec, data)
    # The same codes decoded without entropy coding (the .npz path).
    reference = codec.decode(codes[:t], *image.shape[:2])
    # The entropy coder's part of those times.
    chunks, entropy_encode_time = _timed(codec.entropy.compress, codes[:t])
    _, entropy_decode_time = _timed(codec.entropy.decompress, chunks,
                                    *codes.shape[1:3])
    result[str(t)] = {
        "encode_seconds": encode_time, "decode_seconds": decode_time,
        "entropy_encode_seconds": entropy_encode_time,
        "entropy_decode_seconds": entropy_decode_time,
        "bpp": len(data) * 8 / (image.shape[0] * image.shape[1]),
        "identical_pixels": bool(np.array_equal(decompressed.x_hat,
                                                reference))}
  return result


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  codec = cli.load_codec(FLAGS.model)
  if codec.entropy is None:
    raise errors.ModelError(f"{FLAGS.model} has no entropy model (train one "
                            f"with tools/train_entropy.py)")
  paths = data_lib.list_images(FLAGS.images_dir)[:FLAGS.images]
  timings, results = [], []
  for index, path in enumerate(paths):
    result, codes = _measure(codec, path, FLAGS.iterations)
    results.append(result)
    print(f"{result['image']}: " + " ".join(f"{b:.3f}" for b in result["bpp"]),
          flush=True)
    if index < FLAGS.timing_images:
      timings.append(_timing(codec, path, codes))
      print(f"{timings[-1]}", flush=True)

  bits = codec.bits
  print(f"\n{len(results)} images; model {codec.describe_identity()}, entropy "
        f"model {codec.entropy.name} "
        f"({codec.entropy.weights_sha256[:12]})")
  print(" t  nominal  actual  saved   xent/raw  coded/xent-1")
  summary = []
  for t in range(FLAGS.iterations):
    actual = float(np.mean([r["bpp"][t] for r in results]))
    nominal = (t + 1) * bits / 256
    coded = sum(r["range_coded_bits"][t] for r in results)
    xent = sum(r["cross_entropy_bits"][t] for r in results)
    raw = sum(r["raw_bits"] for r in results)
    summary.append({"iterations": t + 1, "nominal_bpp": nominal,
                    "actual_bpp": actual, "saved": 1 - actual / nominal,
                    "cross_entropy_per_raw_bit": xent / raw,
                    "coding_overhead": coded / xent - 1})
    print(f"{t + 1:2d}  {nominal:.4f}  {actual:.4f}  "
          f"{1 - actual / nominal:+.1%}  {xent / raw:.4f}    "
          f"{coded / xent - 1:+.3%}")
  for timing in timings:
    print(timing)
  if FLAGS.output_json:
    with open(FLAGS.output_json, "w") as f:
      json.dump({
          "description": "Entropy coding of tfrnncomp bitstreams: actual vs "
                         "nominal bpp per iteration count, coding overhead "
                         "over the model's cross-entropy, times",
          "command": " ".join(sys.argv),
          "date": datetime.datetime.now().isoformat(timespec="seconds"),
          "codec": codec.identity, "entropy_model": {
              "name": codec.entropy.name,
              "weights_sha256": codec.entropy.weights_sha256},
          "summary": summary, "images": results, "timing": timings}, f,
                indent=1)
  return 0


if __name__ == "__main__":
  cli.run(main)
