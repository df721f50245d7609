"""Typed, frozen model configurations with named presets.

A config fully describes a codec network; it is saved as JSON beside every
checkpoint and SavedModel (``config.json``) so that a model can always be
rebuilt exactly. Two kinds, one per model family:

- :class:`CodecConfig`: the iterative recurrent codecs, Toderici et al. 2017
  (``analysis="conv"``) and Islam et al. 2021 (``analysis="gdn"``: GDN after
  the encoder's input convolution and IGDN after the decoder's, see
  :mod:`tfrnncomp.models.toderici2017`);
- :class:`VariableRateConfig`: the one-shot variable-rate ResGDN codec of
  Akbari et al. 2020 (:mod:`tfrnncomp.models.akbari2020`).

Each config has a ``system`` (one of :data:`SYSTEMS`) that ``to_dict`` writes
into the JSON; :func:`config_from_json` reads it back into the right class
(files without it, written before there was more than one system, are
CodecConfigs). Presets are named after the paper systems they reproduce (see
:data:`PRESETS`); ``resolve`` applies overrides to a preset and validates the
result.
"""

import dataclasses
import json
from typing import Any, Dict, Optional, Union

__all__ = [
    "ANALYSES",
    "CELLS",
    "COMPUTE_DTYPES",
    "DECODER_INPUTS",
    "MAX_BITS_PER_CHANNEL",
    "MAX_PRIMING",
    "RECONSTRUCTIONS",
    "SYSTEMS",
    "CodecConfig",
    "VariableRateConfig",
    "Config",
    "PRESETS",
    "config_from_dict",
    "config_from_json",
    "get_preset",
    "resolve",
]

SYSTEMS = ("toderici2017", "islam2021", "akbari2020")
"""The paper systems, as recorded in config.json (``"system"``)."""

DECODER_INPUTS = ("dequantized", "levels")
"""What the Akbari 2020 decoder reads (``VariableRateConfig.decoder_input``)."""

CELLS = ("lstm", "gru", "residual_gru", "associative_lstm")
"""Recurrent cell types of Toderici et al. 2017, Sec. 3."""

RECONSTRUCTIONS = ("one_shot", "additive", "residual_scaling")
"""Reconstruction frameworks of Toderici et al. 2017, Sec. 3.2 (gamma=0,
gamma=1, and additive with residual scaling)."""

ANALYSES = ("conv", "gdn")
"""Analysis/synthesis blocks around the recurrent core: plain convolutions
(Toderici et al. 2017) or convolutions followed by GDN / IGDN (Islam et al.
2021)."""

COMPUTE_DTYPES = ("float32", "bfloat16")
"""Precision of the recurrent codecs' convolutions (float32 weights either
way; :mod:`tfrnncomp.layers.precision`)."""

MAX_PRIMING = 8
"""Most extra first-iteration steps of hidden-state priming."""

MAX_BITS_PER_CHANNEL = 8
"""Largest B of the Akbari 2020 scalar quantizer (codes fit in a byte)."""


