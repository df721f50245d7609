"""tools/encoder.py and tools/decoder.py: end to end with a tiny model.

The operations are tested in-process (tfrnncomp.cli, which the tools call);
the command lines as subprocesses, for their exit status and one-line errors.
Most error cases are found before TensorFlow is imported, so those
subprocesses are quick; only the successful runs load a model.

Bitstreams are tested with a copy of the tiny codec that has an entropy model
(trained for a few steps on the tiny codec's own codes), so that both chunk
codings, range-coded and raw, occur.
"""

import io
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import image_io
from tfrnncomp import testing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODER = os.path.join(ROOT, "tools", "encoder.py")
DECODER = os.path.join(ROOT, "tools", "decoder.py")
FIXTURE = os.path.join(ROOT, "..", "shared", "fixtures",
                       "original_release_output_codes.npz")


_image = testing.gradient_image  # A smooth gradient with some noise.


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
     "text.png is neither a tfrnncomp bitstream nor an .npz code file", "out"),
    (ENCODER, ["--input_image=x.png", "--output_codes=c.rnc", "--bpp=0"],
     "--bpp must be positive", "c.rnc"),
    (ENCODER, ["--input_image=x.png", "--output_codes=c.rnc", "--bpp=1",
               "--iteration=3"], "not both", "c.rnc"),
    (DECODER, [f"--input_codes={FIXTURE}", "--output_directory=out",
               "--iteration=16"], "cannot decode 17 iterations", "out"),
    (DECODER, ["--input_codes=c.npz", "--output_directory=out"],
     "c.npz: no such file", "out"),
    (ENCODER, ["--input_image=empty.png", "--output_codes=c.npz"],
     "empty.png is empty", "c.npz"),
    (ENCODER, ["--input_image=.", "--output_codes=c.npz"],
     ". is a directory, not an image", "c.npz"),
    (ENCODER, ["--input_image=x.png", "--output_codes=no_dir/c.npz"],
     "does not exist", "no_dir"),
]


@pytest.mark.parametrize("tool,args,message,absent", ERRORS,
                         ids=[f"{os.path.basename(e[0])}-{e[2]}"
                              for e in ERRORS])
def test_command_line_errors_are_one_line(tmp_path, tool, args, message,
                                          absent):
  _write_image(tmp_path / "x.png", 17, 33)
  (tmp_path / "text.png").write_text("not an image\n")
  (tmp_path / "empty.png").write_bytes(b"")
  (tmp_path / "existing.npz").write_bytes(b"keep")
  before = sorted(os.listdir(tmp_path))
  result = _run(tool, *args, cwd=tmp_path)
  _assert_one_line_error(result, tool, message)
  assert "Traceback" not in result.stderr
  assert sorted(os.listdir(tmp_path)) == before
  assert absent is None or not (tmp_path / absent).exists()
  assert (tmp_path / "existing.npz").read_bytes() == b"keep"


# --- Bitstreams. --------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_entropy(tiny_entropy_dir):
  return cli.load_codec(tiny_entropy_dir)


