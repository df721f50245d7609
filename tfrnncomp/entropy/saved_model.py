"""The trained entropy model as a SavedModel beside its codec.

:func:`save` writes a :class:`EntropyCoderModule` to ``CODEC_DIR/entropy/``
(:func:`entropy_directory`), where the tools look for it. It is a SavedModel
holding tensorflow-compression's range coding ops (load it after ``import
tensorflow_compression``; the codec SavedModel beside it keeps core ops only),
with three signatures:

- ``compress(codes: int8 [T, h, w, K])`` -> ``{"strings": string [T]}``,
  one range-coded chunk per iteration;
- ``decompress(strings: string [n], context: int8 [t0, rows, columns, K],
  rows: int32 [], columns: int32 [])`` -> ``{"codes": int8 [n, rows,
  columns, K], "ok": bool [n]}``: iterations t0 .. t0 + n - 1 after the
  ``context`` of the t0 earlier ones; ``ok[t]`` says the range decoder
  consumed chunk t exactly;
- ``cross_entropy(codes: int8 [T, h, w, K])`` -> ``{"bits": float32 [T]}``,
  the model's cross-entropy -sum log2 P(b_t) of each iteration, from the
  batched training path with unquantized probabilities.

(``rows`` and ``columns`` count code positions, 16 pixels each.) Beside it,
``entropy.json`` records the identifier that bitstreams carry and what the
model was made for:

    {"name": "binary_pixelrnn", "weights_sha256": "<hex>",
     "config": {...EntropyConfig...},
     "codec": {"name": ..., "weights_sha256": ...},   the codec it models
     "bins": {"num_bins": 256, "precision": 16, "bins_per_logit": 16},
     "arithmetic": {"kind": "integer", "version": 1, ...},  integer.py
     "training": {...}}

The coding signatures run the network's integer twin
(:mod:`tfrnncomp.entropy.integer`), so streams decode on any machine. The
weights hash covers the network's variables, the integer twin's *and* the
range coder's lookup table (a variable of the module): a stream decodes only
with the model whose hash it records. Re-exporting the codec (``tfrnncomp.export``)
replaces its directory and so drops a stale entropy model with it.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfrnncomp import errors
from tfrnncomp import export as export_lib
from tfrnncomp.entropy import bins
from tfrnncomp.entropy import integer
from tfrnncomp.entropy import range_coding

__all__ = ["ENTROPY_SUBDIRECTORY", "entropy_directory", "EntropyCoderModule",
           "save", "SavedEntropyCoder", "read_info", "load", "load_network"]

ENTROPY_SUBDIRECTORY = "entropy"
"""Where an entropy model lives inside its codec's directory."""

_JSON = "entropy.json"


def entropy_directory(codec_directory):
  return os.path.join(codec_directory, ENTROPY_SUBDIRECTORY)


class EntropyCoderModule(tf.Module):
  """The exported entropy coder and its three signatures."""

  def __init__(self, model):
    super().__init__(name=model.config.name)
    self.__dict__["_model"] = model  # Untracked; its variables in a list.
    self.model_variables = list(model.variables)
    # The coding path runs the network in exact integer arithmetic, so that
    # every machine computes the same bins (tfrnncomp/entropy/integer.py).
    self.coder = integer.IntegerPixelRNN(model)
    self.lookup = tf.Variable(bins.lookup_table(), trainable=False,
                              name="lookup")
    k = model.config.bits
    codes_spec = tf.TensorSpec([None, None, None, k], tf.int8, name="codes")

    @tf.function(input_signature=[codes_spec])
    def compress(codes):
      return {"strings": range_coding.compress(self.coder, self.lookup,
                                               codes)}

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name="strings"),
        tf.TensorSpec([None, None, None, k], tf.int8, name="context"),
        tf.TensorSpec([], tf.int32, name="rows"),
        tf.TensorSpec([], tf.int32, name="columns")])
    def decompress(strings, context, rows, columns):
      codes, ok = range_coding.decompress(self.coder, self.lookup, strings,
                                          rows, columns, context)
      return {"codes": codes, "ok": ok}

    @tf.function(input_signature=[codes_spec])
    def cross_entropy(codes):
      signs = tf.cast(codes, tf.float32)[:, None]
      logits = model(signs)
      nats = tf.reduce_sum(tf.nn.softplus(-signs * logits), axis=[1, 2, 3, 4])
      return {"bits": nats / np.log(2.)}

    self.compress = compress
    self.decompress = decompress
    self.cross_entropy = cross_entropy

  @property
  def weights(self):
    """What the weights hash covers: the network, its integer coding twin
    (the weights, biases and tables the coder runs on), the lookup table."""
    return self.model_variables + list(self.coder.variables) + [self.lookup]

  @property
  def signatures(self):
    return {"compress": self.compress, "decompress": self.decompress,
            "cross_entropy": self.cross_entropy}


