"""tfrnncomp.benchmark and tools/benchmark.py, with the untrained tiny codec.

Also the inference path's properties the benchmark relies on: the exported
signatures are traced once for every image size and iteration count, and the
FLOP count of the traced steps is the one of the paper's layer table.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import benchmark
from tfrnncomp import cli
from tfrnncomp import errors

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "savedmodels", "residual_gru")


def _write_images(directory, shapes):
  rng = np.random.default_rng(0)
  paths = []
  for index, (height, width) in enumerate(shapes):
    rows, columns = np.mgrid[:height, :width]
    image = np.stack([rows * 4 % 256, columns * 3 % 256,
                      rng.integers(0, 256, (height, width))], -1)
    path = os.path.join(directory, f"image{index + 1:02d}.png")
    Image.fromarray(image.astype(np.uint8)).save(path)
    paths.append(path)
  return paths


def test_iterations_for_rates():
  assert [benchmark.iterations_for(r, 32) for r in benchmark.RATES] == [
      1, 2, 4, 8, 16]
  assert benchmark.iterations_for(0.0625, 8) == 2
  for bad in (0.1, 0, -0.125):
    with pytest.raises(errors.InputError, match="multiple of 32/256"):
      benchmark.iterations_for(bad, 32)


def test_select_images_by_count_and_name(tmp_path):
  paths = _write_images(str(tmp_path), [(16, 16)] * 3)
  assert benchmark.select_images(str(tmp_path), "2") == paths[:2]
  assert benchmark.select_images(str(tmp_path), "image03,image01.png") == [
      paths[2], paths[0]]
  with pytest.raises(errors.InputError, match="no image 'kodim01'"):
    benchmark.select_images(str(tmp_path), "kodim01")
  with pytest.raises(errors.InputError, match="does not exist"):
    benchmark.select_images(str(tmp_path / "missing"), "1")


def test_signatures_are_traced_once_for_all_sizes(tiny_model_dir):
  """No retracing per image size or iteration count (the fast path)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp import config
  from tfrnncomp import export
  from tfrnncomp import models
  module = export.CodecModule(models.build_model(config.resolve("tiny")))
  for (height, width), iterations in [((16, 16), 1), ((40, 72), 3),
                                      ((72, 40), 2)]:
    image = tf.zeros([height, width, 3], tf.uint8)
    codes = module.encode(image, tf.constant(iterations))["codes"]
    assert codes.shape[0] == iterations
    module.decode(codes, tf.constant(height), tf.constant(width))
  assert module.encode.experimental_get_tracing_count() == 1
  assert module.decode.experimental_get_tracing_count() == 1
  # The loaded SavedModel's signatures are concrete functions: the graph
  # (with unknown H, W and T) is the same for every call.
  loaded = cli.load_codec(tiny_model_dir)
  _, specs = loaded._encode.structured_input_signature
  assert specs["image"].shape.as_list() == [None, None, 3]


def _analytic_macs_per_pixel(config):
  """Conv multiply-accumulates per pixel, from Toderici et al. 2017 Fig. 1
  and the residual GRU's gates (4 input maps, 2 + 1 hidden)."""
  encoder = 3 * config.scaled(config.encoder_conv_filters) * 9 / 4
  channels, scale = config.scaled(config.encoder_conv_filters), 2
  for filters in map(config.scaled, config.encoder_filters):
    scale *= 2
    encoder += (channels * 4 * filters * 9 + 3 * filters * filters) / scale ** 2
    channels = filters
  encoder += channels * config.bits / 256
  channels = config.scaled(config.decoder_conv_filters)
  decoder = config.bits * channels / 256
  scale = 16
  for filters, kernel, hidden in zip(map(config.scaled,
                                         config.decoder_filters),
                                     config.decoder_kernels,
                                     config.decoder_hidden_kernels):
    decoder += (channels * 4 * filters * kernel ** 2 +
                3 * filters * filters * hidden ** 2) / scale ** 2
    channels, scale = filters // 4, scale // 2
  decoder += channels * 3
  return encoder, decoder


