"""Tests of the evaluation library and tools/evaluate.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfrnncomp import codecs
from tfrnncomp import errors
from tfrnncomp import evaluation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPRESSAI_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time",
                   "decoding_time")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
  """Two small images of different sizes."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  folder = tmp_path_factory.mktemp("images")
  rng = np.random.default_rng(0)
  for name, (h, w) in (("a.png", (48, 64)), ("b.png", (40, 72))):
    y, x = np.mgrid[0:h, 0:w] / 7.
    base = np.stack([np.sin(x + c) * np.cos(y * 0.6 - c) for c in range(3)], -1)
    image = np.clip(128 + 90 * base + rng.normal(0, 5, [h, w, 3]), 0, 255)
    Image.fromarray(image.astype(np.uint8)).save(folder / name)
  return str(folder)


def _check_layout(summary, points):
  assert isinstance(summary["name"], str) and summary["name"]
  assert isinstance(summary["description"], str)
  for key in COMPRESSAI_KEYS + ("quality", "ms-ssim-rgb-db", "psnr-hvs"):
    values = summary["results"][key]
    assert len(values) == points and all(isinstance(v, float) or
                                         isinstance(v, int) for v in values)


def test_bpp_is_bytes_written_over_pixels(image_dir, tiny_model_dir):
  images = evaluation.load_images(image_dir=image_dir)
  assert [name for name, _ in images] == ["a.png", "b.png"]
  for codec in (codecs.get_codec("jpeg", [10, 60]),
                codecs.LearnedCodec(tiny_model_dir)):
    per_image = evaluation.evaluate_codec(codec, images)
    for (_, image), result in zip(images, per_image):
      pixels = image.shape[0] * image.shape[1]
      assert result["bpp"] == [b * 8 / pixels for b in result["bytes"]]
    summary = evaluation.summarize(codec, per_image, "test")
    n = len(codec.qualities)
    _check_layout(summary, n)
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
      np.testing.assert_allclose(
          summary["results"][key],
          np.mean([r[key] for r in per_image], axis=0))
    assert summary["num_images"] == 2


def test_learned_points_match_the_code_files(image_dir, tiny_model_dir):
  codec = codecs.LearnedCodec(tiny_model_dir, [1, 4])
  name, image = evaluation.load_images(image_dir=image_dir)[0]
  assert name == "a.png"
  result = evaluation.evaluate_image(codec, image)
  assert result["quality"] == [1, 4]
  for t, size in zip([1, 4], result["bytes"]):
    assert size == len(codec.compress(image, t))


def test_cache_resumes_and_is_invalidated(image_dir, tmp_path, monkeypatch):
  images = evaluation.load_images(image_dir=image_dir)
  cache = str(tmp_path / "cache")
  codec = codecs.get_codec("jpeg", [20, 80])
  seen = []
  first = evaluation.evaluate_codec(codec, images[:1], cache, seen.append)
  assert seen == ["a.png"]
  path = os.path.join(cache, "jpeg", "a.json")
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # Not 0600.

  # An interrupted run resumes: a.png comes from the cache, b.png is coded.
  coded = []
  sweep = codecs.JpegCodec.sweep

  def counting_sweep(self, image, qualities=None):
    coded.append(image.shape)
    return sweep(self, image, qualities)

  monkeypatch.setattr(codecs.JpegCodec, "sweep", counting_sweep)
  second = evaluation.evaluate_codec(codec, images, cache)
  assert coded == [images[1][1].shape]
  assert second[0] == json.loads(json.dumps(first[0]))
  # A different sweep (or image) is measured again.
  evaluation.evaluate_codec(codecs.get_codec("jpeg", [30]), images[:1], cache)
  assert len(coded) == 2
  evaluation.evaluate_codec(codec, [("a.png", images[1][1])], cache)
  assert len(coded) == 3


def test_load_images_needs_one_source(image_dir):
  with pytest.raises(errors.InputError, match="exactly one"):
    evaluation.load_images()
  with pytest.raises(errors.InputError, match="exactly one"):
    evaluation.load_images(dataset="kodak", image_dir=image_dir)
  assert len(evaluation.load_images(image_dir=image_dir, max_images=1)) == 1


def _run_tool(args, cwd):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "evaluate.py")] + args,
      capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_tool_writes_compressai_json_and_figures(image_dir, tiny_model_dir,
                                                 tmp_path):
  output = tmp_path / "results"
  result = _run_tool(
      ["--codecs", "jpeg,webp", "--qualities", "jpeg=5,50",
       "--qualities", "webp=10,60,90", "--models", tiny_model_dir,
       "--image_dir", image_dir, "--output_dir", str(output), "--noprogress",
       "--plot", "--reference_dir", "", "--crop_image", "b.png",
       "--crop_box", "0,0,32,32"], cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr
  for name, points in (("jpeg", 2), ("webp", 3), ("tiny", 4)):
    with open(output / f"{name}.json") as f:
      summary = json.load(f)
    _check_layout(summary, points)
    assert len(os.listdir(output / "cache" / name)) == 2
  for name in ("psnr.png", "ms_ssim.png", "bd_rate.md", "crops.png"):
    assert os.path.getsize(output / name) > 0
  with open(output / "bd_rate.md") as f:
    table = f.read()
  assert "| JPEG (4:2:0) | +0.0% | +0.0% |" in table


@pytest.mark.parametrize("args, message", [
    (["--codecs", "bpg"], "unknown codec 'bpg'"),
    (["--codecs", "jpeg", "--image_dir", "/nonexistent"], "not a folder"),
    (["--models", "/nonexistent"], "not a folder"),
    (["--codecs", "jpeg", "--qualities", "jpeg:5"], "CODEC=Q1"),
])
def test_tool_user_errors_are_one_line(args, message, image_dir, tmp_path):
  if "--image_dir" not in args:
    args = args + ["--image_dir", image_dir]
  result = _run_tool(args + ["--output_dir", str(tmp_path / "out")],
                     cwd=str(tmp_path))
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
