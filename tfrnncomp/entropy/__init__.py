"""Entropy coding of the codes: a binary PixelRNN and range coding.

- :mod:`~tfrnncomp.entropy.pixelrnn`: the entropy model (masked convolution,
  row LSTM, progressive context) and its configuration;
- :mod:`~tfrnncomp.entropy.bins`: the rule from logits to the range coder's
  256 probability bins, and their 16-bit table;
- :mod:`~tfrnncomp.entropy.integer`: the network's coding path in exact
  integer arithmetic, so that every machine computes the same bins;
- :mod:`~tfrnncomp.entropy.range_coding`: encoder and decoder loops over
  tensorflow-compression's range coding ops, deterministic by construction;
- :mod:`~tfrnncomp.entropy.saved_model`: the trained model as a SavedModel
  beside its codec (``CODEC_DIR/entropy/``);
- :mod:`~tfrnncomp.entropy.codes_dataset`: training codes made by a codec;
- :mod:`~tfrnncomp.entropy.training`: the training loop.

Importing the package imports neither TensorFlow nor tensorflow-compression
(the tools check their inputs first); ``BinaryPixelRNN`` and
``EntropyConfig`` are loaded on first access.
"""

__all__ = ["BinaryPixelRNN", "EntropyConfig"]


def __getattr__(name):
  if name in __all__:
    from tfrnncomp.entropy import pixelrnn  # pylint: disable=g-import-not-at-top
    return getattr(pixelrnn, name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
