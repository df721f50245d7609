"""Shared fixtures: small exported codecs (SavedModels) for the tool tests."""

import os

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
