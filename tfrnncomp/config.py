"""Typed, frozen model configurations with named presets.

A :class:`CodecConfig` fully describes a recurrent codec network; it is saved
as JSON beside every checkpoint and SavedModel (``config.json``) so that a
model can always be rebuilt exactly. Presets are named after the paper systems
they reproduce (see :data:`PRESETS`); ``resolve`` applies overrides to a preset
and validates the result.
"""

import dataclasses
import json
from typing import Any, Dict, Optional

__all__ = [
    "CELLS",
    "RECONSTRUCTIONS",
    "CodecConfig",
    "PRESETS",
    "get_preset",
    "resolve",
]

CELLS = ("lstm", "gru", "residual_gru", "associative_lstm")
"""Recurrent cell types of Toderici et al. 2017, Sec. 3."""

RECONSTRUCTIONS = ("one_shot", "additive", "residual_scaling")
"""Reconstruction frameworks of Toderici et al. 2017, Sec. 3.2 (gamma=0,
gamma=1, and additive with residual scaling)."""

ANALYSES = ("conv",)
"""Analysis/synthesis blocks around the recurrent core (plain convolutions)."""


@dataclasses.dataclass(frozen=True)
class CodecConfig:
  """Architecture of a Toderici 2017 recurrent codec.

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
    if not 0 < self.width <= 4:
      raise ValueError(f"width must be in (0, 4], got {self.width}")
    if not 1 <= self.bits <= 1024:
      raise ValueError(f"bits must be in [1, 1024], got {self.bits}")
    if not 1 <= self.iterations <= 64:
      raise ValueError(f"iterations must be in [1, 64], got {self.iterations}")
    # JSON round trips give lists; keep the dataclass hashable and frozen.
    for field in ("encoder_filters", "decoder_filters", "decoder_kernels",
                  "decoder_hidden_kernels"):
      object.__setattr__(self, field, tuple(int(v) for v in getattr(self, field)))
    if len(self.encoder_filters) != 3:
      raise ValueError("encoder_filters needs 3 entries (E-RNN#1..3)")
    for field in ("decoder_filters", "decoder_kernels", "decoder_hidden_kernels"):
      if len(getattr(self, field)) != 4:
        raise ValueError(f"{field} needs 4 entries (D-RNN#1..4)")

  def scaled(self, filters: int) -> int:
    """Applies the width multiplier to a paper layer width."""
    return max(8, int(round(filters * self.width / 8)) * 8)

  def to_dict(self) -> Dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(self).items()}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "CodecConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
      raise ValueError(f"unknown config keys: {sorted(unknown)}")
    return cls(**d)

  @classmethod
  def from_json(cls, text: str) -> "CodecConfig":
    return cls.from_dict(json.loads(text))


PRESETS: Dict[str, CodecConfig] = {
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
}


def get_preset(name: str) -> CodecConfig:
  try:
    return PRESETS[name]
  except KeyError:
    raise ValueError(f"unknown preset {name!r}; choose one of "
                     f"{sorted(PRESETS)}") from None


def resolve(preset: str, overrides: Optional[Dict[str, Any]] = None
            ) -> CodecConfig:
  """Returns the preset with ``overrides`` applied (and validated)."""
  base = get_preset(preset)
  return dataclasses.replace(base, **(overrides or {}))
