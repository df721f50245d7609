"""Tests of tfrnncomp.config."""

import dataclasses

import pytest

from tfrnncomp import config


@pytest.mark.parametrize("name", sorted(config.PRESETS))
def test_presets_are_valid_and_round_trip_through_json(name):
  preset = config.get_preset(name)
  assert config.CodecConfig.from_json(preset.to_json()) == preset


def test_configs_are_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.get_preset("tiny").bits = 3


@pytest.mark.parametrize("overrides", [
    {"cell": "transformer"}, {"reconstruction": "gamma2"}, {"width": 0},
    {"bits": 0}, {"iterations": 0}, {"decoder_filters": (1, 2)}])
def test_invalid_values_are_rejected(overrides):
  with pytest.raises(ValueError):
    config.resolve("tiny", overrides)


def test_unknown_preset_and_keys_are_rejected():
  with pytest.raises(ValueError, match="unknown preset"):
    config.get_preset("nope")
  with pytest.raises(ValueError, match="unknown config keys"):
    config.CodecConfig.from_dict({"colour": "red"})


def test_width_multiplier_scales_to_multiples_of_8():
  half = config.get_preset("residual_gru_half")
  assert half.scaled(512) == 256
  assert half.scaled(64) == 32
  assert config.get_preset("tiny").scaled(64) == 8
