"""Shared fixtures: small exported codecs (SavedModels) for the tool tests."""

import importlib.util
import os
import sys
from unittest import mock

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top


def _export_tiny(tmp_path_factory, name, overrides=None, preset="tiny"):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp import config
  from tfrnncomp import export
  from tfrnncomp import models
  tf.keras.utils.set_random_seed(0)
  model = models.build_model(config.resolve(preset, overrides))
  directory = str(tmp_path_factory.mktemp("savedmodels") / name)
  export.export(model, directory)
  return directory


@pytest.fixture(scope="module")
def tiny():
  """The ``tiny`` preset (8 bits per block), untrained, in memory (seed 0)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp import config
  from tfrnncomp import models
  tf.random.set_seed(0)
  return models.build_model(config.get_preset("tiny"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
  """The ``tiny`` preset (8 bits per block), untrained, as a SavedModel."""
  return _export_tiny(tmp_path_factory, "tiny")


@pytest.fixture(scope="session")
def tiny32_model_dir(tmp_path_factory):
  """``tiny`` with the paper's 32 bits per block, as the original's files."""
  return _export_tiny(tmp_path_factory, "tiny32", {"bits": 32})


@pytest.fixture(scope="session")
def akbari_tiny_model_dir(tmp_path_factory):
  """The ``akbari2020_tiny`` preset (C = 4), untrained, as a SavedModel."""
  return _export_tiny(tmp_path_factory, "akbari2020_tiny",
                      preset="akbari2020_tiny")


@pytest.fixture
def run_tool(capsys):
  """Runs tools/<name>.py's main in-process through ``cli.run``.

  ``run_tool(name, *args, cwd=None)`` -> (exit status, stdout, stderr): the
  same one-line message and status as on the command line, without a
  TensorFlow start per run. The tool's flags are removed afterwards (several
  tools define flags of the same names).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def run(name, *args, cwd=None):
    spec = importlib.util.spec_from_file_location(
        f"_tool_{name}", os.path.join(root, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    capsys.readouterr()
    sys.modules[spec.name] = module  # absl names the flags' module by it.
    cwd_before = os.getcwd()
    try:
      spec.loader.exec_module(module)
      with mock.patch.object(sys, "argv", [f"{name}.py", *args]):
        os.chdir(cwd or cwd_before)
        try:
          cli.run(module.main)
          status = 0
        except SystemExit as e:
          status = e.code
    finally:
      os.chdir(cwd_before)
      for flag in flags.FLAGS.get_flags_for_module(spec.name):
        delattr(flags.FLAGS, flag.name)
      del sys.modules[spec.name]
    out, err = capsys.readouterr()
    return status, out, err

  return run


@pytest.fixture(scope="session")
def tiny_entropy_dir(tiny_model_dir, tmp_path_factory):
  """A copy of the tiny codec with an entropy model trained on its codes."""
  import shutil  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfrnncomp import cli
  from tfrnncomp import testing
  from tfrnncomp.entropy import pixelrnn
  from tfrnncomp.entropy import saved_model
  from tfrnncomp.entropy import training
  directory = str(tmp_path_factory.mktemp("with_entropy") / "tiny")
  shutil.copytree(tiny_model_dir, directory)
  codec = cli.load_codec(directory)
  codes = np.stack([codec.encode(testing.gradient_image(64, 96, seed), 4)
                    for seed in range(6)])
  tf.keras.utils.set_random_seed(0)
  model = pixelrnn.BinaryPixelRNN(
      pixelrnn.EntropyConfig(bits=codec.bits, filters=8)).build_variables()
  trainer = training.Trainer(model, str(tmp_path_factory.mktemp("train")),
                             learning_rate=1e-2)
  trainer.fit(codes, steps=60, batch_size=4, log=lambda _: None)
  saved_model.save(model, directory, codec.identity)
  return directory
