"""The TF Serving layout of exported codecs (tfrnncomp/export.py,
tools/export.py --serving_dir), checked with TensorFlow's saved_model_cli.

saved_model_cli runs in a subprocess where importing tensorflow_compression
fails, as in TF Serving, which has none of its ops.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfrnncomp import export

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT_TOOL = os.path.join(ROOT, "tools", "export.py")
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable),
                               "saved_model_cli")
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def model():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp import config  # pylint: disable=g-import-not-at-top
  from tfrnncomp import models  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  return models.build_model(config.resolve("tiny"))


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):
  base = str(tmp_path_factory.mktemp("serving"))
  directory, identity = export.export_for_serving(model, base, "tiny")
  return base, directory, identity


def test_the_version_directory_is_what_tf_serving_polls(model, served):
  base, directory, identity = served
  assert directory == os.path.join(base, "tiny", "1")
  names = set(os.listdir(directory))
  assert {"saved_model.pb", "variables", "config.json", "model.json"} <= names
  assert {"variables.index", "variables.data-00000-of-00001"} <= set(
      os.listdir(os.path.join(directory, "variables")))
  assert os.listdir(os.path.join(base, "tiny")) == ["1"]  # No .tmp-* left.
  assert identity["weights_sha256"] == export.weights_hash(model.variables)
  # Next free versions, explicit versions, taken versions, bad names.
  assert export.copy_for_serving(directory, base, "tiny") == os.path.join(
      base, "tiny", "2")
  assert export.copy_for_serving(directory, base, "tiny", version=7).endswith(
      os.path.join("tiny", "7"))
  assert export.next_version(os.path.join(base, "tiny")) == 8
  assert export.next_version(os.path.join(base, "absent")) == 1
  with pytest.raises(FileExistsError, match="version 2 of tiny is taken"):
    export.copy_for_serving(directory, base, "tiny", version=2)
  with pytest.raises(FileExistsError):
    export.export_for_serving(model, base, "tiny", version=1)
  for name in ("", "a/b", "../x", "with space"):
    with pytest.raises(ValueError, match="invalid serving model name"):
      export.copy_for_serving(directory, base, name)
  with pytest.raises(ValueError, match="positive integer"):
    export.copy_for_serving(directory, base, "tiny", version=0)
  with pytest.raises(ValueError, match="not a SavedModel"):
    export.copy_for_serving(base, base, "other")
  with open(os.path.join(base, "tiny", "7", "model.json")) as f:
    assert f.read() == open(os.path.join(directory, "model.json")).read()


def _saved_model_cli(*args):
  """Runs the installed saved_model_cli with tensorflow_compression blocked."""
  script = textwrap.dedent(f"""
      import runpy, sys
      sys.modules["tensorflow_compression"] = None  # Any import fails.
      sys.argv = ["saved_model_cli"] + {list(args)!r}
      runpy.run_path({SAVED_MODEL_CLI!r}, run_name="__main__")
      """)
  return subprocess.run([sys.executable, "-c", script], env=ENV,
                        capture_output=True, text=True)


def test_saved_model_cli_shows_and_runs_the_signatures(model, served,
                                                       tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  _, directory, _ = served
  shown = _saved_model_cli("show", "--dir", directory, "--all")
  assert shown.returncode == 0, shown.stderr[-2000:]
  for signature in ("encode", "decode", "serving_default"):
    assert f"signature_def['{signature}']" in shown.stdout
  assert "inputs['iterations'] tensor_info:\n        dtype: DT_INT32\n" \
         "        shape: ()" in shown.stdout
  assert "outputs['codes'] tensor_info:\n        dtype: DT_INT8\n" \
         "        shape: (-1, -1, -1, 8)" in shown.stdout
  image = np.arange(18 * 20 * 3).reshape(18, 20, 3) % 256
  ran = _saved_model_cli(
      "run", "--dir", directory, "--tag_set", "serve", "--signature_def",
      "encode", "--input_exprs",
      f"image={image.tolist()!r};iterations=2",
      "--outdir", str(tmp_path), "--overwrite")
  assert ran.returncode == 0, ran.stderr[-2000:]
  codes = np.load(tmp_path / "codes.npy")
  expected = model.encode(tf.constant(image, tf.uint8)[None], 2)[:, 0]
  assert codes.dtype == np.int8 and codes.shape == (2, 2, 2, 8)
  np.testing.assert_array_equal(codes, expected.numpy())


def test_export_tool_copies_a_savedmodel_to_the_next_version(served,
                                                             tmp_path):
  _, directory, _ = served
  base = str(tmp_path / "serving")
  command = [sys.executable, EXPORT_TOOL, f"--savedmodel={directory}",
             f"--serving_dir={base}", "--serving_name=codec"]
  result = subprocess.run(command, env=ENV, capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"-> {os.path.join(base, 'codec', '1')}" in result.stdout
  assert "--model_name=codec" in result.stdout
  assert os.path.isfile(os.path.join(base, "codec", "1", "saved_model.pb"))
  taken = subprocess.run(command + ["--version=1"], env=ENV,
                         capture_output=True, text=True)
  assert taken.returncode == 2
  assert taken.stderr.strip().splitlines()[-1].startswith(
      "export.py: error: ")
  assert "version 1 of codec is taken" in taken.stderr
  usage = subprocess.run([sys.executable, EXPORT_TOOL,
                          f"--savedmodel={directory}"],
                         env=ENV, capture_output=True, text=True)
  assert usage.returncode == 2
  assert usage.stderr.strip().splitlines() == [
      "export.py: error: give one of --output and --serving_dir"]
