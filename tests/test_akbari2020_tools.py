"""The Akbari 2020 codec through tfrnncomp.cli and tools/encoder.py, decoder.py.

An untrained ``akbari2020_tiny`` SavedModel (conftest.py) goes through the
tools' ``main(argv)``, run in-process as ``cli.run`` runs them (so a failure
is the same one-line message and exit status as on the command line, without
a TensorFlow start per run). Streams of both systems meet the other's model.
"""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import codecs
from tfrnncomp import errors
from tfrnncomp import image_io
from tfrnncomp import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEIGHT, WIDTH = 30, 45  # Odd, and not multiples of 16.


def _image(height=HEIGHT, width=WIDTH, seed=0):
  return testing.gradient_image(height, width, seed, noise=6., period=32)


def _write_image(path, **kwargs):
  Image.fromarray(_image(**kwargs)).save(str(path))
  return str(path)


def _one_line_error(result, tool, match, status=1):
  code, _, err = result
  lines = err.strip().splitlines()
  assert code == status, err
  assert len(lines) == 1 and lines[0].startswith(f"{tool}.py: error: "), err
  assert match in lines[0], lines[0]


@pytest.fixture(scope="module")
def akbari(akbari_tiny_model_dir):
  return cli.load_codec(akbari_tiny_model_dir)


def test_load_codec_dispatches_on_the_system(akbari, tiny_model_dir,
                                             akbari_tiny_model_dir, tmp_path):
  assert isinstance(akbari, cli.SavedVariableRateCodec)
  assert (akbari.system, akbari.channels) == ("akbari2020", 4)
  assert cli.model_system(akbari_tiny_model_dir) == "akbari2020"
  assert cli.model_system(tiny_model_dir) == "toderici2017"
  assert cli.model_system(tmp_path / "missing") == cli.DEFAULT_SYSTEM
  # A config.json that contradicts the signatures is refused.
  directory = tmp_path / "liar"
  shutil.copytree(akbari_tiny_model_dir, directory)
  config = (directory / "config.json").read_text()
  (directory / "config.json").write_text(config.replace(
      '"akbari2020"', '"toderici2017"'))
  with pytest.raises(errors.ModelError, match="says system toderici2017 but "
                     "has the signatures of an akbari2020 codec"):
    cli.load_codec(str(directory))