def test_bitstream_decodes_to_the_pixels_of_the_npz_path(tmp_path, tiny,
                                                         tiny_entropy):
  image_path = _write_image(tmp_path / "x.png", 45, 70)
  npz = cli.encode_file(tiny, image_path, str(tmp_path / "x.npz"), 4)
  stream = cli.encode_file(tiny_entropy, image_path, str(tmp_path / "x.rnc"),
                           4, entropy_coding="always")
  assert stream.format == "bitstream" and npz.format == "npz"
  assert stream.entropy_model == "binary_pixelrnn"
  assert stream.range_coded == 4
  # "auto" takes the smaller of range-coded and raw for each iteration: never
  # larger than either ("off"); the untrained tiny codec's codes are nearly
  # random, so which wins varies (the shipped model's tests check the gain).
  auto = cli.encode_file(tiny_entropy, image_path, str(tmp_path / "auto.rnc"),
                         4)
  off = cli.encode_file(tiny_entropy, image_path, str(tmp_path / "off.rnc"),
                        4, entropy_coding="off")
  assert off.range_coded == 0 and off.entropy_model == ""
  assert off.describe().endswith("raw bits: entropy coding off)")
  _, always_chunks = bitstream.read((tmp_path / "x.rnc").read_bytes())
  _, auto_chunks = bitstream.read((tmp_path / "auto.rnc").read_bytes())
  _, off_chunks = bitstream.read((tmp_path / "off.rnc").read_bytes())
  assert all(coding == bitstream.RAW for coding, _ in off_chunks)
  for (_, a), (_, b), (_, c) in zip(auto_chunks, always_chunks, off_chunks):
    assert len(a) == min(len(b), len(c))
  assert auto.range_coded == sum(len(b) < len(c) for (_, b), (_, c) in zip(
      always_chunks, off_chunks))
  for name in ("auto.rnc", "off.rnc"):
    np.testing.assert_array_equal(
        cli.decompress(tiny_entropy, (tmp_path / name).read_bytes()).codes,
        codes_io.load_codes(npz.output_codes)[0][:, 0])
  from_npz = cli.decode_file(tiny, npz.output_codes, str(tmp_path / "a"))
  from_stream = cli.decode_file(tiny_entropy, stream.output_codes,
                                str(tmp_path / "b"))
  np.testing.assert_array_equal(from_stream.x_hat, from_npz.x_hat)
  # The stream's codes are the codec's, bit for bit.
  with open(tmp_path / "x.rnc", "rb") as f:
    decompressed = cli.decompress(tiny_entropy, f.read())
  np.testing.assert_array_equal(decompressed.codes,
                                codes_io.load_codes(npz.output_codes)[0][:, 0])


def test_every_cut_at_an_iteration_boundary_decodes(tmp_path, tiny_entropy):
  image_path = _write_image(tmp_path / "x.png", 33, 50)
  cli.encode_file(tiny_entropy, image_path, str(tmp_path / "x.rnc"), 4,
                  entropy_coding="always")
  with open(tmp_path / "x.rnc", "rb") as f:
    data = f.read()
  full = cli.decode_file(tiny_entropy, str(tmp_path / "x.rnc"),
                         str(tmp_path / "full")).x_hat
  for t in range(1, 4):
    cut = tmp_path / f"cut{t}.rnc"
    cut.write_bytes(bitstream.truncate(data, t))
    decoded = cli.decode_file(tiny_entropy, str(cut), str(tmp_path / f"o{t}"))
    assert len(decoded.paths) == t
    np.testing.assert_array_equal(decoded.x_hat, full[:t])
  header, _ = bitstream.read(data)
  (tmp_path / "mid.rnc").write_bytes(data[:header.stream_size(2) + 1])
  with pytest.raises(errors.FormatError, match="ends inside the chunk of "
                     "iteration 2"):
    cli.decode_file(tiny_entropy, str(tmp_path / "mid.rnc"),
                    str(tmp_path / "mid"))
  decoded = cli.decode_file(tiny_entropy, str(tmp_path / "mid.rnc"),
                            str(tmp_path / "mid"), iterations=2)
  np.testing.assert_array_equal(decoded.x_hat, full[:2])


def test_formats_are_told_apart_by_content(tmp_path, tiny_entropy):
  image_path = _write_image(tmp_path / "x.png", 17, 33)
  cli.encode_file(tiny_entropy, image_path, str(tmp_path / "a.rnc"), 2)
  cli.encode_file(tiny_entropy, image_path, str(tmp_path / "b.npz"), 2)
  os.rename(tmp_path / "a.rnc", tmp_path / "stream.npz")
  os.rename(tmp_path / "b.npz", tmp_path / "codes.bin")
  one = cli.decode_file(tiny_entropy, str(tmp_path / "stream.npz"),
                        str(tmp_path / "one"))
  two = cli.decode_file(tiny_entropy, str(tmp_path / "codes.bin"),
                        str(tmp_path / "two"))
  np.testing.assert_array_equal(one.x_hat, two.x_hat)


