"""The decoder under hostile input: fuzzed files decode or fail cleanly.

A few thousand seeded cases run in-process with the tiny model (most are
rejected by the header checks before any TensorFlow op); a handful of them
run through tools/decoder.py as subprocesses. The malformed inputs fuzzing
found are kept as regression cases. tools/fuzz_decoder.py runs the long
campaign (>= 100,000 cases).
"""

import io
import os
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

from tfrnncomp import bitstream
from tfrnncomp import cli
from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import fuzzing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODER = os.path.join(ROOT, "tools", "decoder.py")
FUZZ_TOOL = os.path.join(ROOT, "tools", "fuzz_decoder.py")
CASES = 2500


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
  return cli.load_codec(tiny_model_dir)


@pytest.fixture(scope="module")
def seeds(tiny):
  return fuzzing.make_seeds(tiny)


def test_fuzzed_files_decode_or_raise_tfrnncomp_errors(tiny, seeds,
                                                       monkeypatch,
                                                       tmp_path):
  calls = []  # Network calls, i.e. cases that reached TensorFlow.
  decode = tiny.decode
  monkeypatch.setattr(tiny, "decode", lambda *a: calls.append(1) or decode(
      *a))
  begin = time.perf_counter()
  report = fuzzing.fuzz(tiny, CASES, seed=0, seeds=seeds,
                        corpus_dir=str(tmp_path / "findings"), time_limit=5.,
                        memory_limit_mb=512.)
  assert not report.findings, report.describe()
  assert report.cases == CASES
  assert time.perf_counter() - begin < 60.
  outcomes = {k: sum(v for (_, o), v in report.outcomes.items() if o == k)
              for k in ("decoded", "error")}
  assert outcomes["decoded"] + outcomes["error"] == CASES
  assert outcomes["decoded"] > 20  # Some mutations keep a file valid.
  # Every mutator ran, and most cases never reached the network.
  assert {m for m, _ in report.outcomes} == set(fuzzing.MUTATORS)
  assert len(calls) < 0.2 * CASES, len(calls)
  assert set(report.errors) <= {"FormatError", "InputError", "ModelError"}
  assert os.listdir(tmp_path / "findings") == []


def test_cases_are_deterministic(seeds):
  for index in (0, 1, 77, 1234):
    a = fuzzing.make_case(seeds, 5, index)
    b = fuzzing.make_case(seeds, 5, index)
    assert a == b
  assert fuzzing.make_case(seeds, 5, 3) != fuzzing.make_case(seeds, 6, 3)


def test_a_bug_is_reported_and_its_input_saved(tiny, seeds, monkeypatch,
                                               tmp_path):
  def broken(*args, **kwargs):
    raise KeyError("boom")
  monkeypatch.setattr(cli, "decode_file", broken)
  report = fuzzing.fuzz(tiny, 3, seed=1, seeds=seeds,
                        corpus_dir=str(tmp_path))
  assert [f.kind for f in report.findings] == ["bug"] * 3
  assert report.findings[0].detail == "KeyError: 'boom'"
  case = fuzzing.make_case(seeds, 1, 0)
  with open(report.findings[0].path, "rb") as f:
    assert f.read() == case.data
  assert "3 finding(s)" in report.describe()


# --- Oversized images: refused before anything is decoded. ----------------