def test_network_flops_of_the_shipped_model():
  from tfrnncomp import export  # pylint: disable=g-import-not-at-top
  config = export.load_config(SHIPPED)
  flops = benchmark.network_flops(config, 512, 768)
  encoder, decoder = _analytic_macs_per_pixel(config)
  pixels = 512 * 768
  # Convolutions: 2 flops per MAC (44.0k and 109.4k MACs per pixel).
  assert flops["encoder"]["conv"] / 2 / pixels == pytest.approx(encoder,
                                                                 rel=1e-3)
  assert flops["decoder"]["conv"] / 2 / pixels == pytest.approx(decoder,
                                                                 rel=1e-3)
  assert 0 < flops["decoder"]["total"] - flops["decoder"]["conv"] < (
      0.01 * flops["decoder"]["conv"])


def test_run_in_process_and_markdown(tiny_model_dir, tmp_path):
  paths = _write_images(str(tmp_path), [(48, 64), (64, 48)])
  results = benchmark.run([tiny_model_dir], paths, rates=[0.03125, 0.0625],
                          runs=2, standard_codecs=["jpeg"], isolate=False,
                          log=lambda line: None)
  json.dumps(results)  # JSON-able.
  [model] = results["models"]
  assert [m["iterations"] for m in model["rates"]] == [1, 2]
  for measurement in model["rates"]:
    assert len(measurement["images"]) == 2
    for image in measurement["images"]:
      assert image["encode"] == pytest.approx(
          image["network_encode"] + image["entropy_encode"], rel=0.5)
      assert image["decode_gflop_per_s"] > 0
      assert image["encode_peak_percent"] > 0
    assert set(measurement["warmup_seconds"]) == {"48x64", "64x48"}
  jpeg = results["standard"]["jpeg"]
  assert [entry["image"] for entry in jpeg] == ["image01.png", "image02.png"]
  assert all(p["encode"] > 0 for p in jpeg[0]["points"])
  table = benchmark.markdown(results)
  assert "| 0.03125 | 1 |" in table and "| 0.0625 | 2 |" in table
  assert "| bpp nominal | jpeg |" in table


def test_tool_writes_json_and_markdown(tiny_model_dir, tmp_path, run_tool):
  _write_images(str(tmp_path), [(32, 48)])
  status, out, err = run_tool(
      "benchmark", f"--models={tiny_model_dir}", f"--images_dir={tmp_path}",
      "--images=1", "--rates=0.03125", "--runs=1", "--codecs=none",
      f"--output_json={tmp_path / 'b.json'}",
      f"--output_md={tmp_path / 'b.md'}")
  assert status == 0, err
  results = json.loads((tmp_path / "b.json").read_text())
  assert results["command"].startswith("python tools/benchmark.py --models=")
  [measurement] = results["models"][0]["rates"]
  memory = measurement["memory"]  # Measured in a fresh process.
  assert memory["end"]["peak_bytes"] >= memory["after_loading"][
      "resident_bytes"] > 0
  assert (tmp_path / "b.md").read_text() in out


@pytest.mark.parametrize("args, status, match", [
    (["--runs=0"], 2, "--runs must be >= 1"),
    (["--rates=0.25,x"], 2, "--rates must be positive numbers"),
    (["--codecs=jpeg,bpg"], 2, "unknown codec 'bpg'"),
    (["--models=/nonexistent"], 2, "/nonexistent is not a codec SavedModel"),
    (["--output_json=/nonexistent/b.json"], 2, "directory of"),
    (["--images_dir=/nonexistent"], 1, "does not exist"),
    (["extra"], 2, "unexpected arguments: extra"),
])
def test_tool_usage_errors_are_one_line(args, status, match, run_tool):
  code, _, err = run_tool("benchmark", *args)
  lines = err.strip().splitlines()
  assert code == status, err
  assert len(lines) == 1 and lines[0].startswith("benchmark.py: error: "), err
  assert match in lines[0]


def test_rates_the_model_cannot_code_are_refused(tiny_model_dir, tmp_path,
                                                 run_tool):
  _write_images(str(tmp_path), [(32, 48)])
  code, _, err = run_tool("benchmark", f"--models={tiny_model_dir}",
                          f"--images_dir={tmp_path}", "--rates=0.01")
  assert code == 1 and "not a positive multiple of 8/256" in err