def save(model, codec_directory, codec_identity, training=None):
  """Writes ``model`` to ``codec_directory/entropy/`` (atomically, replacing).

  Args:
    model: a built :class:`~tfrnncomp.entropy.pixelrnn.BinaryPixelRNN`.
    codec_directory: the codec SavedModel it models.
    codec_identity: the codec's ``model.json`` dict (name, weights_sha256).
    training: optional JSON-able dict of how it was trained.

  Returns:
    The ``entropy.json`` dict.
  """
  directory = entropy_directory(os.path.abspath(codec_directory))
  tmp = tempfile.mkdtemp(dir=os.path.dirname(directory),
                         prefix=".tmp-entropy-")
  try:
    module = EntropyCoderModule(model)
    tf.saved_model.save(module, tmp, signatures=module.signatures)
    info = {
        "name": model.config.name,
        "weights_sha256": export_lib.weights_hash(module.weights),
        "config": model.config.to_dict(),
        "codec": {"name": codec_identity["name"],
                  "weights_sha256": codec_identity["weights_sha256"]},
        "bins": {"num_bins": bins.NUM_BINS, "precision": bins.PRECISION,
                 "bins_per_logit": bins.BINS_PER_LOGIT},
        "arithmetic": integer.arithmetic_info(),
        "training": training or {},
    }
    with open(os.path.join(tmp, _JSON), "w") as f:
      json.dump(info, f, indent=2)
    umask = os.umask(0)  # mkdtemp made it 0700; give it the usual mode.
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    if os.path.exists(directory):
      shutil.rmtree(directory)
    os.replace(tmp, directory)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return info


class SavedEntropyCoder:
  """A loaded entropy model with NumPy and bytes in and out.

  Attributes:
    directory: the SavedModel directory.
    info: its ``entropy.json``.
    name, weights_sha256: its identifier.
    bits: code bits per position it codes.
  """

  def __init__(self, loaded, directory, info):
    self._loaded = loaded
    self.directory = directory
    self.info = info
    self.name = info["name"]
    self.weights_sha256 = info["weights_sha256"]
    self.bits = int(info["config"]["bits"])

  def _call(self, signature, what, **inputs):
    try:
      return self._loaded.signatures[signature](
          **{k: tf.constant(v) for k, v in inputs.items()})
    except tf.errors.OpError as e:
      message = errors.op_error_message(e.message or str(e))
      raise errors.ModelError(f"{self.directory}: {what} failed: {message}"
                              ) from None

  def compress(self, codes):
    """+-1 codes [T, h, w, K] -> list of T chunks (bytes)."""
    strings = self._call("compress", "entropy coding",
                         codes=np.asarray(codes, np.int8))["strings"]
    return [bytes(s) for s in strings.numpy()]

  def decompress(self, chunks, rows, columns, context=None):
    """n chunks -> int8 +-1 codes [n, rows, columns, K].

    Args:
      chunks: the range-coded chunks of iterations t0 .. t0 + n - 1.
      rows, columns: code positions.
      context: int8 codes [t0, rows, columns, K] of the iterations before
        (None: t0 = 0).

    Raises:
      FormatError: if a chunk does not decode cleanly (corrupt).
    """
    if context is None:
      context = np.zeros([0, rows, columns, self.bits], np.int8)
    start = len(context)
    outputs = self._call("decompress", "entropy decoding",
                         strings=np.array(list(chunks), dtype=object),
                         context=np.asarray(context, np.int8),
                         rows=np.int32(rows), columns=np.int32(columns))
    ok = outputs["ok"].numpy()
    if not ok.all():
      raise errors.FormatError(f"the range-coded chunk of iteration "
                               f"{start + int(np.argmin(ok))} does not decode "
                               f"cleanly (corrupt stream)")
    return outputs["codes"].numpy()

  def cross_entropy(self, codes):
    """float [T]: the model's cross-entropy (bits) of each iteration's codes."""
    return self._call("cross_entropy", "cross-entropy",
                      codes=np.asarray(codes, np.int8))["bits"].numpy()


