"""Tests of the SavedModel export."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp import config
from tfrnncomp import export
from tfrnncomp import models


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  tf.random.set_seed(1)
  model = models.build_model(config.get_preset("tiny"))
  directory = str(tmp_path_factory.mktemp("export") / "tiny")
  identity = export.export(model, directory)
  return model, directory, identity


@pytest.fixture(scope="module")
def exported_primed(tmp_path_factory):
  """``tiny`` with hidden-state priming (config ``priming = 2``)."""
  tf.random.set_seed(2)
  model = models.build_model(config.resolve("tiny", {"priming": 2}))
  directory = str(tmp_path_factory.mktemp("export") / "tiny_primed")
  identity = export.export(model, directory)
  return model, directory, identity


def test_export_writes_config_and_model_id(exported):
  model, directory, identity = exported
  assert export.load_config(directory) == model.config
  with open(os.path.join(directory, "model.json")) as f:
    assert json.load(f) == identity
  assert identity["weights_sha256"] == export.weights_hash(model.variables)
  assert not [f for f in os.listdir(os.path.dirname(directory))
              if f.startswith(".tmp")]


def test_export_refuses_to_overwrite(exported):
  model, directory, _ = exported
  with pytest.raises(FileExistsError):
    export.export(model, directory)


@pytest.mark.parametrize("which", ["exported", "exported_primed"])
def test_reload_in_a_tensorflow_only_process_is_bit_identical(
    which, request, tmp_path):
  """The SavedModel needs nothing but core TensorFlow, and is bit-exact."""
  model, directory, _ = request.getfixturevalue(which)
  rng = np.random.default_rng(5)
  image = rng.integers(0, 256, [37, 50, 3]).astype(np.uint8)
  inputs = tmp_path / "image.npy"
  outputs = tmp_path / "out.npz"
  np.save(inputs, image)
  script = textwrap.dedent(f"""
      import sys
      import numpy as np
      import tensorflow as tf
      loaded = tf.saved_model.load({directory!r})
      image = tf.constant(np.load({str(inputs)!r}))
      enc = loaded.signatures["encode"]
      codes = enc(image=image, iterations=tf.constant(3))["codes"]
      dec = loaded.signatures["decode"]
      x_hat = dec(codes=codes, height=tf.constant(37),
                  width=tf.constant(50))["x_hat"]
      default = loaded.signatures["serving_default"](
          image=image, iterations=tf.constant(3))["codes"]
      searched = loaded.signatures["encode_search"](
          image=image, iterations=tf.constant(3),
          search_steps=tf.constant(2))["codes"]
      assert not [m for m in sys.modules
                  if m.startswith(("tfrnncomp", "tensorflow_compression"))]
      np.savez({str(outputs)!r}, codes=codes.numpy(), x_hat=x_hat.numpy(),
               default=default.numpy(), searched=searched.numpy())
      """)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  subprocess.run([sys.executable, "-c", script], check=True, env=env,
                 cwd=str(tmp_path))
  result = np.load(outputs)
  codes = model.encode(tf.constant(image)[None], 3)[:, 0]
  x_hat = model.decode(codes[:, None], 37, 50)[:, 0]
  assert result["codes"].shape == (3, 3, 4, 8)
  np.testing.assert_array_equal(result["codes"], codes.numpy())
  np.testing.assert_array_equal(result["default"], codes.numpy())
  np.testing.assert_array_equal(result["x_hat"], x_hat.numpy())
  # The code search (tfrnncomp/code_search.py) is exported too, bit-exact.
  searched = model.encode(tf.constant(image)[None], 3, search_steps=2)[:, 0]
  np.testing.assert_array_equal(result["searched"], searched.numpy())
  assert (result["searched"] != result["codes"]).any()


def test_restore_weights_round_trip(exported):
  model, directory, _ = exported
  fresh = models.build_model(model.config)
  assert export.weights_hash(fresh.variables) != export.weights_hash(
      model.variables)
  export.restore_weights(fresh, directory)
  assert export.weights_hash(fresh.variables) == export.weights_hash(
      model.variables)
  other = models.build_model(config.resolve("tiny", {"bits": 16}))
  with pytest.raises(ValueError, match="shape"):
    export.restore_weights(other, directory)


def test_restore_weights_into_a_larger_network_keeps_the_new_variables(
    exported):
  # Islam 2021's network = the recurrent codec + GDN/IGDN: it starts from a
  # trained recurrent codec; only the GDN parameters keep their init.
  model, directory, _ = exported
  gdn = models.build_model(config.resolve(
      "tiny", {"analysis": "gdn", "name": "tiny_gdn"}))
  initial = {v.name: v.numpy() for v in gdn.variables}
  lines = []
  kept = export.restore_weights(gdn, directory, log=lines.append)
  assert kept and all("gdn" in name for name in kept)
  assert len(lines) == 1 and "gdn" in lines[0]
  source = {v.name.split("/", 1)[1]: v.numpy() for v in model.variables}
  for v in gdn.variables:
    name = v.name.split("/", 1)[1]
    if "gdn/" in name:
      np.testing.assert_array_equal(v.numpy(), initial[v.name])
    else:
      np.testing.assert_array_equal(v.numpy(), source[name])
  assert len(source) + len(kept) == len(gdn.variables)


def test_write_atomic_leaves_no_temporary_file(tmp_path):
  path = tmp_path / "f.bin"
  export.write_atomic(str(path), b"abc")
  assert path.read_bytes() == b"abc"
  assert os.listdir(tmp_path) == ["f.bin"]
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_write_atomic_without_unnamed_files(tmp_path, monkeypatch):
  """Where O_TMPFILE is missing, a hidden temporary file and a rename."""
  monkeypatch.delattr(os, "O_TMPFILE", raising=False)
  path = tmp_path / "f.bin"
  path.write_bytes(b"old")
  export.write_atomic(str(path), b"new")
  assert path.read_bytes() == b"new"
  assert os.listdir(tmp_path) == ["f.bin"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_write_atomic_killed_while_writing_leaves_the_old_file(tmp_path):
  """SIGKILL in the middle of a write: the target keeps its old content and
  no temporary file is left."""
  path = tmp_path / "out.bin"
  path.write_bytes(b"old")
  script = ("import sys\n"
            "from tfrnncomp import export\n"
            "data = bytes(768 << 20)\n"
            "print('writing', flush=True)\n"
            "export.write_atomic(sys.argv[1], data)\n")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root)
  process = subprocess.Popen([sys.executable, "-c", script, str(path)],
                             stdout=subprocess.PIPE, env=env)
  try:
    assert process.stdout.readline() == b"writing\n"
    seen = None
    while seen is None and process.poll() is None:
      try:
        targets = [os.readlink(f"/proc/{process.pid}/fd/{fd}")
                   for fd in os.listdir(f"/proc/{process.pid}/fd")]
      except OSError:  # A descriptor closed meanwhile.
        continue
      seen = next((t for t in targets if t.startswith(str(tmp_path))), None)
    process.kill()
  finally:
    process.wait()
  if seen is None:
    pytest.skip("the write ended before it could be interrupted")
  assert process.returncode == -9
  assert os.listdir(tmp_path) == ["out.bin"]
  assert path.read_bytes() == b"old"


def test_saved_model_holds_only_core_tensorflow_ops(exported, tmp_path):
  """Walks every function in the graph (loop bodies included) in a process
  that has not imported tensorflow_compression: all ops must be registered."""
  _, directory, _ = exported
  script = textwrap.dedent(f"""
      import sys
      from tensorflow.core.protobuf import saved_model_pb2
      from tensorflow.python.framework import op_def_registry
      proto = saved_model_pb2.SavedModel()
      with open({directory!r} + "/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
      graph = proto.meta_graphs[0].graph_def
      ops = {{node.op for node in graph.node}}
      functions = {{f.signature.name for f in graph.library.function}}
      for function in graph.library.function:
        ops |= {{node.op for node in function.node_def}}
      ops -= functions  # Calls of library functions by name.
      assert "tensorflow_compression" not in sys.modules
      unknown = sorted(op for op in ops if op_def_registry.get(op) is None)
      print(len(ops), len(functions), unknown)
      sys.exit(1 if unknown or len(functions) < 2 else 0)
      """)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, cwd=str(tmp_path))
  assert result.returncode == 0, result.stdout + result.stderr
  assert "While" in open(os.path.join(directory, "saved_model.pb"), "rb").read(
  ).decode("latin-1")