@dataclasses.dataclass(frozen=True)
class CodecConfig:
  """Architecture of a Toderici 2017 (or Islam 2021) recurrent codec.

  The widths are those of Toderici et al. 2017, Fig. 1, multiplied by
  ``width`` (rounded to a multiple of 8, and of 2 for the associative LSTM's
  complex state); ``bits`` is the number of bits per 16x16 block and iteration
  (32 in the paper, i.e. 1/8 bpp per iteration).
  """

  name: str = "residual_gru"
  cell: str = "residual_gru"
  reconstruction: str = "additive"
  width: float = 1.0
  bits: int = 32
  iterations: int = 16
  analysis: str = "conv"
  # "bfloat16": convolutions in bfloat16 on float32 weights (faster on CPUs
  # with AVX512-BF16/AMX; tfrnncomp.layers.precision). Not part of the
  # weights: a model can be exported in either (tools/export.py).
  compute_dtype: str = "float32"

  # Hidden-state priming (Johnston et al. 2018, Sec. 3.1): the first
  # iteration runs the encoder and the decoder 1 + priming times on the same
  # input, and only the last step's codes and output are used. Same bits,
  # more computation (2 x priming extra network steps per image).
  priming: int = 0

  # Paper sizes (before the width multiplier).
  encoder_conv_filters: int = 64
  encoder_filters: tuple = (256, 512, 512)
  decoder_conv_filters: int = 512
  decoder_filters: tuple = (512, 512, 256, 128)
  decoder_kernels: tuple = (2, 3, 3, 3)
  decoder_hidden_kernels: tuple = (1, 1, 3, 3)

  def __post_init__(self):
    if self.cell not in CELLS:
      raise ValueError(f"cell must be one of {CELLS}, got {self.cell!r}")
    if self.reconstruction not in RECONSTRUCTIONS:
      raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, "
                       f"got {self.reconstruction!r}")
    if self.analysis not in ANALYSES:
      raise ValueError(f"analysis must be one of {ANALYSES}, "
                       f"got {self.analysis!r}")
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, "
                       f"got {self.compute_dtype!r}")
    if not 0 < self.width <= 4:
      raise ValueError(f"width must be in (0, 4], got {self.width}")
    if not 1 <= self.bits <= 1024:
      raise ValueError(f"bits must be in [1, 1024], got {self.bits}")
    if not 1 <= self.iterations <= 64:
      raise ValueError(f"iterations must be in [1, 64], got {self.iterations}")
    if not 0 <= self.priming <= MAX_PRIMING:
      raise ValueError(f"priming must be in [0, {MAX_PRIMING}], "
                       f"got {self.priming}")
    # JSON round trips give lists; keep the dataclass hashable and frozen.
    for field in ("encoder_filters", "decoder_filters", "decoder_kernels",
                  "decoder_hidden_kernels"):
      object.__setattr__(self, field, tuple(int(v) for v in getattr(self, field)))
    if len(self.encoder_filters) != 3:
      raise ValueError("encoder_filters needs 3 entries (E-RNN#1..3)")
    for field in ("decoder_filters", "decoder_kernels", "decoder_hidden_kernels"):
      if len(getattr(self, field)) != 4:
        raise ValueError(f"{field} needs 4 entries (D-RNN#1..4)")

  @property
  def system(self) -> str:
    """``islam2021`` with GDN analysis/synthesis blocks, else ``toderici2017``."""
    return "islam2021" if self.analysis == "gdn" else "toderici2017"

  def scaled(self, filters: int) -> int:
    """Applies the width multiplier to a paper layer width."""
    return max(8, int(round(filters * self.width / 8)) * 8)

  def to_dict(self) -> Dict[str, Any]:
    return _to_dict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "CodecConfig":
    return _from_dict(cls, d)

  @classmethod
  def from_json(cls, text: str) -> "CodecConfig":
    return cls.from_dict(json.loads(text))


@dataclasses.dataclass(frozen=True)
class VariableRateConfig:
  """Architecture of the Akbari et al. 2020 variable-rate ResGDN codec.

  Encoder: 5 stages, 11 convolutions each followed by GDN (stage 1: one
  ``outer_kernel_size`` stride-2 convolution; stages 2-4: a ``kernel_size``
  stride-2 convolution and a ResGDN block of two; stage 5: a stride-1
  convolution to ``code_channels``); downsampling by 16. The decoder mirrors
  it with IGDN, ResIGDN and transposed convolutions. ``filters`` is the width
  of every hidden stage. The code map is quantized at test time with any
  B in [1, MAX_BITS_PER_CHANNEL] bits per channel. ``igdn_max_gain`` > 0
  bounds the gain of each of the decoder's IGDNs (``tfrnncomp.layers.GDN``'s
  ``max_gain``); 0, the default and the shipped model's, leaves them
  unbounded, as in the paper. ``decoder_input`` is what the decoder reads:
  ``"dequantized"`` (the paper's, the default and the shipped model's) the
  values y_hat = m + q (M - m) / L, whose scale is whatever the encoder
  learned (nothing in the objective fixes it: the quantizer normalizes it
  away); ``"levels"`` the levels on a fixed scale, 2 q / L - 1 in [-1, 1],
  so the decoder's input no longer depends on the encoder's scale.
  """

  name: str = "akbari2020"
  filters: int = 128
  code_channels: int = 8
  kernel_size: int = 3
  outer_kernel_size: int = 5
  igdn_max_gain: float = 0.
  decoder_input: str = "dequantized"

  def __post_init__(self):
    if self.decoder_input not in DECODER_INPUTS:
      raise ValueError(f"decoder_input must be one of {DECODER_INPUTS}, got "
                       f"{self.decoder_input!r}")
    if not 1 <= self.filters <= 1024:
      raise ValueError(f"filters must be in [1, 1024], got {self.filters}")
    if not 1 <= self.code_channels <= 256:
      raise ValueError(f"code_channels must be in [1, 256], got "
                       f"{self.code_channels}")
    for field in ("kernel_size", "outer_kernel_size"):
      value = getattr(self, field)
      if not 1 <= value <= 9:
        raise ValueError(f"{field} must be in [1, 9], got {value}")
    if not 0. <= self.igdn_max_gain <= 1e6:
      raise ValueError(f"igdn_max_gain must be in [0, 1e6] (0: unbounded), "
                       f"got {self.igdn_max_gain}")

  @property
  def system(self) -> str:
    return "akbari2020"

  def to_dict(self) -> Dict[str, Any]:
    return _to_dict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "VariableRateConfig":
    return _from_dict(cls, d)

  @classmethod
  def from_json(cls, text: str) -> "VariableRateConfig":
    return cls.from_dict(json.loads(text))


