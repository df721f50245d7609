"""tools/encoder.py and tools/decoder.py: end to end with a tiny model.

The operations are tested in-process (tfrnncomp.cli, which the tools call);
the command lines as subprocesses, for their exit status and one-line errors.
Most error cases are found before TensorFlow is imported, so those
subprocesses are quick; only the two successful runs load a model.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import cli
from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import image_io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODER = os.path.join(ROOT, "tools", "encoder.py")
DECODER = os.path.join(ROOT, "tools", "decoder.py")
FIXTURE = os.path.join(ROOT, "..", "shared", "fixtures",
                       "original_release_output_codes.npz")


def _image(height, width, seed=0):
  """A smooth gradient with some noise."""
  rng = np.random.default_rng(seed)
  rows, cols = np.mgrid[:height, :width]
  x = np.stack([rows * 255. / max(height - 1, 1),
                cols * 255. / max(width - 1, 1),
                (rows + cols) % 64 * 4.], axis=-1)
  x += rng.normal(0., 8., x.shape)
  return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _write_image(path, height, width):
  Image.fromarray(_image(height, width)).save(str(path))
  return str(path)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
  return cli.load_codec(tiny_model_dir)


@pytest.mark.parametrize("height,width", [(17, 33), (451, 300)])
def test_encode_and_decode_files_keep_the_input_size(tmp_path, tiny, height,
                                                     width):
  image_path = _write_image(tmp_path / "x.png", height, width)
  codes_path = str(tmp_path / "codes.npz")
  encoded = cli.encode_file(tiny, image_path, codes_path, 3)

  h, w = -(-height // 16), -(-width // 16)
  codes, stored_height, stored_width = codes_io.load_codes(codes_path)
  assert codes.shape == (3, 1, h, w, tiny.bits)
  assert (stored_height, stored_width) == (height, width)
  # Nominal: bits / 256 per iteration and pixel of the padded image.
  assert encoded.nominal_bpp == 3 * tiny.bits / 256
  assert codes.size / (height * width) == pytest.approx(
      encoded.nominal_bpp * (16 * h * 16 * w) / (height * width))
  assert encoded.file_bpp == os.path.getsize(codes_path) * 8 / (height * width)

  decoded = cli.decode_file(tiny, codes_path, str(tmp_path / "out"))
  assert sorted(os.listdir(tmp_path / "out")) == [
      "image_00.png", "image_01.png", "image_02.png"]
  assert decoded.x_hat.shape == (3, height, width, 3)
  for path, x_hat in zip(decoded.paths, decoded.x_hat):
    np.testing.assert_array_equal(image_io.read_image(path), x_hat)

  # Fewer iterations: a prefix of the codes, and of the reconstructions.
  encoded = cli.encode_file(tiny, image_path, str(tmp_path / "c2.npz"), 2)
  np.testing.assert_array_equal(
      codes_io.load_codes(encoded.output_codes)[0], codes[:2])
  partial = cli.decode_file(tiny, codes_path, str(tmp_path / "out2"), 2)
  assert len(os.listdir(tmp_path / "out2")) == 2
  np.testing.assert_array_equal(partial.x_hat, decoded.x_hat[:2])


def test_original_release_file_decodes_to_16_images(tmp_path,
                                                    tiny32_model_dir):
  out = tmp_path / "out"
  decoded = cli.decode_file(tiny32_model_dir, FIXTURE, str(out))
  assert sorted(os.listdir(out)) == [f"image_{i:02d}.png" for i in range(16)]
  for path in decoded.paths:
    with Image.open(path) as image:
      assert image.size == (960, 576) and image.mode == "RGB"


def test_code_bits_must_match_the_model(tmp_path, tiny):
  out = tmp_path / "out"
  with pytest.raises(errors.ModelError, match="32 bits"):
    cli.decode_file(tiny, FIXTURE, str(out))
  assert not out.exists()


def test_decode_refuses_more_iterations_than_the_file_holds(tmp_path, tiny):
  with pytest.raises(errors.InputError, match="holds 16"):
    cli.decode_file(tiny, FIXTURE, str(tmp_path / "out"), 17)
  assert not os.listdir(tmp_path)


def test_load_codec_errors(tmp_path):
  with pytest.raises(errors.ModelError, match="does not exist"):
    cli.load_codec(str(tmp_path / "missing"))
  with pytest.raises(errors.ModelError, match="not a SavedModel"):
    cli.load_codec(str(tmp_path))
  (tmp_path / "saved_model.pb").write_bytes(b"not a protocol buffer")
  with pytest.raises(errors.ModelError, match="cannot load"):
    cli.load_codec(str(tmp_path))


# --- The command lines. -----------------------------------------------------


def _run(tool, *args, cwd):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The tools' own default applies.
  return subprocess.run([sys.executable, tool, *args], capture_output=True,
                        text=True, env=env, cwd=str(cwd), timeout=600)


def _assert_one_line_error(result, tool, match):
  assert result.returncode != 0, result.stdout
  lines = result.stderr.strip().splitlines()
  prefix = f"{os.path.basename(tool)}: error: "
  assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
  assert match in lines[0], lines[0]


def test_command_lines_round_trip(tmp_path, tiny_model_dir):
  _write_image(tmp_path / "x.png", 17, 33)
  result = _run(ENCODER, "--input_image=x.png", "--output_codes=codes.npz",
                "--iteration=2", f"--model={tiny_model_dir}", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  assert result.stdout.count("\n") == 1
  assert result.stdout.startswith("codes.npz: 3 iterations, 33x17 pixels")
  assert codes_io.load_codes(str(tmp_path / "codes.npz"))[0].shape[0] == 3

  result = _run(DECODER, "--input_codes=codes.npz", "--output_directory=out",
                "--iteration=1", f"--model={tiny_model_dir}", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  assert sorted(os.listdir(tmp_path / "out")) == ["image_00.png",
                                                  "image_01.png"]
  for name in ("image_00.png", "image_01.png"):
    assert image_io.read_image(str(tmp_path / "out" / name)).shape == (17, 33,
                                                                       3)

  # All three would be written; one exists: nothing is written.
  os.remove(tmp_path / "out" / "image_00.png")
  result = _run(DECODER, "--input_codes=codes.npz", "--output_directory=out",
                f"--model={tiny_model_dir}", cwd=tmp_path)
  _assert_one_line_error(result, DECODER, "image_01.png exists")
  assert sorted(os.listdir(tmp_path / "out")) == ["image_01.png"]


ERRORS = [
    # (tool, arguments, message, file that must not exist)
    (ENCODER, ["--output_codes=c.npz"], "--input_image is required", "c.npz"),
    (ENCODER, ["--input_image=missing.png", "--output_codes=c.npz"],
     "missing.png: no such file", "c.npz"),
    (ENCODER, ["--input_image=text.png", "--output_codes=c.npz"],
     "text.png is not an image", "c.npz"),
    (ENCODER, ["--input_image=x.png", "--output_codes=c.npz",
               "--iteration=16"], "--iteration must be between 0 and 15",
     "c.npz"),
    (ENCODER, ["--input_image=x.png", "--output_codes=c.npz",
               "--iteration=x"], "--iteration=x", "c.npz"),
    (ENCODER, ["--input_image=x.png", "--output_codes=existing.npz"],
     "existing.npz exists", None),
    (ENCODER, ["--input_image=x.png", "--output_codes=c.npz",
               "--model=no_model"], "no_model does not exist", "c.npz"),
    (DECODER, ["--input_codes=text.png", "--output_directory=out"],
     "text.png is not an .npz code file", "out"),
    (DECODER, [f"--input_codes={FIXTURE}", "--output_directory=out",
               "--iteration=16"], "cannot decode 17 iterations", "out"),
    (DECODER, ["--input_codes=c.npz", "--output_directory=out"],
     "c.npz: no such file", "out"),
]


@pytest.mark.parametrize("tool,args,message,absent", ERRORS,
                         ids=[f"{os.path.basename(e[0])}-{e[2]}"
                              for e in ERRORS])
def test_command_line_errors_are_one_line(tmp_path, tool, args, message,
                                          absent):
  _write_image(tmp_path / "x.png", 17, 33)
  (tmp_path / "text.png").write_text("not an image\n")
  (tmp_path / "existing.npz").write_bytes(b"keep")
  before = sorted(os.listdir(tmp_path))
  result = _run(tool, *args, cwd=tmp_path)
  _assert_one_line_error(result, tool, message)
  assert "Traceback" not in result.stderr
  assert sorted(os.listdir(tmp_path)) == before
  assert absent is None or not (tmp_path / absent).exists()
  assert (tmp_path / "existing.npz").read_bytes() == b"keep"