def test_streams_decode_only_with_the_models_that_made_them(
    tmp_path, tiny, tiny_entropy, tiny32_model_dir):
  image_path = _write_image(tmp_path / "x.png", 64, 96)
  stream = str(tmp_path / "x.rnc")
  assert cli.encode_file(tiny_entropy, image_path, stream, 3,
                         entropy_coding="always").range_coded == 3
  # tiny32 is also named "tiny": its weights hash tells it apart.
  with pytest.raises(errors.ModelError, match=r"made by codec toderici2017 "
                     r"tiny \(weights [0-9a-f]{12}\), the model \S*tiny32 is "
                     r"toderici2017 tiny \(weights [0-9a-f]{12}\)$"):
    cli.decode_file(tiny32_model_dir, stream, str(tmp_path / "out"))
  # The same codec without the entropy model that range-coded the stream.
  with pytest.raises(errors.ModelError, match="range-coded with entropy model "
                     "binary_pixelrnn .* has no entropy model"):
    cli.decode_file(tiny, stream, str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()
  # Without an entropy model, streams are raw and need none.
  raw = cli.encode_file(tiny, image_path, str(tmp_path / "raw.rnc"), 3)
  assert raw.range_coded == 0 and "no entropy model" in raw.describe()
  header, _ = bitstream.read((tmp_path / "raw.rnc").read_bytes())
  assert header.entropy_name == "" and raw.file_bytes == header.size + 3 * 24
  decoded = cli.decode_file(tiny_entropy, str(tmp_path / "raw.rnc"),
                            str(tmp_path / "raw"))
  assert decoded.iterations == 3


def test_an_entropy_model_of_another_codec_is_refused(tmp_path,
                                                      tiny_entropy_dir,
                                                      tiny32_model_dir):
  directory = str(tmp_path / "tiny32")
  shutil.copytree(tiny32_model_dir, directory)
  shutil.copytree(os.path.join(tiny_entropy_dir, "entropy"),
                  os.path.join(directory, "entropy"))
  with pytest.raises(errors.ModelError, match="was made for codec tiny "):
    cli.load_codec(directory).entropy  # pylint: disable=expression-not-assigned


def test_target_bpp_picks_the_most_iterations_that_fit(tmp_path,
                                                       tiny_entropy):
  image_path = _write_image(tmp_path / "x.png", 48, 64)
  sizes = [cli.encode_file(tiny_entropy, image_path, str(tmp_path / f"{t}.rnc"),
                           t).file_bytes for t in range(1, 8)]
  assert all(np.diff(sizes) > 0)
  bpp = [size * 8 / (48 * 64) for size in sizes]
  target = (bpp[4] + bpp[5]) / 2
  chosen = cli.encode_file(tiny_entropy, image_path, str(tmp_path / "b.rnc"),
                           bpp=target)
  assert chosen.iterations == 5 and chosen.file_bpp <= target
  assert ((tmp_path / "b.rnc").read_bytes() ==
          (tmp_path / "5.rnc").read_bytes())
  with pytest.raises(errors.InputError, match="even 1 iteration"):
    cli.encode_file(tiny_entropy, image_path, str(tmp_path / "c.rnc"),
                    bpp=bpp[0] * 0.9)
  assert not (tmp_path / "c.rnc").exists()
  npz = cli.encode_file(tiny_entropy, image_path, str(tmp_path / "d.npz"),
                        bpp=3.)  # The .npz's zip structure costs 1.6 bpp here.
  assert npz.file_bpp <= 3. and npz.format == "npz" and npz.iterations > 1


def test_command_lines_with_bitstreams(tmp_path, tiny_entropy_dir):
  _write_image(tmp_path / "x.png", 96, 128)
  result = _run(ENCODER, "--input_image=x.png", "--output_codes=x.rnc",
                "--bpp=0.2", f"--model={tiny_entropy_dir}", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert result.stderr == ""
  assert result.stdout.startswith("x.rnc: ") and "range-coded" in result.stdout
  data = (tmp_path / "x.rnc").read_bytes()
  assert len(data) * 8 / (96 * 128) <= 0.2
  result = _run(ENCODER, "--input_image=x.png", "--output_codes=y.rnc",
                "--iteration=1", "--entropy_coding=always",
                f"--model={tiny_entropy_dir}", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  assert "2 of 2 iterations range-coded" in result.stdout
  result = _run(ENCODER, "--input_image=x.png", "--output_codes=z.rnc",
                "--entropy_coding=sometimes", f"--model={tiny_entropy_dir}",
                cwd=tmp_path)
  _assert_one_line_error(result, ENCODER, "--entropy_coding")
  assert not (tmp_path / "z.rnc").exists()

  # (The decoder's successful runs go through cli.decode_file, tested above.)
  # Corrupt files fail with one line, before any model is loaded.
  for name, corrupt, message in [
      ("header.rnc", 20, "header fails its CRC-32 check"),
      ("payload.rnc", len(data) - 1, "fails its CRC-32 check"),
      ("cut.rnc", None, "ends inside the chunk")]:
    broken = bytearray(data)
    if corrupt is None:
      broken = broken[:-1]
    else:
      broken[corrupt] ^= 0x04
    (tmp_path / name).write_bytes(bytes(broken))
    result = _run(DECODER, f"--input_codes={name}", "--output_directory=bad",
                  f"--model={tiny_entropy_dir}", cwd=tmp_path)
    _assert_one_line_error(result, DECODER, message)
    assert result.returncode == 1
    assert not (tmp_path / "bad").exists()


def test_code_search_streams_decode_closer_with_any_decoder(tmp_path,
                                                            tiny_entropy_dir):
  image_path = _write_image(tmp_path / "x.png", 64, 80)
  image = np.asarray(Image.open(image_path), float)
  mse = {}
  for steps in (0, 3):
    result = _run(ENCODER, "--input_image=x.png", f"--output_codes={steps}.rnc",
                  "--iteration=2", f"--search_steps={steps}",
                  f"--model={tiny_entropy_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ("codes searched, 3 steps per iteration" in result.stdout) == (
        steps > 0)
    decoded = cli.decode_file(tiny_entropy_dir, str(tmp_path / f"{steps}.rnc"),
                              str(tmp_path / f"out{steps}"))
    mse[steps] = [((x_hat.astype(float) - image) ** 2).mean()
                     for x_hat in decoded.x_hat]
  assert len(mse[3]) == 3
  assert all(s < p for s, p in zip(mse[3], mse[0])), mse
  result = _run(ENCODER, "--input_image=x.png", "--output_codes=bad.rnc",
                "--search_steps=-1", f"--model={tiny_entropy_dir}",
                cwd=tmp_path)
  _assert_one_line_error(result, ENCODER, "--search_steps")
  assert not (tmp_path / "bad.rnc").exists()


def test_code_search_needs_a_signature_old_exports_lack(tmp_path, tiny):
  image = _image(32, 32)
  old = cli.load_codec(tiny.directory)
  old._encode_search = None  # As exported before the search.
  np.testing.assert_array_equal(old.encode(image, 2), tiny.encode(image, 2))
  with pytest.raises(errors.ModelError, match="re-export"):
    old.encode(image, 2, search_steps=2)
  with pytest.raises(errors.InputError, match="search steps"):
    tiny.encode(image, 2, search_steps=-1)


# --- Encoder inputs: each kind of image, or a clear error. ------------------


def _save(image, path, **kwargs):
  image.save(str(path), **kwargs)
  return str(path)


def _exif_rotated_jpeg(path):
  exif = Image.Exif()
  exif[0x0112] = 6  # Displayed rotated 90 degrees clockwise.
  return _save(Image.fromarray(_image(20, 36)), path, exif=exif.tobytes())


def _gif(path):
  frames = [Image.fromarray(_image(20, 36, seed)).quantize(32)
            for seed in range(3)]
  return _save(frames[0], path, save_all=True, append_images=frames[1:])


IMAGE_KINDS = {
    # name: (writer(path) -> path, (height, width) coded).
    "16-bit gray png": (lambda p: _save(Image.fromarray(
        (_image(20, 36)[..., 0].astype(np.uint16) * 257)), p / "a.png"),
                        (20, 36)),
    "16-bit gray tiff": (lambda p: _save(Image.fromarray(
        (_image(20, 36)[..., 0].astype(np.uint16) * 257)), p / "a.tiff"),
                         (20, 36)),
    "palette png": (lambda p: _save(Image.fromarray(_image(20, 36)).quantize(
        16), p / "a.png"), (20, 36)),
    "transparent palette png": (lambda p: _save(Image.fromarray(
        _image(20, 36)).quantize(16), p / "a.png", transparency=3), (20, 36)),
    "rgba png": (lambda p: _save(Image.fromarray(np.dstack(
        [_image(20, 36), _image(20, 36)[..., :1]])), p / "a.png"), (20, 36)),
    "la png": (lambda p: _save(Image.fromarray(_image(20, 36)[..., :2], "LA"),
                               p / "a.png"), (20, 36)),
    "cmyk jpeg": (lambda p: _save(Image.fromarray(_image(20, 36)).convert(
        "CMYK"), p / "a.jpg"), (20, 36)),
    "gray jpeg": (lambda p: _save(Image.fromarray(_image(20, 36)[..., 0]),
                                  p / "a.jpg"), (20, 36)),
    "exif-rotated jpeg": (lambda p: _exif_rotated_jpeg(p / "a.jpg"), (36, 20)),
    "animated gif": (lambda p: _gif(p / "a.gif"), (20, 36)),
}


@pytest.mark.parametrize("kind", sorted(IMAGE_KINDS))
def test_encoder_codes_every_kind_of_image_by_the_rule(tmp_path, tiny, kind):
  writer, (height, width) = IMAGE_KINDS[kind]
  path = writer(tmp_path)
  result = cli.encode_file(tiny, path, str(tmp_path / "c.npz"), 1)
  assert (result.height, result.width) == (height, width)
  codes, stored_height, stored_width = codes_io.load_codes(str(tmp_path /
                                                               "c.npz"))
  assert (stored_height, stored_width) == (height, width)
  # What is coded is what image_io's rule reads.
  np.testing.assert_array_equal(
      codes[:, 0], tiny.encode(image_io.read_image(path), 1))


def _png_bytes(height=40, width=40):
  buffer = io.BytesIO()
  Image.fromarray(_image(height, width)).save(buffer, format="PNG")
  return buffer.getvalue()


def _jpeg_bytes():
  buffer = io.BytesIO()
  Image.fromarray(_image(48, 48)).save(buffer, format="JPEG")
  return buffer.getvalue()


def _png_header(width, height):
  """A PNG that declares width x height and holds no pixels."""
  import struct  # pylint: disable=g-import-not-at-top
  import zlib  # pylint: disable=g-import-not-at-top
  def chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data)))
  return (b"\x89PNG\r\n\x1a\n" +
          chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0,
                                     0)) +
          chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