def read_info(directory):
  """The ``entropy.json`` of the entropy model in ``directory``.

  Raises:
    ModelError: if it is missing or incomplete.
  """
  try:
    with open(os.path.join(directory, _JSON)) as f:
      info = json.load(f)
    types = {"name": str, "weights_sha256": str, "codec": dict,
             "config": dict}
    for key, kind in types.items():
      if not isinstance(info[key], kind):
        raise TypeError(f"{key!r} is not a {kind.__name__}")
    int(info["config"]["bits"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise errors.ModelError(f"entropy model {directory} has no valid "
                            f"{_JSON}: {_one_line(e)}") from None
  return info


def load(directory, info=None):
  """Loads the entropy model in ``directory`` (a codec's ``entropy/``).

  Args:
    directory: the SavedModel directory.
    info: its :func:`read_info`, if already read.

  Raises:
    ModelError: if it is missing, unreadable or incomplete.
  """
  info = info or read_info(directory)
  import tensorflow_compression  # pylint: disable=g-import-not-at-top,unused-import
  try:
    loaded = tf.saved_model.load(directory)
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ModelError(f"cannot load entropy model {directory}: "
                            f"{_one_line(e)}") from None
  missing = [n for n in ("compress", "decompress", "cross_entropy")
             if n not in loaded.signatures]
  if missing:
    raise errors.ModelError(f"entropy model {directory} has no "
                            f"{' or '.join(missing)} signature")
  return SavedEntropyCoder(loaded, directory, info)


def _one_line(error):
  lines = str(error).strip().splitlines() or [type(error).__name__]
  return lines[0][:200]


def load_network(directory):
  """The trained :class:`~tfrnncomp.entropy.pixelrnn.BinaryPixelRNN` itself.

  For training a codec against its entropy model (``tools/train.py
  --rate_weight``): the Keras network with the saved weights, rather than the
  coding signatures of :func:`load`.

  Args:
    directory: an entropy model's directory, or a codec's directory holding
      one in ``entropy/``.

  Returns:
    (network, info): the network and its :func:`read_info`.

  Raises:
    ModelError: if there is no complete entropy model there.
  """
  if os.path.isdir(entropy_directory(directory)):
    directory = entropy_directory(directory)
  info = read_info(directory)
  from tfrnncomp.entropy import pixelrnn  # pylint: disable=g-import-not-at-top
  import tensorflow_compression  # pylint: disable=g-import-not-at-top,unused-import
  try:
    config = pixelrnn.EntropyConfig.from_dict(info["config"])
    network = pixelrnn.BinaryPixelRNN(config).build_variables()
    kept = export_lib.restore_weights(network, directory)
  except Exception as e:  # pylint: disable=broad-except
    raise errors.ModelError(f"cannot load entropy model {directory}: "
                            f"{_one_line(e)}") from None
  if kept:
    raise errors.ModelError(f"entropy model {directory} lacks "
                            f"{', '.join(kept)}")
  return network, info
