"""Tests of tfrnncomp.config."""

import dataclasses
import json

import pytest

from tfrnncomp import config


@pytest.mark.parametrize("name", sorted(config.PRESETS))
def test_presets_are_valid_and_round_trip_through_json(name):
  preset = config.get_preset(name)
  assert config.config_from_json(preset.to_json()) == preset
  assert type(preset).from_json(preset.to_json()) == preset
  assert json.loads(preset.to_json())["system"] == preset.system


def test_systems_of_the_presets():
  assert config.get_preset("residual_gru_half").system == "toderici2017"
  assert config.get_preset("lstm").system == "toderici2017"
  assert config.get_preset("islam2021").system == "islam2021"
  islam = config.get_preset("islam2021")
  assert (islam.cell, islam.reconstruction, islam.analysis) == (
      "lstm", "additive", "gdn")
  akbari = config.get_preset("akbari2020")
  assert isinstance(akbari, config.VariableRateConfig)
  assert akbari.system == "akbari2020"
  assert akbari.code_channels == 8
  assert {p.system for p in config.PRESETS.values()} == set(config.SYSTEMS)


def test_config_json_without_a_system_is_a_recurrent_codec():
  """config.json files written before the registry have no "system" key."""
  d = config.get_preset("residual_gru_half").to_dict()
  del d["system"]
  assert config.config_from_dict(d) == config.get_preset("residual_gru_half")


def test_a_config_json_naming_another_system_is_rejected():
  d = config.get_preset("tiny").to_dict()
  d["system"] = "islam2021"  # But analysis is "conv".
  with pytest.raises(ValueError, match="system"):
    config.config_from_dict(d)
  with pytest.raises(ValueError, match="unknown system"):
    config.config_from_dict({**d, "system": "jpeg"})
  with pytest.raises(ValueError, match="unknown config keys"):
    config.CodecConfig.from_dict(config.get_preset("akbari2020").to_dict())


def test_overrides_must_exist_in_the_presets_kind():
  with pytest.raises(ValueError, match="no setting"):
    config.resolve("akbari2020", {"cell": "lstm"})
  with pytest.raises(ValueError, match="no setting"):
    config.resolve("tiny", {"code_channels": 4})
  assert config.resolve("akbari2020", {"code_channels": 16}).code_channels == 16
  for bad in ({"filters": 0}, {"code_channels": 0}, {"kernel_size": 10},
              {"igdn_max_gain": -1.}):
    with pytest.raises(ValueError):
      config.resolve("akbari2020", bad)


def test_akbari_igdn_bound_is_off_by_default_and_reaches_every_igdn():
  """config.json files of shipped models, without the key, load unbounded."""
  d = config.get_preset("akbari2020").to_dict()
  assert d.pop("igdn_max_gain") == 0.
  assert config.config_from_dict(d).igdn_max_gain == 0.
  from tfrnncomp.models import akbari2020  # pylint: disable=g-import-not-at-top
  decoder = akbari2020.Decoder(config.resolve(
      "akbari2020_tiny", {"igdn_max_gain": 5.}))
  from tfrnncomp import layers  # pylint: disable=g-import-not-at-top
  igdns = [m for m in decoder.submodules if isinstance(m, layers.GDN)]
  assert len(igdns) == 10  # 1 + 3 x (ResIGDN's 2 + 1).
  assert {(m.inverse, m.max_gain) for m in igdns} == {(True, 5.)}


def test_configs_are_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.get_preset("tiny").bits = 3


@pytest.mark.parametrize("overrides", [
    {"cell": "transformer"}, {"reconstruction": "gamma2"}, {"width": 0},
    {"bits": 0}, {"iterations": 0}, {"decoder_filters": (1, 2)},
    {"priming": -1}, {"priming": config.MAX_PRIMING + 1}])
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