Config = Union[CodecConfig, VariableRateConfig]


def _to_dict(config) -> Dict[str, Any]:
  d = {k: list(v) if isinstance(v, tuple) else v
       for k, v in dataclasses.asdict(config).items()}
  d["system"] = config.system
  return d


def _from_dict(cls, d):
  d = dict(d)
  system = d.pop("system", None)
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = set(d) - known
  if unknown:
    raise ValueError(f"unknown config keys: {sorted(unknown)}")
  config = cls(**d)
  if system is not None and system != config.system:
    raise ValueError(f"config says system {system!r} but describes a "
                     f"{config.system!r} model")
  return config


def config_from_dict(d: Dict[str, Any]) -> Config:
  """The config of either kind that ``d`` (a ``to_dict`` result) describes."""
  system = d.get("system", "toderici2017")
  if system not in SYSTEMS:
    raise ValueError(f"unknown system {system!r}; known: {SYSTEMS}")
  if system == "akbari2020":
    return VariableRateConfig.from_dict(d)
  return CodecConfig.from_dict(d)


def config_from_json(text: str) -> Config:
  """Reads a ``config.json`` of any system."""
  return config_from_dict(json.loads(text))


PRESETS: Dict[str, Config] = {
    # The original release's model (residual GRU), at the paper's width.
    "residual_gru": CodecConfig(name="residual_gru", cell="residual_gru"),
    # The shipped default: half width (6.7M parameters, 27 MB), trainable on CPU.
    "residual_gru_half": CodecConfig(name="residual_gru_half",
                                     cell="residual_gru", width=0.5),
    "lstm": CodecConfig(name="lstm", cell="lstm", reconstruction="one_shot"),
    "gru": CodecConfig(name="gru", cell="gru"),
    "associative_lstm": CodecConfig(name="associative_lstm",
                                    cell="associative_lstm"),
    # A tiny network for tests: same topology, about 1/16 of the width.
    "tiny": CodecConfig(name="tiny", cell="residual_gru", width=0.0625,
                        bits=8, iterations=4),
    # Islam et al. 2021: the LSTM network (additive reconstruction, as in the
    # authors' code) with GDN after E-Conv and IGDN after D-Conv.
    "islam2021": CodecConfig(name="islam2021", cell="lstm",
                             reconstruction="additive", analysis="gdn"),
    # The same at half width, trainable on CPU (compare with residual_gru_half
    # and with resolve("lstm", {"reconstruction": "additive", "width": 0.5})).
    "islam2021_half": CodecConfig(name="islam2021_half", cell="lstm",
                                  reconstruction="additive", analysis="gdn",
                                  width=0.5),
    # Islam's GDN/IGDN blocks on the shipped residual GRU network (cells and
    # width of residual_gru_half): it starts from savedmodels/residual_gru
    # (tools/train.py --init_from), only the GDN parameters from scratch;
    # the way this project trains an Islam 2021 model on 2 CPU cores.
    "islam2021_residual_gru_half": CodecConfig(
        name="islam2021_residual_gru_half", cell="residual_gru",
        reconstruction="additive", analysis="gdn", width=0.5),
    "islam2021_tiny": CodecConfig(name="islam2021_tiny", cell="lstm",
                                  reconstruction="additive", analysis="gdn",
                                  width=0.0625, bits=8, iterations=4),
    # Akbari et al. 2020: C = 8 code channels, B = 1..8 bits per channel.
    "akbari2020": VariableRateConfig(name="akbari2020"),
    "akbari2020_tiny": VariableRateConfig(name="akbari2020_tiny", filters=8,
                                          code_channels=4, kernel_size=3,
                                          outer_kernel_size=3),
}


def get_preset(name: str) -> Config:
  try:
    return PRESETS[name]
  except KeyError:
    raise ValueError(f"unknown preset {name!r}; choose one of "
                     f"{sorted(PRESETS)}") from None


def resolve(preset: str, overrides: Optional[Dict[str, Any]] = None
            ) -> Config:
  """Returns the preset with ``overrides`` applied (and validated)."""
  base = get_preset(preset)
  overrides = dict(overrides or {})
  known = {f.name for f in dataclasses.fields(base)}
  unknown = set(overrides) - known
  if unknown:
    raise ValueError(f"preset {preset!r} ({base.system}) has no setting "
                     f"{sorted(unknown)}")
  return dataclasses.replace(base, **overrides)
