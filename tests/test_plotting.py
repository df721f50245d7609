"""Tests of the reference-curve readers, BD-rate and figures."""

import math
import os

import numpy as np
import pytest

from tfrnncomp import errors
from tfrnncomp import evaluation
from tfrnncomp import plotting

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "..", "shared", "reference", "kodak")
needs_references = pytest.mark.skipif(
    not os.path.isdir(REFERENCE_DIR), reason="no ../shared/reference/kodak")


def test_bd_rate_of_a_curve_at_80_percent_rate_is_minus_20():
  rate = np.geomspace(0.1, 2., 12)
  quality = 30 + 6 * np.log2(rate) - 0.3 * np.log2(rate) ** 2
  assert plotting.bd_rate(rate, quality, 0.8 * rate, quality) == (
      pytest.approx(-20., abs=1e-6))
  assert plotting.bd_rate(0.8 * rate, quality, rate, quality) == (
      pytest.approx(25., abs=1e-6))
  # Only the common quality range counts (log rate exactly cubic in quality
  # here, so the fits of both point sets are the same curve).
  quality = 30 + 6 * np.log2(rate)
  assert plotting.bd_rate(rate, quality, 0.8 * rate[4:], quality[4:]) == (
      pytest.approx(-20., abs=1e-6))


def test_bd_rate_without_overlap_is_nan():
  rate = np.array([0.1, 0.2, 0.4, 0.8])
  assert math.isnan(plotting.bd_rate(rate, [20, 22, 24, 26], rate,
                                     [30, 32, 34, 36]))
  assert math.isnan(plotting.bd_rate(rate, [20, 22, 24, 26], [0.1], [21]))


@needs_references
def test_reference_formats_are_parsed():
  curves = plotting.load_references(REFERENCE_DIR)
  toderici = curves["tfc/toderici-2017-cvpr"]
  assert toderici.label == "Toderici 2017 (CVPR)" and toderici.published
  np.testing.assert_allclose(toderici.psnr[0][:2], [0.125, 0.25])
  assert toderici.psnr[1][0] == pytest.approx(23.01408)
  assert 0.5 < toderici.ms_ssim[1][0] < 1
  jpeg = curves["compressai/jpeg"]
  assert jpeg.psnr[0][0] == pytest.approx(0.2211532, abs=1e-6)
  assert jpeg.psnr[1][0] == pytest.approx(23.7799, abs=1e-4)
  gdn = curves["islam2021/gdn"]
  np.testing.assert_allclose(gdn.psnr[0], 0.125 * np.arange(1, 17))
  assert 20 < gdn.psnr[1][0] < gdn.psnr[1][-1] < 45
  assert 0.5 < gdn.ms_ssim[1][0] < gdn.ms_ssim[1][-1] < 1
  for key in plotting.DEFAULT_REFERENCES:
    assert key in curves


def _write_result(folder, name, label, rate_scale):
  bpp = list(np.geomspace(0.1, 2., 8) * rate_scale)
  psnr = list(30 + 6 * np.log2(np.array(bpp) / rate_scale))
  msssim = list(1 - 10 ** (-np.array(psnr) / 20))
  evaluation.write_json(os.path.join(folder, f"{name}.json"), {
      "name": label, "description": "synthetic", "results": {
          "bpp": bpp, "psnr-rgb": psnr, "ms-ssim-rgb": msssim}})


def test_report_has_figures_and_bd_table(tmp_path):
  _write_result(str(tmp_path), "jpeg", "JPEG", 1.)
  _write_result(str(tmp_path), "hevc", "HEVC", 0.5)
  _write_result(str(tmp_path), "ours", "Ours", 0.8)
  # Other records kept beside the curves are not curves.
  evaluation.write_json(str(tmp_path / "benchmark.json"),
                        {"description": "timings", "runs": 3})
  paths = plotting.write_report(str(tmp_path), None)
  assert [os.path.basename(p) for p in paths] == [
      "psnr.png", "ms_ssim.png", "bd_rate.md", "rates.md"]
  with open(tmp_path / "bd_rate.md") as f:
    table = f.read()
  assert "| Ours | -20.0% | -20.0% | +60.0% | +60.0% |" in table
  assert "| HEVC | -50.0% | -50.0% | +0.0% | +0.0% |" in table
  assert "timings" not in table and "benchmark" not in table
  # The table over 0.25-1 bpp: same constant rate ratios, same BD-rates.
  ranged = table.split("## Over 0.25-1 bpp")[1]
  assert "| Ours | -20.0% | -20.0% | +60.0% | +60.0% |" in ranged


def test_span_points_keep_the_nearest_point_outside_each_end():
  rate = np.array([0.5, 0.1, 0.2, 0.4, 1.6, 0.8])
  quality = rate * 10
  kept_rate, kept_quality = plotting.span_points(rate, quality, (0.25, 1.))
  np.testing.assert_array_equal(kept_rate, [0.2, 0.4, 0.5, 0.8, 1.6])
  np.testing.assert_array_equal(kept_quality, kept_rate * 10)
  # Points exactly on the ends need none outside them.
  kept_rate, _ = plotting.span_points(rate, quality, (0.2, 0.8))
  np.testing.assert_array_equal(kept_rate, [0.2, 0.4, 0.5, 0.8])
  assert plotting.span_points(rate, quality, None)[0] is not None


def test_a_broken_result_json_is_an_error(tmp_path):
  evaluation.write_json(str(tmp_path / "ours.json"),
                        {"name": "Ours", "results": {"psnr-rgb": [30.]}})
  with pytest.raises(errors.InputError, match="not a result JSON"):
    plotting.load_results(str(tmp_path))


def test_rate_table_interpolates_in_log_rate_and_never_extrapolates():
  curve = plotting.Curve("ours", "Ours", psnr=(np.array([0.25, 1.]),
                                               np.array([26., 32.])),
                         ms_ssim=(np.array([0.25, 1.]), np.array([.9, .98])))
  assert plotting.quality_at(curve, "psnr", 0.5) == pytest.approx(29.)
  assert plotting.quality_at(curve, "ms_ssim", 1.) == pytest.approx(.98)
  assert plotting.quality_at(curve, "psnr", 2.) is None
  table = plotting.rate_table([curve], rates=(0.125, 0.5))
  assert "| Ours | - | 29.00 | - | 0.9400 |" in table


def test_crops_figure(tmp_path):
  image = np.zeros([40, 50, 3], np.uint8)
  plotting.plot_crops(image, [("a", image), ("b", image)],
                      str(tmp_path / "crops.png"), (0, 0, 20, 30))
  assert os.path.getsize(tmp_path / "crops.png") > 0
