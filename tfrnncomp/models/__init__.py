"""Codec models, built from a :class:`tfrnncomp.config.CodecConfig`."""

from tfrnncomp.models.toderici2017 import RecurrentCodec


def build_model(config):
  """Returns the codec network of ``config``, with its weights created."""
  return RecurrentCodec(config).build_variables()


__all__ = ["RecurrentCodec", "build_model"]