def test_tools_round_trip_an_odd_size(tmp_path, run_tool, akbari,
                                      akbari_tiny_model_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp.models import akbari2020_coding  # pylint: disable=g-import-not-at-top
  _write_image(tmp_path / "x.png")
  model = f"--model={akbari_tiny_model_dir}"
  status, out, err = run_tool("encoder", "--input_image=x.png",
                              "--output_codes=x.rnc", "--bits_per_channel=3",
                              model, cwd=tmp_path)
  assert status == 0 and err == "", err
  assert out.count("\n") == 1 and out.startswith(
      "x.rnc: akbari2020, B=3 bits per channel, 45x30 pixels")
  data = (tmp_path / "x.rnc").read_bytes()
  header, chunks = bitstream.read(data)
  assert (header.system, header.version, header.codec_name) == (
      "akbari2020", 2, "akbari2020_tiny")
  assert (header.height, header.width, header.bits_per_channel) == (30, 45, 3)
  assert [c for c, _ in chunks] == [bitstream.CODE_MAP]

  status, out, err = run_tool("decoder", "--input_codes=x.rnc",
                              "--output_directory=out", model, cwd=tmp_path)
  assert status == 0 and err == "", err
  assert "akbari2020, B=3 bits per channel, base layer, 45x30" in out
  assert os.listdir(tmp_path / "out") == ["image_00.png"]
  decoded = image_io.read_image(str(tmp_path / "out" / "image_00.png"))
  assert decoded.shape == (HEIGHT, WIDTH, 3)

  # The library's own encode and decode of the same image and code map.
  loaded = tf.saved_model.load(akbari_tiny_model_dir)
  image = image_io.read_image(str(tmp_path / "x.png"))
  encoded = loaded.signatures["encode"](image=tf.constant(image),
                                        bits_per_channel=tf.constant(3))
  channels, side_info, coded = bitstream.unpack_code_map_chunk(chunks[0][1])
  code_map = akbari2020_coding.decode_code_map(coded, 2, 3, channels, 3)
  np.testing.assert_array_equal(code_map, encoded["code_map"].numpy())
  minimum, maximum = akbari2020_coding.unpack_side_info(side_info, channels)
  np.testing.assert_array_equal(minimum, encoded["minimum"].numpy())
  x_hat = loaded.signatures["decode"](
      bits_per_channel=tf.constant(3), height=tf.constant(HEIGHT),
      width=tf.constant(WIDTH), **encoded)["x_hat"].numpy()
  np.testing.assert_array_equal(decoded, x_hat)
  parts = akbari2020_coding.Compressed(
      height=HEIGHT, width=WIDTH, bits=3, channels=channels,
      side_info=side_info, code_map=coded)
  np.testing.assert_array_equal(
      decoded, akbari2020_coding.decompress(loaded, parts))


def test_enhancement_layer_is_chunk_1_and_a_cut_is_the_base_layer(
    tmp_path, akbari):
  if codecs.unavailable_reason("hevc"):
    pytest.skip(codecs.unavailable_reason("hevc"))
  from tfrnncomp import enhancement  # pylint: disable=g-import-not-at-top
  from tfrnncomp import metrics  # pylint: disable=g-import-not-at-top
  image_path = _write_image(tmp_path / "x.png")
  result = cli.encode_file(akbari, image_path, str(tmp_path / "x.rnc"),
                           bits_per_channel=2, enhancement_quality=70)
  assert result.enhancement_bytes > enhancement.HEADER_BYTES
  assert "HEVC enhancement layer at quality 70" in result.describe()
  data = (tmp_path / "x.rnc").read_bytes()
  header, chunks = bitstream.read(data)
  assert [c for c, _ in chunks] == [bitstream.CODE_MAP, bitstream.ENHANCEMENT]
  assert len(chunks[1][1]) == result.enhancement_bytes
  full = cli.decode_file(akbari, str(tmp_path / "x.rnc"), str(tmp_path / "a"))
  assert "base and enhancement layers" in full.describe()
  stream = cli.decompress(akbari, data)
  np.testing.assert_array_equal(
      full.x_hat[0], enhancement.decode_residual(chunks[1][1],
                                                 stream.base[0]))
  image = _image()
  assert metrics.psnr(image, full.x_hat[0]) > metrics.psnr(
      image, stream.base[0]) + 3
  # The stream cut after chunk 0 is the base layer alone.
  (tmp_path / "cut.rnc").write_bytes(bitstream.truncate(data, 1))
  base = cli.decode_file(akbari, str(tmp_path / "cut.rnc"), str(tmp_path / "b"))
  np.testing.assert_array_equal(base.x_hat, stream.base)


def test_target_bpp_picks_the_largest_bits_per_channel_that_fits(tmp_path,
                                                                 akbari):
  image_path = _write_image(tmp_path / "x.png", height=64, width=80)
  image = image_io.read_image(image_path)
  sizes = {b: len(cli.compress(akbari, image, b)) for b in range(1, 9)}
  bpp = {b: size * 8 / (64 * 80) for b, size in sizes.items()}
  target = (bpp[4] + bpp[5]) / 2
  expected = max(b for b in bpp if bpp[b] <= target)
  chosen = cli.encode_file(akbari, image_path, str(tmp_path / "t.rnc"),
                           bpp=target)
  assert chosen.bits_per_channel == expected and chosen.file_bpp <= target
  assert chosen.file_bytes == sizes[expected]
  assert chosen.nominal_bpp == 4 * expected / 256
  with pytest.raises(errors.InputError, match="even B=1"):
    cli.encode_file(akbari, image_path, str(tmp_path / "u.rnc"),
                    bpp=bpp[1] * 0.9)
  assert not (tmp_path / "u.rnc").exists()


def test_streams_meet_the_other_systems_model_with_one_line(
    tmp_path, run_tool, akbari_tiny_model_dir, tiny_model_dir):
  image_path = _write_image(tmp_path / "x.png")
  cli.encode_file(akbari_tiny_model_dir, image_path, str(tmp_path / "a.rnc"),
                  bits_per_channel=5)
  cli.encode_file(tiny_model_dir, image_path, str(tmp_path / "r.rnc"), 2)
  result = run_tool("decoder", "--input_codes=a.rnc",
                    "--output_directory=o1", f"--model={tiny_model_dir}",
                    cwd=tmp_path)
  _one_line_error(result, "decoder", "a.rnc was made by codec akbari2020 "
                  "akbari2020_tiny (weights ")
  assert "is toderici2017 tiny (weights " in result[2]
  result = run_tool("decoder", "--input_codes=r.rnc",
                    "--output_directory=o2",
                    f"--model={akbari_tiny_model_dir}", cwd=tmp_path)
  _one_line_error(result, "decoder", "r.rnc was made by codec toderici2017 "
                  "tiny (weights ")
  assert "is akbari2020 akbari2020_tiny (weights " in result[2]
  # Other weights of the same system and name.
  other = tmp_path / "retrained"
  shutil.copytree(akbari_tiny_model_dir, other)
  (other / "model.json").write_text(
      '{"name": "akbari2020_tiny", "weights_sha256": "' + "0" * 64 + '"}')
  with pytest.raises(errors.ModelError, match=r"made by codec akbari2020 "
                     r"akbari2020_tiny \(weights [0-9a-f]{12}\), the model "
                     r"\S*retrained is akbari2020 akbari2020_tiny \(weights "
                     r"000000000000\)$"):
    cli.decode_file(str(other), str(tmp_path / "a.rnc"), str(tmp_path / "o3"))
  # An .npz holds recurrent codes only.
  cli.encode_file(tiny_model_dir, image_path, str(tmp_path / "r.npz"), 2)
  with pytest.raises(errors.ModelError, match="an .npz of recurrent codes"):
    cli.decode_file(akbari_tiny_model_dir, str(tmp_path / "r.npz"),
                    str(tmp_path / "o4"))
  assert not [p for p in os.listdir(tmp_path) if p.startswith("o")]


ERRORS = [
    # (tool, arguments, message, exit status)
    ("encoder", ["--iteration=3"], "--iteration is for the recurrent "
     "systems", 2),
    ("encoder", ["--bits_per_channel=9"], "--bits_per_channel must be between "
     "1 and 8", 2),
    ("encoder", ["--bits_per_channel=2", "--bpp=1"], "not both", 2),
    ("encoder", ["--enhancement_quality=best"], "--enhancement_quality must "
     "be 'none' or between 0 and 100", 2),
    ("encoder", ["--bits_per_channel=2", "--entropy_coding=off"],
     "--entropy_coding is for recurrent models", 2),
    ("encoder", ["--output_codes=c.npz"], "akbari2020 codes have no .npz "
     "form", 1),
    ("encoder", ["--bits_per_channel=2", "--model=RECURRENT"],
     "--bits_per_channel is for akbari2020 models", 2),
    ("decoder", ["--iteration=0"], "a.rnc is an akbari2020 stream, which "
     "decodes to one image", 1),
]


@pytest.mark.parametrize("tool,args,message,status", ERRORS,
                         ids=[e[2] for e in ERRORS])
def test_tool_errors_are_one_line(tmp_path, run_tool, akbari,
                                  akbari_tiny_model_dir, tiny_model_dir, tool,
                                  args, message, status):
  _write_image(tmp_path / "x.png")
  (tmp_path / "a.rnc").write_bytes(cli.compress(akbari, _image(), 2))
  args = [a.replace("RECURRENT", tiny_model_dir) for a in args]
  if not any(a.startswith("--model") for a in args):
    args.append(f"--model={akbari_tiny_model_dir}")
  # The last of a repeated flag counts.
  args = (["--input_image=x.png", "--output_codes=c.rnc"] if tool == "encoder"
          else ["--input_codes=a.rnc", "--output_directory=out"]) + args
  before = sorted(os.listdir(tmp_path))
  _one_line_error(run_tool(tool, *args, cwd=tmp_path), tool,
                  message, status)
  assert sorted(os.listdir(tmp_path)) == before
