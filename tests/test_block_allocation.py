"""Tests of spatially adaptive bit allocation (tfrnncomp/block_allocation.py)."""

import json
import math

import numpy as np
from PIL import Image
import pytest

from tfrnncomp import block_allocation
from tfrnncomp import testing
from tfrnncomp.models import toderici2017


_image = testing.halves_image  # Smooth and noisy halves.


def test_without_a_target_it_is_the_plain_codec(tiny):
  image = _image()
  result = block_allocation.run(tiny, image, 3)
  decoded = tiny.decode(tiny.encode(image[None], 3), *image.shape[:2]).numpy()
  for t in range(3):
    difference = np.abs(result["x_hat"][t].astype(int) -
                        decoded[t, 0].astype(int))
    assert difference.max() <= 1
    blocks = 3 * 4
    assert result["bpp"][t] == pytest.approx(
        (t + 1) * blocks * tiny.config.bits / image[..., 0].size)
    assert result["active"][t] == 1.


def test_a_target_every_block_meets_stops_all_after_the_first_iteration(tiny):
  image = _image()
  result = block_allocation.run(tiny, image, 4, "mse", target=0.)  # 0 dB.
  for t in range(4):
    np.testing.assert_array_equal(result["x_hat"][t], result["x_hat"][0])
    assert result["active"][t] == (1. if t == 0 else 0.)
    count_bits = 12 * math.ceil(math.log2(t + 1))  # Counts 1..t+1: 0, 1, 2, 2.
    assert result["bpp"][t] == pytest.approx(
        (12 * tiny.config.bits + count_bits) / image[..., 0].size)


@pytest.mark.parametrize("criterion", block_allocation.CRITERIA)
def test_stopped_blocks_keep_their_pixels_and_never_restart(tiny, criterion):
  image = _image()
  plain = block_allocation.run(tiny, image, 1)
  x = toderici2017.to_float(image[None])
  x_hat = toderici2017.to_float(plain["x_hat"][0][None])
  errors = block_allocation.block_errors(x, x_hat, criterion).numpy().ravel()
  tau = float(np.median(errors))  # About half the blocks stop at once.
  target = 10 * np.log10(255. ** 2 / tau) if criterion == "mse" else tau
  result = block_allocation.run(tiny, image, 5, criterion, target)
  assert 0. < result["active"][1] < 1.
  bits = 0
  for t in range(5):
    mask = result["mask"][t]
    bits += mask.sum() * tiny.config.bits
    assert result["bpp"][t] == pytest.approx(
        (bits + 12 * math.ceil(math.log2(t + 1))) / image[..., 0].size)
    if t == 0:
      continue
    assert np.all(mask <= result["mask"][t - 1])
    pixels = np.repeat(np.repeat(mask, 16, 0), 16, 1) == 0
    np.testing.assert_array_equal(result["x_hat"][t][pixels],
                                  result["x_hat"][t - 1][pixels])


def test_block_errors_in_closed_form():
  x = np.zeros([1, 16, 32, 3], np.float32)
  x[:, :, 16:] = np.where(np.arange(16)[None, :, None, None] % 2, .25, -.25)
  x_hat = x + 10. / 255.  # An error of 10 levels everywhere.
  mse = block_allocation.block_errors(x, x_hat, "mse").numpy().ravel()
  np.testing.assert_allclose(mse, [100., 100.], rtol=1e-4)
  ssim = block_allocation.block_errors(x, x_hat, "ssim").numpy().ravel()
  variance = (.25 * 255.) ** 2
  c2 = (.03 * 255.) ** 2
  np.testing.assert_allclose(ssim, [100. / c2, 100. / (2 * variance + c2)],
                             rtol=1e-4)
  assert block_allocation.threshold("mse", 10 * np.log10(255. ** 2 / 100.)) \
      == pytest.approx(100.)
  with pytest.raises(ValueError):
    block_allocation.threshold("psnr", 30.)
  with pytest.raises(ValueError):
    block_allocation.threshold("ssim", -1.)


@pytest.fixture
def images_dir(tmp_path):
  directory = tmp_path / "images"
  directory.mkdir()
  for i in range(2):
    Image.fromarray(_image(32, 48, seed=i)).save(directory / f"im{i}.png")
  return str(directory)


def test_tool_writes_curves_and_bd_rates(run_tool, tiny_model_dir, images_dir,
                                         tmp_path):
  output = tmp_path / "out.json"
  status, out, _ = run_tool(
      "measure_block_allocation", f"--model={tiny_model_dir}",
      f"--images_dir={images_dir}", "--iterations=3", "--targets=0,60",
      f"--output_json={output}")
  assert status == 0
  assert "plain" in out and "BD-rate" in out
  results = json.loads(output.read_text())
  assert results["images"] == ["im0.png", "im1.png"]
  plain, everything_stops, nothing_stops = results["curves"]
  assert plain["target"] is None and len(plain["bpp"]) == 3
  assert everything_stops["active"][1:] == [0., 0.]
  # A 60 dB target keeps every block going: the plain curve plus the counts.
  assert nothing_stops["active"] == [1., 1., 1.]
  np.testing.assert_allclose(nothing_stops["psnr"], plain["psnr"])
  # The counts cost nothing after one iteration (all are 1), then 1, 2 bits.
  assert nothing_stops["bpp"][0] == pytest.approx(plain["bpp"][0])
  assert all(b > a for a, b in zip(plain["bpp"][1:], nothing_stops["bpp"][1:]))
  assert "bd_rate_vs_plain" in nothing_stops


def test_tool_errors_are_one_line(run_tool, tiny_model_dir,
                                  akbari_tiny_model_dir, images_dir):
  status, _, err = run_tool("measure_block_allocation",
                            f"--model={akbari_tiny_model_dir}",
                            f"--images_dir={images_dir}")
  assert status == 1 and "not a recurrent codec" in err
  assert "Traceback" not in err
  status, _, err = run_tool("measure_block_allocation",
                            f"--model={tiny_model_dir}", "--criterion=ssim",
                            "--targets=-1", f"--images_dir={images_dir}")
  assert status == 2 and "--targets" in err
  status, _, err = run_tool("measure_block_allocation",
                            f"--model={tiny_model_dir}", "--targets=abc",
                            f"--images_dir={images_dir}")
  assert status == 2 and "--targets" in err
