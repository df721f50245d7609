"""Properties of the models shipped in savedmodels/ (what the README promises).

These load the committed SavedModels, so they check the product, not a tiny
test network: the identity recorded beside each model matches its weights,
quality rises with every one of the 16 iterations, the entropy model codes
every iteration in fewer bits than the raw codes and decodes them
bit-exactly, and the code search raises PSNR. The GDN systems' models
(Islam 2021, Akbari 2020): quality rises with the rate from one set of
weights, the enhancement layer
raises PSNR, and every system goes through tools/encoder.py and
tools/decoder.py, each a fresh process that reloads the SavedModel.
"""

import json
import os
import subprocess
import sys

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


def _model_size(directory):
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(directory) for f in files)


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
  assert _model_size(DEFAULT_MODEL) < 60e6


@pytest.fixture(scope="module")
def quality(codec, crops):
  """MS-SSIM and PSNR after each of 16 iterations, averaged over the crops."""
  ms_ssim, psnr = np.zeros(16), np.zeros(16)
  for x in crops:
    x_hats = codec.decode(codec.encode(x, 16), *x.shape[:2])
    ms_ssim += [metrics.ms_ssim(x, x_hat) for x_hat in x_hats]
    psnr += [metrics.psnr(x, x_hat) for x_hat in x_hats]
  return ms_ssim / len(crops), psnr / len(crops)


def test_default_model_quality_rises_with_every_iteration(quality):
  ms_ssim, psnr = quality
  assert np.all(np.diff(ms_ssim) > 0), ms_ssim
  assert np.all(np.diff(psnr) > 0), psnr


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


def test_default_model_code_search_raises_psnr_and_stays_decodable(codec,
                                                                  crops):
  """tools/encoder.py --search_steps (tfrnncomp/code_search.py): the same
  decoder reads the searched codes, to a better image at every iteration."""
  gains = []
  for x in crops:
    plain = codec.decode(codec.encode(x, 4), *x.shape[:2])
    data = cli.compress(codec, x, 4, search_steps=2)
    searched = cli.decompress(codec, data)
    assert searched.codes.shape == (4, 16, 16, 32)
    gains.append([metrics.psnr(x, s) - metrics.psnr(x, p)
                  for s, p in zip(searched.x_hat, plain)])
  gains = np.mean(gains, axis=0)
  assert np.all(gains > 0.1), gains  # dB; 0.4-1.3 dB measured on Kodak.


# --- The GDN systems (issue 4): savedmodels/islam2021, savedmodels/akbari2020.

ISLAM_MODEL = os.path.join(ROOT, "savedmodels", "islam2021")
AKBARI_MODEL = os.path.join(ROOT, "savedmodels", "akbari2020")


def test_islam2021_model_quality_rises_with_every_iteration(crops):
  codec = cli.load_codec(ISLAM_MODEL)
  assert codec.system == "islam2021"
  assert _model_size(ISLAM_MODEL) < 60e6
  ms_ssim = np.zeros(16)
  for x in crops:
    x_hats = codec.decode(codec.encode(x, 16), *x.shape[:2])
    ms_ssim += [metrics.ms_ssim(x, x_hat) for x_hat in x_hats]
  ms_ssim /= len(crops)
  assert np.all(np.diff(ms_ssim[:12]) > 0), ms_ssim
  assert ms_ssim[1] > 0.85 and ms_ssim[7] > 0.95, ms_ssim  # 0.25 / 1 bpp.


def test_akbari2020_model_one_set_of_weights_serves_every_bit_depth(crops):
  codec = cli.load_codec(AKBARI_MODEL)
  assert codec.system == "akbari2020"
  assert _model_size(AKBARI_MODEL) < 60e6
  psnr, sizes = np.zeros(7), np.zeros(7)
  for x in crops:
    for i, b in enumerate(range(2, 9)):
      data = cli.compress(codec, x, b)
      sizes[i] += len(data)
      psnr[i] += metrics.psnr(x, cli.decompress(codec, data).x_hat[-1])
  # B = 2..8 from one model: more bits, more quality. The quality saturates
  # from B = 5 on (README: the code map, not the quantizer, limits it), so
  # above that only "no worse" is asserted.
  psnr /= len(crops)
  assert np.all(np.diff(sizes) > 0), sizes
  assert np.all(np.diff(psnr[:3]) > 0), psnr
  assert np.all(np.diff(psnr) > -0.02), psnr
  assert psnr[-1] > psnr[0] + .5, psnr  # 18.3 -> 19.3 dB on these crops.


def test_akbari2020_enhancement_layer_raises_psnr(crops):
  pytest.importorskip("pillow_heif")
  codec = cli.load_codec(AKBARI_MODEL)
  for x in crops:
    base = cli.compress(codec, x, 4)
    enhanced = cli.compress(codec, x, 4, enhancement_quality=50)
    decoded = cli.decompress(codec, enhanced)
    assert len(enhanced) > len(base)
    assert decoded.x_hat.shape[0] == 1
    base_psnr = metrics.psnr(x, cli.decompress(codec, base).x_hat[-1])
    assert metrics.psnr(x, decoded.x_hat[-1]) > base_psnr + 1.
    # The stream cut after its base layer decodes to the base image.
    np.testing.assert_array_equal(
        cli.decompress(codec, enhanced, iterations=1).x_hat[-1],
        cli.decompress(codec, base).x_hat[-1])


@pytest.mark.parametrize("model, rate, min_psnr", [
    ("residual_gru", "--iteration=3", 20.), ("islam2021", "--iteration=3", 20.),
    ("akbari2020", "--bits_per_channel=6", 16.)])
def test_each_shipped_system_through_the_tools_in_a_fresh_process(
    tmp_path, model, rate, min_psnr):
  """tools/encoder.py and tools/decoder.py, each in its own process, on an
  odd-sized Kodak crop: the SavedModel reloads and the output is the input's
  size and close to it."""
  x = _crop("kodim05.png", 100, 200, size=256)[:201, :243]
  Image.fromarray(x).save(tmp_path / "x.png")
  directory = os.path.join(ROOT, "savedmodels", model)
  tools = os.path.join(ROOT, "tools")
  for command in (
      ["encoder.py", f"--input_image={tmp_path / 'x.png'}",
       f"--output_codes={tmp_path / 'x.rnc'}", rate],
      ["decoder.py", f"--input_codes={tmp_path / 'x.rnc'}",
       f"--output_directory={tmp_path / 'out'}"]):
    done = subprocess.run(
        [sys.executable, os.path.join(tools, command[0]),
         f"--model={directory}"] + command[1:],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
  names = sorted(os.listdir(tmp_path / "out"))
  with Image.open(tmp_path / "out" / names[-1]) as decoded:
    x_hat = np.asarray(decoded.convert("RGB"))
  assert x_hat.shape == x.shape
  assert metrics.psnr(x, x_hat) > min_psnr, metrics.psnr(x, x_hat)