def _raw_stream(height, width, bits=8, iterations=1):
  rows, columns = -(-height // 16), -(-width // 16)
  chunk = bytes(bitstream.raw_chunk_size(rows, columns, bits))
  return bitstream.write("toderici2017", "tiny", "ab" * 32, height, width,
                         bits, [(bitstream.RAW, chunk)] * iterations)


def _zero_npz(iterations, h, w, bits):
  buffer = io.BytesIO()
  np.savez_compressed(
      buffer, shape=np.int32([iterations, 1, h, w, bits]),
      codes=np.zeros(iterations * h * w * bits // 8, np.uint8))
  return buffer.getvalue()


@pytest.mark.parametrize("name,data", [
    # 8192 x 8192 pixels, raw: a 256 KB file.
    ("big.rnc", _raw_stream(8192, 8192)),
    # A range-coded chunk can be a few bytes for any image size.
    ("forged.rnc", bitstream.write(
        "toderici2017", "tiny", "ab" * 32, 16384, 16384, 8,
        [(bitstream.RANGE_CODED, b"\0")] * 64, "binary_pixelrnn",
        "cd" * 32)),
    # 64 iterations of 8192 x 8192 pixels of zeros: a 16 KB .npz whose codes
    # are 16 MiB packed, 128 MiB unpacked, and whose 64 images 12 GiB.
    ("big.npz", _zero_npz(64, 512, 512, 8)),
])
def test_images_over_the_decoding_limit_are_refused_first(tmp_path, name,
                                                          data):
  path = tmp_path / name
  path.write_bytes(data)
  assert len(data) < 300_000
  begin = time.perf_counter()
  # The model would be loaded after the checks: a missing one shows they
  # came first.
  with pytest.raises(errors.InputError, match="over the decoding limit of "
                     f"{cli.MAX_DECODE_PIXELS} pixels"):
    cli.decode_file(str(tmp_path / "no_model"), str(path),
                    str(tmp_path / "out"))
  assert time.perf_counter() - begin < 5.
  with pytest.raises(errors.ModelError, match="no_model does not exist"):
    cli.decode_file(str(tmp_path / "no_model"), str(path),
                    str(tmp_path / "out"), max_pixels=2 ** 28)
  assert not (tmp_path / "out").exists()


# --- .npz files that fuzzing found to break np.load. -----------------------


def _npy(header, payload=b""):
  return fuzzing._npy(header, payload)  # pylint: disable=protected-access


def _zip(members, method=zipfile.ZIP_STORED):
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, "w", method) as archive:
    for name, data in members.items():
      archive.writestr(name, data)
  return buffer.getvalue()


def _good_members():
  shape = np.int32([1, 1, 1, 1, 8])
  out = {}
  for name, array in (("shape", shape), ("codes", np.zeros(1, np.uint8))):
    buffer = io.BytesIO()
    np.save(buffer, array)
    out[name + ".npy"] = buffer.getvalue()
  return out


def _patched(data, signature, offset, fmt, value):
  """``data`` with a field of every ``signature`` record set to ``value``."""
  data = bytearray(data)
  at = data.find(signature)
  while at >= 0:
    struct.pack_into(fmt, data, at + offset, value)
    at = data.find(signature, at + 1)
  return bytes(data)


GOOD = _zip(_good_members())

HOSTILE_NPZ = {
    # np.load: tokenize.TokenError from the header's tokenizer.
    "unterminated header": (_zip({**_good_members(), "shape.npy": _npy(
        "{'descr': '<i4', 'fortran_order': False, 'shape': (5,")}),
                            "cannot read array 'shape'"),
    # np.load: MemoryError allocating the declared shape.
    "huge declared shape": (_zip({**_good_members(), "codes.npy": _npy(
        "{'descr': '|u1', 'fortran_order': False, "
        "'shape': (1000000000000000000,), }")}), "'codes' has"),
    "huge declared shape, other key": (_zip({**_good_members(), "shape.npy":
                                             _npy("{'descr': '<i8', "
                                                  "'fortran_order': False, "
                                                  "'shape': (1099511627776,), }")}),
                                       "'shape' must be 5 integers"),
    "object dtype": (_zip({**_good_members(), "shape.npy": _npy(
        "{'descr': '|O', 'fortran_order': False, 'shape': (5,), }")}),
                     "Python objects"),
    # zipfile: RuntimeError (encrypted), NotImplementedError (strong
    # encryption, compressed patched data, unknown method or version).
    "encrypted": (_patched(_patched(GOOD, b"PK\x01\x02", 8, "<H", 1),
                           b"PK\x03\x04", 6, "<H", 1), "is encrypted"),
    "strong encryption": (_patched(_patched(GOOD, b"PK\x01\x02", 8, "<H",
                                            0x40),
                                   b"PK\x03\x04", 6, "<H", 0x40),
                          "cannot read array"),
    "method 99": (_patched(GOOD, b"PK\x01\x02", 10, "<H", 99),
                  "compression method 99"),
    "lzma": (_patched(GOOD, b"PK\x01\x02", 10, "<H", 14),
             "compression method 14"),
    "version 17.3": (_patched(GOOD, b"PK\x01\x02", 6, "<H", 173),
                     "zip file version 17.3"),
    "zip64 entries": (_patched(GOOD, b"PK\x05\x06", 10, "<H", 0xffff),
                      "the zip directory lists 65535 members"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_NPZ))
def test_hostile_npz_files_are_format_errors(tmp_path, name):
  data, message = HOSTILE_NPZ[name]
  path = tmp_path / "codes.npz"
  path.write_bytes(data)
  with pytest.raises(errors.FormatError, match=message) as info:
    codes_io.load_codes(str(path))
  assert "\n" not in str(info.value)


def test_a_zip_directory_of_many_members_is_refused_before_parsing(tmp_path):
  members = {f"m{i}": b"" for i in range(codes_io.MAX_MEMBERS + 1)}
  path = tmp_path / "codes.npz"
  path.write_bytes(_zip({**_good_members(), **members}))
  with pytest.raises(errors.FormatError, match="the zip directory lists 67"):
    codes_io.load_codes(str(path))
  path.write_bytes(GOOD)
  assert codes_io.load_codes(str(path))[0].shape == (1, 1, 1, 1, 8)


# --- Through tools/decoder.py. ---------------------------------------------


def _pick_cases(seeds, tiny, tmp_path):
  """A few cases of different mutators, with their in-process outcome."""
  wanted = ["truncate", "flip_bits", "header_field", "splice", "random_bytes",
            "npz_arrays", "zip_fields"]
  picked, decoded = [], False
  for index in range(2000):
    case = fuzzing.make_case(seeds, 0, index)
    if case.mutator not in wanted or case.iterations is not None:
      continue
    path = tmp_path / case.name
    path.write_bytes(case.data)
    try:
      cli.decode_file(tiny, str(path), str(tmp_path / "in_process"),
                      overwrite=True)
      outcome = "decoded"
    except errors.TfrnncompError as e:
      outcome = cli.error_message(e)
    if outcome == "decoded" and decoded:
      continue
    decoded |= outcome == "decoded"
    wanted.remove(case.mutator)
    picked.append((str(path), outcome))
    if not wanted:
      break
  assert decoded and len(picked) == 7
  return picked


def test_mutated_files_through_the_decoder_tool(tmp_path, tiny, seeds,
                                                tiny_model_dir):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  for path, outcome in _pick_cases(seeds, tiny, tmp_path):
    out = tmp_path / ("out_" + os.path.basename(path))
    begin = time.perf_counter()
    result = subprocess.run(
        [sys.executable, DECODER, f"--input_codes={path}",
         f"--output_directory={out}", f"--model={tiny_model_dir}"],
        capture_output=True, text=True, env=env, timeout=300)
    assert time.perf_counter() - begin < 300
    assert "Traceback" not in result.stderr, result.stderr
    if outcome == "decoded":
      assert result.returncode == 0, result.stderr
      assert result.stderr == "" and result.stdout.count("\n") == 1
      assert "image_00.png" in os.listdir(out)
    else:
      assert result.returncode == 1
      lines = result.stderr.strip().splitlines()
      assert lines == [f"decoder.py: error: {outcome}"], result.stderr
      assert not out.exists()


def test_fuzz_tool_runs_and_reports(tmp_path, tiny_model_dir):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  result = subprocess.run(
      [sys.executable, FUZZ_TOOL, "--cases=300", "--seed=3",
       f"--model={tiny_model_dir}", f"--corpus_dir={tmp_path / 'c'}",
       "--report_every=100"], capture_output=True, text=True, env=env,
      timeout=300)
  assert result.returncode == 0, result.stdout + result.stderr
  assert result.stdout.startswith("100 cases, ")
  assert "300 cases in " in result.stdout and "0 finding(s)" in result.stdout
  assert os.listdir(tmp_path / "c") == []
