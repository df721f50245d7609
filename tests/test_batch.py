"""tfrnncomp/batch.py and tools/compress_folder.py with the tiny codec.

A folder of four small images (PNG, JPEG, grayscale, one in a subfolder) and
one corrupt file is compressed, interrupted after two images, resumed, and
partly redone; every output must equal what cli.encode_file (the operation of
tools/encoder.py) writes for that image, and the manifest must describe it.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import batch
from tfrnncomp import cli
from tfrnncomp import errors
from tfrnncomp import image_io
from tfrnncomp import metrics
from tfrnncomp import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "compress_folder.py")
IMAGES = ["a.png", "c.jpg", "g.png", os.path.join("sub", "b.png")]


_image = testing.gradient_image


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp("images")
  os.makedirs(root / "sub")
  Image.fromarray(_image(40, 50, 0)).save(root / "a.png")
  Image.fromarray(_image(33, 47, 1)).save(root / "sub" / "b.png")
  Image.fromarray(_image(48, 32, 2)).save(root / "c.jpg", quality=90)
  Image.fromarray(_image(20, 36, 3)[..., 0]).save(root / "g.png")  # Gray.
  (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  return str(root)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
  return cli.load_codec(tiny_model_dir)


@pytest.fixture(scope="module")
def expected(folder, tiny, tmp_path_factory):
  """{file: bytes} of cli.encode_file with 3 iterations (tools/encoder.py)."""
  out = tmp_path_factory.mktemp("single")
  result = {}
  for i, name in enumerate(IMAGES):
    path = str(out / f"{i}.rnc")
    cli.encode_file(tiny, os.path.join(folder, name), path, 3)
    with open(path, "rb") as f:
      result[name] = f.read()
  return result


def _check_outputs(output_dir, folder, tiny, expected):
  entries = batch.read_manifest(os.path.join(output_dir, batch.MANIFEST))
  assert sorted(entries) == sorted(IMAGES)
  for name in IMAGES:
    entry = entries[name]
    with open(os.path.join(output_dir, entry["output"]), "rb") as f:
      data = f.read()
    assert data == expected[name], name
    image = np.asarray(image_io.read_image(os.path.join(folder, name)))
    x_hat = cli.decompress(tiny, data).x_hat[-1]
    height, width = image.shape[:2]
    assert entry["bytes"] == len(data)
    assert entry["bpp"] == pytest.approx(len(data) * 8 / (height * width))
    assert entry["psnr"] == pytest.approx(metrics.psnr(image, x_hat))
    ms_ssim = metrics.ms_ssim(image, x_hat)  # NaN for some of this model's.
    assert entry["ms_ssim"] == (None if np.isnan(ms_ssim) else
                                pytest.approx(ms_ssim))
    assert (entry["iterations"], entry["height"], entry["width"]) == (
        3, height, width)
  return entries


def test_interrupt_resume_and_redo(tmp_path, folder, tiny, expected):
  output_dir = str(tmp_path / "codes")
  manifest = os.path.join(output_dir, batch.MANIFEST)
  seen = []

  def stop_after_two(entry):
    seen.append(entry["file"])
    if len(seen) == 2:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    batch.compress_images(tiny, output_dir, folder=folder, iterations=3,
                          on_image=stop_after_two, parallel_reads=2)
  assert sorted(batch.read_manifest(manifest)) == sorted(seen)
  assert not [f for f in os.listdir(output_dir) if f.startswith(".tmp")]

  ticks = []
  result = batch.compress_images(tiny, output_dir, folder=folder,
                                 iterations=3,
                                 progress=lambda total: ticks.append(total) or
                                 ticks.append)
  assert sorted(result.skipped) == sorted(seen)
  assert sorted(result.coded) == sorted(set(IMAGES) - set(seen))
  assert [f for f, _ in result.failed] == ["bad.png"]
  assert "bad.png is not an image file" in result.failed[0][1]
  assert ticks[0] == 5 and len(ticks) == 6  # Total, then every file.
  entries = _check_outputs(output_dir, folder, tiny, expected)
  assert entries[os.path.join("sub", "b.png")]["output"] == os.path.join(
      "sub", "b.rnc")

  # A lost output, and an output whose manifest entry was lost: both redone.
  os.remove(os.path.join(output_dir, "a.rnc"))
  del entries["c.jpg"]
  batch.write_manifest(manifest, entries)
  result = batch.compress_images(tiny, output_dir, folder=folder,
                                 iterations=3)
  assert sorted(result.coded) == ["a.png", "c.jpg"]
  _check_outputs(output_dir, folder, tiny, expected)

  # Other settings recode (here the first 3 files in sorted order).
  result = batch.compress_images(tiny, output_dir, folder=folder,
                                 iterations=2, max_images=3)
  assert result.coded == ["a.png", "c.jpg"] and not result.skipped
  assert result.entries["a.png"]["request"] == "iterations=2"


def test_a_target_bpp_matches_the_single_file_encoder(tmp_path, folder, tiny):
  result = batch.compress_images(tiny, str(tmp_path / "o"), folder=folder,
                                 bpp=1.5)
  for name in IMAGES:
    entry = result.entries[name]
    single = cli.encode_file(tiny, os.path.join(folder, name),
                             str(tmp_path / "single.rnc"), bpp=1.5,
                             overwrite=True)
    assert entry["iterations"] == single.iterations and entry["bpp"] <= 1.5
    assert (tmp_path / "o" / entry["output"]).read_bytes() == (
        tmp_path / "single.rnc").read_bytes()


def test_searched_files_match_the_encoder_and_are_recoded_without(
    tmp_path, folder, tiny):
  output_dir = str(tmp_path / "o")
  result = batch.compress_images(tiny, output_dir, folder=folder,
                                 iterations=2, search_steps=2, max_images=2)
  for name in result.coded:
    single = str(tmp_path / "single.rnc")
    cli.encode_file(tiny, os.path.join(folder, name), single, 2,
                    overwrite=True, search_steps=2)
    entry = result.entries[name]
    assert entry["search_steps"] == 2
    with open(single, "rb") as f:
      assert (tmp_path / "o" / entry["output"]).read_bytes() == f.read()
  again = batch.compress_images(tiny, output_dir, folder=folder,
                                iterations=2, search_steps=2, max_images=2)
  assert sorted(again.skipped) == sorted(result.coded) and not again.coded
  plain = batch.compress_images(tiny, output_dir, folder=folder,
                                iterations=2, max_images=2)
  assert sorted(plain.coded) == sorted(result.coded) and not plain.skipped
  assert all("search_steps" not in e for e in plain.entries.values())


def test_bad_arguments(tmp_path, folder, tiny):
  with pytest.raises(errors.InputError, match="exactly one"):
    batch.compress_images(tiny, str(tmp_path), iterations=1)
  with pytest.raises(errors.InputError, match="either iterations"):
    batch.compress_images(tiny, str(tmp_path), folder=folder)
  (tmp_path / "x.png").write_bytes(b"")
  (tmp_path / "x.jpg").write_bytes(b"")
  with pytest.raises(errors.InputError, match="both be written to x.rnc"):
    batch.compress_images(tiny, str(tmp_path / "o"), folder=str(tmp_path),
                          iterations=1)
  with pytest.raises(errors.InputError, match="not a relative file name"):
    batch.output_name("../up.png", "bitstream")


def test_command_line_tool(tmp_path, folder, tiny_model_dir, tiny, expected):
  output_dir = str(tmp_path / "codes")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  result = subprocess.run(
      [sys.executable, TOOL, f"--input_dir={folder}",
       f"--output_dir={output_dir}", f"--model={tiny_model_dir}",
       "--iteration=2"], env=env, capture_output=True, text=True)
  assert result.returncode == 1, result.stderr[-2000:]
  assert "4 coded, 0 already done, 1 failed" in result.stdout
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("compress_folder.py: error: 1 image(s) not coded; "
                         "first: ") and "bad.png" in last
  _check_outputs(output_dir, folder, tiny, expected)
  with open(os.path.join(output_dir, batch.MANIFEST)) as f:
    assert [json.loads(line)["file"] for line in f] == sorted(IMAGES)
  usage = subprocess.run([sys.executable, TOOL, f"--output_dir={output_dir}"],
                         env=env, capture_output=True, text=True)
  assert usage.returncode == 2
  assert usage.stderr.strip().splitlines() == [
      "compress_folder.py: error: give one of --input_dir and --dataset"]