BAD_IMAGES = {
    "empty.png": (b"", "is empty"),
    "corrupt.png": (_png_bytes()[:100] + bytes(400) + _png_bytes()[500:],
                    "corrupt or truncated"),
    "truncated.png": (_png_bytes()[:len(_png_bytes()) // 2],
                      "corrupt or truncated"),
    "truncated.jpg": (_jpeg_bytes()[:len(_jpeg_bytes()) // 2],
                      "corrupt or truncated"),
    "corrupt.jpg": (_jpeg_bytes()[:2] + bytes(500), "not an image file"),
    "bomb.png": (_png_header(12000, 12000), "decompression bomb"),
    "huge.png": (_png_header(100000, 100000), "decompression bomb"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_encoder_refuses_unreadable_images_before_loading_the_model(
    tmp_path, name):
  data, message = BAD_IMAGES[name]
  (tmp_path / name).write_bytes(data)
  # The model is loaded after the input is read: a missing one shows it.
  with pytest.raises(errors.InputError, match=message) as info:
    cli.encode_file(str(tmp_path / "no_model"), str(tmp_path / name),
                    str(tmp_path / "c.rnc"), 1)
  assert "\n" not in str(info.value) and name in str(info.value)
  assert sorted(os.listdir(tmp_path)) == [name]


@pytest.fixture
def unwritable_directory(tmp_path):
  """A directory nobody can create files in (chattr +i for root)."""
  directory = tmp_path / "locked"
  directory.mkdir()
  if os.geteuid() == 0:
    if subprocess.run(["chattr", "+i", str(directory)],
                      capture_output=True).returncode != 0:
      pytest.skip("running as root without chattr +i")
    yield directory
    subprocess.run(["chattr", "-i", str(directory)], check=True)
  else:
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)


def test_encoder_refuses_unusable_outputs_before_loading_the_model(
    tmp_path, unwritable_directory):
  image = _write_image(tmp_path / "x.png", 17, 33)
  (tmp_path / "out.npz").mkdir()
  for output, message in [
      (tmp_path / "out.npz", "out.npz is a directory"),
      (tmp_path / "missing" / "c.npz", "directory .*missing does not exist"),
      (unwritable_directory / "c.npz", "locked is not writable"),
      (tmp_path / "x.png" / "c.npz", "x.png does not exist")]:
    with pytest.raises(errors.InputError, match=message):
      cli.encode_file(str(tmp_path / "no_model"), image, str(output), 1)
  assert not os.listdir(unwritable_directory)
  assert sorted(os.listdir(tmp_path)) == ["locked", "out.npz", "x.png"]


# --- An interrupted encoder leaves nothing behind. -------------------------


def _wait_for_tensorflow(process, timeout=300.):
  """Waits until ``process`` has loaded TensorFlow (it is inside main)."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and process.poll() is None:
    try:
      with open(f"/proc/{process.pid}/maps") as f:
        if "_pywrap_tensorflow_internal" in f.read():
          return
    except OSError:
      pass
    time.sleep(0.02)
  pytest.fail("the encoder did not load TensorFlow")


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL early", "SIGKILL late"])
def test_an_interrupted_encoder_leaves_no_partial_output(tmp_path,
                                                         tiny_model_dir, how):
  _write_image(tmp_path / "x.png", 256, 384)
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  process = subprocess.Popen(
      [sys.executable, ENCODER, "--input_image=x.png", "--output_codes=x.rnc",
       "--iteration=15", f"--model={tiny_model_dir}"], cwd=str(tmp_path),
      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    _wait_for_tensorflow(process)
    if how == "SIGKILL late":
      time.sleep(2.)  # Loading the model, encoding or writing.
    process.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
  names = sorted(os.listdir(tmp_path))
  if process.returncode == 0:  # It finished first: the file is complete.
    assert names == ["x.png", "x.rnc"] and stdout.startswith("x.rnc: ")
  if names != ["x.png"]:
    # The output appears only by an atomic rename, so a process killed after
    # it (e.g. while the interpreter shuts down) leaves a complete file, and
    # never a temporary one.
    assert names == ["x.png", "x.rnc"]
    cli.decompress(cli.load_codec(tiny_model_dir),
                   (tmp_path / "x.rnc").read_bytes())
  if process.returncode == 0:
    return
  if how == "SIGINT":
    assert process.returncode == 130
    assert stderr.strip() == "encoder.py: error: interrupted"
  else:
    assert process.returncode == -signal.SIGKILL


def test_a_stream_of_another_entropy_model_names_both(tmp_path,
                                                      tiny_entropy):
  image_path = _write_image(tmp_path / "x.png", 64, 96)
  cli.encode_file(tiny_entropy, image_path, str(tmp_path / "x.rnc"), 2,
                  entropy_coding="always")
  header, chunks = bitstream.read((tmp_path / "x.rnc").read_bytes())
  assert all(c == bitstream.RANGE_CODED for c, _ in chunks)
  other = "0123456789ab" + "0" * 52
  (tmp_path / "other.rnc").write_bytes(bitstream.write(
      header.system, header.codec_name, header.codec_sha256, header.height,
      header.width, header.bits, chunks, "binary_pixelrnn_v2", other))
  ours = tiny_entropy.entropy.weights_sha256[:12]
  with pytest.raises(errors.ModelError, match=(
      rf"range-coded with entropy model binary_pixelrnn_v2 \(weights "
      rf"0123456789ab\), the model \S+ has binary_pixelrnn \(weights "
      rf"{ours}\)")):
    cli.decode_file(tiny_entropy, str(tmp_path / "other.rnc"),
                    str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()
