"""Codec models and the registry of paper systems.

Every config names its system (``config.system``, written to config.json):

=============  ==========================================  ==================
system         model                                       config
=============  ==========================================  ==================
toderici2017   :class:`toderici2017.RecurrentCodec`        CodecConfig, conv
islam2021      :class:`toderici2017.RecurrentCodec`        CodecConfig, gdn
akbari2020     :class:`akbari2020.VariableRateCodec`       VariableRateConfig
=============  ==========================================  ==================

:func:`build_model` builds the right one; tools read ``config.json`` with
:func:`tfrnncomp.config.config_from_json` and call it.
"""

from tfrnncomp.models.akbari2020 import VariableRateCodec
from tfrnncomp.models.toderici2017 import RecurrentCodec

SYSTEMS = {
    "toderici2017": RecurrentCodec,
    "islam2021": RecurrentCodec,
    "akbari2020": VariableRateCodec,
}
"""Model class of each system (see :data:`tfrnncomp.config.SYSTEMS`)."""


def model_class(config):
  """The Keras model class of ``config``'s system."""
  try:
    return SYSTEMS[config.system]
  except (AttributeError, KeyError):
    raise ValueError(f"no model for config {config!r}") from None


def build_model(config):
  """Returns the codec network of ``config``, with its weights created."""
  return model_class(config)(config).build_variables()


def is_iterative(config):
  """True for the recurrent (progressive) systems."""
  return model_class(config) is RecurrentCodec


__all__ = ["RecurrentCodec", "SYSTEMS", "VariableRateCodec", "build_model",
           "is_iterative", "model_class"]
