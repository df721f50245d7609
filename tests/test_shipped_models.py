"""Properties of the models shipped in savedmodels/ (what the README promises).

These load the committed SavedModels, so they check the product, not a tiny
test network: the identity recorded beside each model matches its weights,
quality rises with every iteration up to 14 (1.75 bpp; iterations 15 and
16 are a known, marked failure), and
the entropy model codes every iteration in fewer bits than the raw codes and
decodes them bit-exactly.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = os.path.join(ROOT, "savedmodels", "residual_gru")
KODAK = os.path.join(ROOT, "..", "shared", "data", "kodak")


def _crop(name, top, left, size=256):
  with Image.open(os.path.join(KODAK, name)) as image:
    return np.asarray(image.convert("RGB"))[top:top + size, left:left + size]


@pytest.fixture(scope="module")
def codec():
  return cli.load_codec(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def crops():
  # A smooth and a textured 256x256 region of two Kodak images.
  return [_crop("kodim23.png", 96, 256), _crop("kodim05.png", 128, 384)]


def test_default_model_identity_matches_its_files(codec):
  with open(os.path.join(DEFAULT_MODEL, "model.json")) as f:
    identity = json.load(f)
  with open(os.path.join(DEFAULT_MODEL, "config.json")) as f:
    config = json.load(f)
  assert identity["name"] == config["name"] == codec.name
  assert codec.weights_sha256 == identity["weights_sha256"]
  assert config["bits"] == 32
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(DEFAULT_MODEL) for f in files)
  assert size < 60e6


@pytest.fixture(scope="module")
def quality(codec, crops):
  """MS-SSIM and PSNR after each of 16 iterations, averaged over the crops."""
  ms_ssim, psnr = np.zeros(16), np.zeros(16)
  for x in crops:
    x_hats = codec.decode(codec.encode(x, 16), *x.shape[:2])
    ms_ssim += [metrics.ms_ssim(x, x_hat) for x_hat in x_hats]
    psnr += [metrics.psnr(x, x_hat) for x_hat in x_hats]
  return ms_ssim / len(crops), psnr / len(crops)


def test_default_model_quality_rises_with_every_iteration_to_14(quality):
  ms_ssim, psnr = quality
  assert np.all(np.diff(ms_ssim[:14]) > 0), ms_ssim
  assert np.all(np.diff(psnr[:14]) > 0), psnr


@pytest.mark.xfail(strict=True, reason="known: the shipped model (3,300 "
                   "steps) gains nothing at iterations 15 and 16 (MS-SSIM "
                   "-0.0001 / -0.0006 on these crops); more 16-iteration "
                   "training should fix it")
def test_default_model_quality_rises_at_iterations_15_and_16(quality):
  ms_ssim, psnr = quality
  assert np.all(np.diff(ms_ssim[13:]) > 0), ms_ssim
  assert np.all(np.diff(psnr[13:]) > 0), psnr


def test_default_model_entropy_coding_saves_bits_losslessly(codec, crops):
  assert codec.entropy is not None, "the default model ships an entropy model"
  for x in crops:
    codes = codec.encode(x, 4)
    raw = bitstream.raw_chunk_size(*codes.shape[1:])
    coded = cli.stream_chunks(codec, codes, entropy_coding="always")
    assert all(coding == bitstream.RANGE_CODED for coding, _ in coded)
    data = cli.write_stream(codec, coded, *x.shape[:2])
    decoded = cli.decompress(codec, data)
    np.testing.assert_array_equal(decoded.codes, codes)
    assert decoded.header.entropy_name == codec.entropy.name
    tf.debugging.assert_equal(decoded.x_hat,
                              codec.decode(codes, *x.shape[:2]))
    # The encoder's choice per chunk never costs more than the raw bits.
    chosen = cli.stream_chunks(codec, codes)
    assert all(len(c) <= raw for _, c in chosen)
  # On the smooth crop, every iteration's range coding beats the raw bits.
  assert all(len(c) < raw for _, c in cli.stream_chunks(
      codec, codec.encode(crops[0], 4), entropy_coding="always"))
