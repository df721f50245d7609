"""What the command-line tools share: running, model loading, file operations.

``tools/encoder.py``, ``tools/decoder.py`` and ``tools/demo.py`` are thin absl
programs over this module:

- :func:`run` runs a ``main(argv)`` so that every user error (a bad flag, a
  :class:`~tfrnncomp.errors.TfrnncompError`, an ``OSError`` such as a
  read-only directory) ends the program with one line
  ``<program>: error: <message>`` on stderr and a non-zero exit status (2 for
  usage errors, 1 for the others), never a traceback.
- :func:`load_codec` loads a codec SavedModel written by
  :func:`tfrnncomp.export.export` (TensorFlow only; no other package needed)
  as a :class:`SavedCodec`, or raises :class:`~tfrnncomp.errors.ModelError`;
  its entropy model (``entropy/`` inside it, :mod:`tfrnncomp.entropy`) is
  loaded, with tensorflow-compression, when a stream first needs it.
- :func:`compress` (image -> bitstream bytes, :mod:`tfrnncomp.bitstream`) and
  :func:`decompress` (bytes -> the reconstruction after each iteration).
- :func:`encode_file` (image file -> code file) and :func:`decode_file` (code
  file -> ``image_00.png`` ... one PNG per iteration) are the two tools'
  operations. Both check their inputs and outputs before running the network
  and write atomically, so no partial output file is ever left behind.

Code files come in two formats. The *bitstream* (:mod:`tfrnncomp.bitstream`)
is written unless the output name ends in ``.npz``, when it is the original
release's ``.npz`` (:mod:`tfrnncomp.codes_io`, unchanged). :func:`decode_file`
tells them apart by their first bytes, never by the name.

Entropy coding. In a bitstream each iteration's codes are range-coded with the
codec's entropy model if it has one and that is smaller than the raw bits,
else stored raw (packed bits, exactly bits / 256 bpp): a codec directory
without ``entropy/`` still writes and reads bitstreams, only without the
saving. An entropy model made for another codec (``entropy.json`` names the
codec by name and weights hash) is a :class:`~tfrnncomp.errors.ModelError`.
Decoding checks that the stream's codec system, name and weights hash, and
its entropy model's hash, are the given model's, and names both if not.

Trust. A code file carries only these names and hashes, never a path: the
model is always the one the caller gives (``--model``), its entropy model the
``entropy/`` inside it, and a file that names another is refused, never
loaded. A SavedModel runs its own graph when loaded and called, so load only
models from sources you trust; code files, on the other hand, may come from
anywhere: every malformed, corrupt, truncated or forged one is a
:class:`~tfrnncomp.errors.TfrnncompError` (``tools/fuzz_decoder.py`` checks
this on mutated files).

Resources. Decoding takes time and memory in proportion to the image size
a file declares (about 1.2 KB of memory per pixel with the shipped model, and
range decoding visits each 16x16 block in turn), and a small file can declare
a large image (the range coder can code a flat image in a few bytes).
:func:`decode_file` and :func:`decompress` therefore refuse images of more
than ``max_pixels`` pixels (after padding to multiples of 16; default
:data:`MAX_DECODE_PIXELS`, 4K UHD fits) with an
:class:`~tfrnncomp.errors.InputError`, before decoding anything.

Both GDN systems. :func:`load_codec` dispatches on the SavedModel's system
(``config.json`` "system", written by :func:`tfrnncomp.export.export`, or
``model.json``'s): the recurrent systems (Toderici et al. 2017, Islam et al.
2021) load as a :class:`SavedCodec`, the variable-rate codec of Akbari et
al. 2020 ("Learned Variable-Rate Image Compression with Residual Divisive
Normalization", ICME 2020) as a :class:`SavedVariableRateCodec`, whose rate
is B bits per channel (1..8) instead of iterations. :func:`compress`,
:func:`decompress`, :func:`encode_file` and :func:`decode_file` take either:
an akbari2020 stream is the container's version-2 layout (side info and the
range-coded code map in chunk 0, the optional HEVC enhancement layer in
chunk 1; :mod:`tfrnncomp.bitstream`), it has no ``.npz`` form, and decodes to
one image (``image_00.png``). The decoder reads the system from the stream's
header; a model of another system (or other weights) is a
:class:`~tfrnncomp.errors.ModelError` naming both.

TensorFlow is imported only when a model is loaded, so ``--help`` and most
usage errors answer at once.
"""

import dataclasses
import functools
import json
import os
import sys
import tempfile
import types
from typing import List, Optional

from absl import app
from absl import flags
from absl import logging
import numpy as np

from tfrnncomp import bitstream
from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import image_io
from tfrnncomp import tiling

__all__ = ["run", "error_message", "DEFAULT_SYSTEM", "MAX_ITERATIONS",
           "VARIABLE_RATE_SYSTEM", "MAX_BITS_PER_CHANNEL", "model_system",
           "SavedCodec", "SavedVariableRateCodec", "load_codec",
           "stream_chunks", "write_stream",
           "compress", "stream_codes", "Decompressed", "decompress",
           "code_file_format", "EncodeResult", "encode_file", "DecodeResult",
           "decode_file", "decoded_image_path", "MAX_DECODE_PIXELS"]

DEFAULT_SYSTEM = "toderici2017"
"""The system of a codec whose model.json and config.json name none."""

MAX_ITERATIONS = 16
"""Most iterations :func:`encode_file` tries for a target bpp."""

MAX_DECODE_PIXELS = 2 ** 23
"""Default limit of the (padded) image size decoding accepts: 8.4 MP."""

VARIABLE_RATE_SYSTEM = bitstream.VARIABLE_RATE_SYSTEM
"""The system of Akbari et al. 2020's variable-rate codec, "akbari2020"."""

MAX_BITS_PER_CHANNEL = bitstream.MAX_BITS_PER_CHANNEL

MAX_SEARCH_STEPS = 64
"""The most code-search steps per iteration (:mod:`tfrnncomp.code_search`)."""


def check_search_steps(search_steps):
  """``search_steps`` as an int in 0 .. MAX_SEARCH_STEPS.

  Raises:
    InputError: otherwise.
  """
  if (isinstance(search_steps, bool) or int(search_steps) != search_steps or
      not 0 <= search_steps <= MAX_SEARCH_STEPS):
    raise errors.InputError(f"search steps must be an integer from 0 to "
                            f"{MAX_SEARCH_STEPS}, got {search_steps}")
  return int(search_steps)
"""Largest B (bits per code map channel) of an akbari2020 codec; 1 is the
smallest."""


# --- Running a tool. --------------------------------------------------------


def error_message(error):
  """An exception as a one-line message."""
  if isinstance(error, OSError) and error.strerror:
    text = error.strerror
    if error.filename is not None:
      text = f"{error.filename}: {text}"
  else:
    text = str(error) or type(error).__name__
  return " ".join(text.split())


def _fail(error, status):
  prog = os.path.basename(sys.argv[0]) or "tfrnncomp"
  sys.stdout.flush()
  print(f"{prog}: error: {error_message(error)}", file=sys.stderr, flush=True)
  sys.exit(status)


def run(main):
  """Parses the absl flags and runs ``main``; user errors print one line.

  Usage errors (unknown flag, bad flag value, ``app.UsageError``) exit with
  status 2, other user errors (:class:`~tfrnncomp.errors.TfrnncompError`,
  ``OSError``) with status 1, an interrupt (Ctrl-C) with 130. Other
  exceptions are bugs and keep their traceback.
  """
  def parse(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      _fail(e, 2)

  def guarded_main(argv):
    # Keep library INFO chatter (absl sets INFO by default) off the terminal.
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except app.UsageError as e:
      _fail(e, 2)
    except (errors.TfrnncompError, OSError) as e:
      _fail(e, 1)
    except KeyboardInterrupt:
      _fail("interrupted", 130)

  app.run(guarded_main, flags_parser=parse)


# --- The codec. -------------------------------------------------------------


def _read_json(path):
  try:
    with open(path) as f:
      value = json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, ValueError) as e:
    raise errors.ModelError(f"cannot read {path}: {error_message(e)}"
                            ) from None
  if not isinstance(value, dict):
    raise errors.ModelError(f"{path} does not hold a JSON object")
  return value


def _read_identity(loaded, directory, default_system):
  """(name, weights_sha256, system) of a codec SavedModel.

  From ``model.json``, then ``config.json``, then the directory's name; the
  hash is computed from the variables if ``model.json`` lacks it.
  """
  identity = _read_json(os.path.join(directory, "model.json"))
  config = _read_json(os.path.join(directory, "config.json"))
  name = str(identity.get("name") or config.get("name") or
             os.path.basename(os.path.normpath(directory)))
  weights_sha256 = identity.get("weights_sha256")
  if not weights_sha256:
    from tfrnncomp import export  # pylint: disable=g-import-not-at-top
    weights_sha256 = export.weights_hash(
        getattr(loaded, "model_variables", loaded.variables))
  system = str(identity.get("system") or config.get("system") or
               default_system)
  return name, weights_sha256, system


class SavedCodec:
  """A codec SavedModel (see :mod:`tfrnncomp.export`) with NumPy in and out.

  Attributes:
    directory: the SavedModel directory.
    bits: code bits per 16x16 block and iteration, read from the ``decode``
      signature.
    name, weights_sha256: the model identifier (``model.json``; the hash is
      computed from the variables if the file is missing).
    system: the codec system ("toderici2017" unless ``model.json`` or
      ``config.json`` has a "system" entry).
  """

  def __init__(self, loaded, directory):
    self._loaded = loaded  # Keeps the variables the signatures use alive.
    self.directory = directory
    self._encode = loaded.signatures["encode"]
    # Exports before the code search (tfrnncomp.code_search) lack it.
    self._encode_search = loaded.signatures.get("encode_search")
    self._decode = loaded.signatures["decode"]
    _, specs = self._decode.structured_input_signature
    self.bits = int(specs["codes"].shape[-1])
    self.name, self.weights_sha256, self.system = _read_identity(
        loaded, directory, DEFAULT_SYSTEM)
    self._entropy = None
    self._entropy_loaded = False

  @property
  def identity(self):
    return {"name": self.name, "weights_sha256": self.weights_sha256}

  def describe_identity(self):
    return f"{self.system} {self.name} (weights {self.weights_sha256[:12]})"

  @property
  def entropy(self):
    """The entropy model in ``directory/entropy`` (loaded once), or None.

    Raises:
      ModelError: if it exists but cannot be loaded, codes another number of
        bits, or was made for another codec.
    """
    if not self._entropy_loaded:
      from tfrnncomp.entropy import saved_model  # pylint: disable=g-import-not-at-top
      path = saved_model.entropy_directory(self.directory)
      entropy = None
      if os.path.isdir(path):
        info = saved_model.read_info(path)  # Checked before loading.
        made_for = info["codec"]
        if (made_for.get("name"), made_for.get("weights_sha256")) != (
            self.name, self.weights_sha256):
          raise errors.ModelError(
              f"entropy model {path} was made for codec {made_for.get('name')}"
              f" (weights {str(made_for.get('weights_sha256'))[:12]}), not "
              f"{self.name} (weights {self.weights_sha256[:12]}): retrain it "
              f"with tools/train_entropy.py or remove it")
        bits = int(info["config"]["bits"])
        if bits != self.bits:
          raise errors.ModelError(f"entropy model {path} codes {bits} bits per "
                                  f"position, the codec {self.bits}")
        entropy = saved_model.load(path, info)
      self._entropy, self._entropy_loaded = entropy, True
    return self._entropy

  def _call(self, function, what, **inputs):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      return function(**{k: tf.constant(v) for k, v in inputs.items()})
    except tf.errors.OpError as e:
      message = errors.op_error_message(e.message or str(e))
      raise errors.ModelError(f"{self.directory}: {what} failed: {message}"
                              ) from None

  # Tiling of large images (tfrnncomp.tiling): the same for both sides.
  tile = tiling.TILE
  margin = tiling.MARGIN
  max_untiled_pixels = tiling.MAX_UNTILED_PIXELS

  def encode(self, image, iterations, search_steps=0):
    """uint8 [H, W, 3] -> int8 +-1 codes [iterations, H/16, W/16, bits].

    H/16 and W/16 are rounded up (the image is padded to a multiple of 16).
    Images over ``max_untiled_pixels`` are encoded in tiles
    (:mod:`tfrnncomp.tiling`). ``search_steps`` > 0 searches each
    iteration's codes against the decoder (:mod:`tfrnncomp.code_search`):
    slower, better codes for the same decoder.

    Raises:
      InputError: if ``search_steps`` is negative.
      ModelError: if it is positive and the SavedModel predates the search
        (re-export it: ``tools/export.py --savedmodel DIR --output NEW``).
    """
    search_steps = check_search_steps(search_steps)
    if search_steps and self._encode_search is None:
      raise errors.ModelError(
          f"{self.directory} has no encode_search signature (exported before "
          f"the code search): re-export it with tools/export.py --savedmodel "
          f"{self.directory} --output NEW_DIRECTORY")
    encode = functools.partial(self._encode_whole, search_steps=search_steps)
    return tiling.encode(encode, np.asarray(image, np.uint8), iterations,
                         self.tile, self.margin, self.max_untiled_pixels)

  def _encode_whole(self, image, iterations, search_steps=0):
    image = np.asarray(image, np.uint8)
    if search_steps:
      return self._call(self._encode_search, "encode", image=image,
                        iterations=np.int32(iterations),
                        search_steps=np.int32(search_steps))["codes"].numpy()
    return self._call(self._encode, "encode", image=image,
                      iterations=np.int32(iterations))["codes"].numpy()

  def decode(self, codes, height, width):
    """int8 codes [T, h, w, bits] -> uint8 [T, height, width, 3].

    One reconstruction per iteration, cropped to height x width. Images over
    ``max_untiled_pixels`` are decoded in tiles (:mod:`tfrnncomp.tiling`).
    """
    return tiling.decode(self._decode_whole, np.asarray(codes, np.int8),
                         height, width, self.tile, self.margin,
                         self.max_untiled_pixels)

  def _decode_whole(self, codes, height, width):
    return self._call(self._decode, "decode", codes=np.asarray(codes, np.int8),
                      height=np.int32(height), width=np.int32(width)
                      )["x_hat"].numpy()


def model_system(directory):
  """The system of the codec SavedModel in ``directory``, without loading it.

  ``model.json``'s or ``config.json``'s "system"; :data:`DEFAULT_SYSTEM` if
  neither names one or they cannot be read (:func:`load_codec` reports
  that).
  """
  directory = os.fspath(directory)
  try:
    identity = _read_json(os.path.join(directory, "model.json"))
    config = _read_json(os.path.join(directory, "config.json"))
  except errors.ModelError:
    return DEFAULT_SYSTEM
  return str(identity.get("system") or config.get("system") or DEFAULT_SYSTEM)


class SavedVariableRateCodec:
  """An Akbari 2020 codec SavedModel with NumPy in and out.

  The ``encode`` / ``decode`` signatures of
  :class:`tfrnncomp.export.VariableRateModule` (Akbari et al. 2020, ICME:
  one code map per image, quantized with B bits per channel chosen at
  coding time).

  Attributes:
    directory: the SavedModel directory.
    channels: C, the code map's channels (the ``decode`` signature's).
    name, weights_sha256: the model identifier (as :class:`SavedCodec`'s).
    system: "akbari2020".
    entropy: None (the code map's coder needs no learned model).
    signatures: the signatures as keyword functions, for
      :func:`tfrnncomp.models.akbari2020_coding.compress`.
  """

  entropy = None
  identity = SavedCodec.identity
  describe_identity = SavedCodec.describe_identity
  _call = SavedCodec._call  # pylint: disable=protected-access

  def __init__(self, loaded, directory):
    self._loaded = loaded
    self.directory = directory
    self._encode = loaded.signatures["encode"]
    self._decode = loaded.signatures["decode"]
    _, specs = self._decode.structured_input_signature
    self.channels = int(specs["code_map"].shape[-1])
    self.name, self.weights_sha256, _ = _read_identity(
        loaded, directory, VARIABLE_RATE_SYSTEM)
    self.system = VARIABLE_RATE_SYSTEM
    # As the module's functions, failing with ModelError.
    self.signatures = types.SimpleNamespace(
        encode=lambda **inputs: self._call(self._encode, "encode", **inputs),
        decode=lambda **inputs: self._call(self._decode, "decode", **inputs))

  def encode(self, image, bits_per_channel):
    """uint8 [H, W, 3] -> (code map, minimum, maximum).

    The code map is uint8 [ceil(H/16), ceil(W/16), C] with levels in
    [0, 2^B - 1]; minimum and maximum are float32 [C] (the side info).
    """
    out = self._call(self._encode, "encode",
                     image=np.asarray(image, np.uint8),
                     bits_per_channel=np.int32(bits_per_channel))
    return (out["code_map"].numpy(), out["minimum"].numpy(),
            out["maximum"].numpy())

  def decode(self, code_map, minimum, maximum, bits_per_channel, height,
             width):
    """A code map and its side info -> uint8 [height, width, 3]."""
    return self._call(
        self._decode, "decode", code_map=np.asarray(code_map, np.uint8),
        minimum=np.asarray(minimum, np.float32),
        maximum=np.asarray(maximum, np.float32),
        bits_per_channel=np.int32(bits_per_channel), height=np.int32(height),
        width=np.int32(width))["x_hat"].numpy()


def load_codec(directory):
  """Loads the codec SavedModel in ``directory``, of either kind.

  Returns:
    A :class:`SavedVariableRateCodec` if its system (:func:`model_system`) is
    "akbari2020", else a :class:`SavedCodec`.

  Raises:
    ModelError: if ``directory`` does not exist, is not a SavedModel, cannot
      be loaded, lacks the ``encode`` and ``decode`` signatures, or has the
      signatures of another system than its config.json says.
  """
  directory = os.fspath(directory)
  if not os.path.exists(directory):
    raise errors.ModelError(f"model {directory} does not exist (pass --model "
                            f"with a SavedModel directory)")
  if not os.path.isdir(directory):
    raise errors.ModelError(f"model {directory} is not a directory")
  if not any(os.path.isfile(os.path.join(directory, name))
             for name in ("saved_model.pb", "saved_model.pbtxt")):
    raise errors.ModelError(f"model {directory} is not a SavedModel (it has "
                            f"no saved_model.pb)")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    loaded = tf.saved_model.load(directory)
  except Exception as e:  # pylint: disable=broad-except
    # Corrupt protos, missing variables, unknown ops: all say the same thing.
    lines = str(e).strip().splitlines() or [type(e).__name__]
    raise errors.ModelError(f"cannot load model {directory}: {lines[0]}"
                            ) from None
  missing = [name for name in ("encode", "decode")
             if name not in loaded.signatures]
  if missing:
    raise errors.ModelError(f"model {directory} is not a tfrnncomp codec (no "
                            f"{' or '.join(missing)} signature)")
  system = model_system(directory)
  _, specs = loaded.signatures["decode"].structured_input_signature
  if ("code_map" in specs) != (system == VARIABLE_RATE_SYSTEM):
    raise errors.ModelError(
        f"model {directory} says system {system} but has the signatures of "
        f"{'an akbari2020' if 'code_map' in specs else 'a recurrent'} codec")
  if system == VARIABLE_RATE_SYSTEM:
    return SavedVariableRateCodec(loaded, directory)
  return SavedCodec(loaded, directory)


def _is_codec(model):
  return isinstance(model, (SavedCodec, SavedVariableRateCodec))


def _as_codec(model):
  return model if _is_codec(model) else load_codec(model)


def _system_of(model):
  """A codec's system, or a directory's (without loading it)."""
  return model.system if _is_codec(model) else model_system(model)


# --- Bitstreams. ------------------------------------------------------------


ENTROPY_CODING = ("auto", "always", "off")


def _check_entropy_coding(entropy_coding):
  if entropy_coding not in ENTROPY_CODING:
    raise errors.InputError(
        f"entropy coding must be one of {', '.join(ENTROPY_CODING)}, got "
        f"{entropy_coding!r}")


def stream_chunks(codec, codes, entropy_coding="auto"):
  """The chunks of codes [T, h, w, K]: list of (coding, bytes), one each.

  ``entropy_coding`` (one of :data:`ENTROPY_CODING`) chooses each chunk's
  coding when the codec has an entropy model:

  - ``"auto"`` (the default): range-coded if that is smaller than the raw
    bits, else raw, so a chunk never exceeds its raw size;
  - ``"always"``: range-coded (for diagnostics: the coder on every chunk);
  - ``"off"``: raw, without running the entropy model (fast encoding; the
    stream then needs no entropy model to decode).

  Without an entropy model every chunk is raw, and ``"always"`` is an error.

  Raises:
    InputError: for an unknown ``entropy_coding``, or ``"always"`` with a
      codec without an entropy model.
  """
  _check_entropy_coding(entropy_coding)
  codes = np.asarray(codes, np.int8)
  raw = [bitstream.pack_raw(c) for c in codes]
  entropy = codec.entropy
  if entropy is None and entropy_coding == "always":
    raise errors.InputError(
        f"entropy coding 'always' needs an entropy model; the model "
        f"{getattr(codec, 'directory', codec)} has none")
  if entropy is None or entropy_coding == "off":
    return [(bitstream.RAW, r) for r in raw]
  coded = entropy.compress(codes)
  return [(bitstream.RANGE_CODED, c)
          if len(c) < len(r) or entropy_coding == "always"
          else (bitstream.RAW, r)
          for c, r in zip(coded, raw)]


def write_stream(codec, chunks, height, width):
  """The bitstream of ``chunks`` (of :func:`stream_chunks`) of an image."""
  entropy = codec.entropy if any(c == bitstream.RANGE_CODED
                                 for c, _ in chunks) else None
  return bitstream.write(
      codec.system, codec.name, codec.weights_sha256, height, width,
      codec.bits, chunks, entropy_name=entropy.name if entropy else "",
      entropy_sha256=entropy.weights_sha256 if entropy else "")


def compress(codec, image, rate, enhancement_quality=None, search_steps=0):
  """uint8 image [H, W, 3] -> its bitstream.

  Args:
    codec: a :class:`SavedCodec` or :class:`SavedVariableRateCodec`.
    image: uint8 [H, W, 3].
    rate: the number of iterations (recurrent systems), or B, the bits per
      code map channel, 1 to 8 (akbari2020).
    enhancement_quality: akbari2020 only: the HEVC quality (0 to 100) of
      the enhancement layer, or None for none.
    search_steps: recurrent systems only: code-search steps per iteration
      (:mod:`tfrnncomp.code_search`; 0: none).

  Raises:
    InputError: if ``rate``, ``enhancement_quality`` or ``search_steps`` are
      out of range or do not apply to the system.
  """
  search_steps = check_search_steps(search_steps)
  if isinstance(codec, SavedVariableRateCodec):
    if search_steps:
      raise errors.InputError("the code search is for recurrent codecs, not "
                              "akbari2020")
    return _compress_variable_rate(codec, image, rate, enhancement_quality)
  if enhancement_quality is not None:
    raise errors.InputError(f"an enhancement layer is for akbari2020 codecs; "
                            f"the model {codec.directory} is {codec.system}")
  codes = codec.encode(image, rate, search_steps=search_steps)
  return write_stream(codec, stream_chunks(codec, codes), *image.shape[:2])


def _check_bits_per_channel(bits):
  if isinstance(bits, bool) or int(bits) != bits or not (
      1 <= bits <= MAX_BITS_PER_CHANNEL):
    raise errors.InputError(f"bits per channel must be an integer from 1 to "
                            f"{MAX_BITS_PER_CHANNEL}, got {bits}")
  return int(bits)


def _check_enhancement_quality(quality):
  if quality is None:
    return None
  if isinstance(quality, bool) or int(quality) != quality or not (
      0 <= quality <= 100):
    raise errors.InputError(f"the enhancement layer's HEVC quality must be "
                            f"an integer from 0 to 100, got {quality}")
  return int(quality)


def _compress_variable_rate(codec, image, bits, enhancement_quality):
  """An akbari2020 stream (:mod:`tfrnncomp.bitstream`'s version 2 layout)."""
  from tfrnncomp.models import akbari2020_coding  # pylint: disable=g-import-not-at-top
  bits = _check_bits_per_channel(bits)
  quality = _check_enhancement_quality(enhancement_quality)
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise errors.InputError(f"the image must be uint8 [H, W, 3], got "
                            f"{image.dtype} {list(image.shape)}")
  height, width = image.shape[:2]
  padded = -(-height // bitstream.BLOCK) * -(-width // bitstream.BLOCK) * (
      bitstream.BLOCK ** 2)
  if padded > bitstream.MAX_PIXELS:  # The container's limit, checked early.
    raise errors.InputError(f"{height}x{width} pixels exceed the maximum of "
                            f"{bitstream.MAX_PIXELS}")
  try:
    parts = akbari2020_coding.compress(codec.signatures, image, bits,
                                       enhancement_quality=quality)
  except errors.TfrnncompError:
    raise
  except ValueError as e:  # A model whose outputs break the format.
    raise errors.ModelError(f"{codec.directory}: {error_message(e)}"
                            ) from None
  chunks = [(bitstream.CODE_MAP, bitstream.pack_code_map_chunk(
      parts.channels, parts.side_info, parts.code_map))]
  if parts.enhancement:
    chunks.append((bitstream.ENHANCEMENT, parts.enhancement))
  return bitstream.write(codec.system, codec.name, codec.weights_sha256,
                         height, width, bits, chunks)


def _check_stream_model(codec, header, name):
  """Raises ModelError unless ``codec`` made the stream."""
  made_by = (f"{header.system} {header.codec_name} (weights "
             f"{header.codec_sha256[:12]})")
  if (header.system, header.codec_name, header.codec_sha256) != (
      codec.system, codec.name, codec.weights_sha256):
    raise errors.ModelError(f"{name} was made by codec {made_by}, the model "
                            f"{codec.directory} is {codec.describe_identity()}")
  if not header.variable_rate and header.bits != codec.bits:  # Collisions.
    raise errors.ModelError(f"{name} has {header.bits} bits per block, the "
                            f"model {codec.directory} decodes {codec.bits}")


def _entropy_for(codec, header, name):
  entropy = codec.entropy
  wanted = f"{header.entropy_name} (weights {header.entropy_sha256[:12]})"
  if entropy is None:
    raise errors.ModelError(f"{name} is range-coded with entropy model "
                            f"{wanted}; the model {codec.directory} has no "
                            f"entropy model")
  if (entropy.name, entropy.weights_sha256) != (header.entropy_name,
                                                header.entropy_sha256):
    raise errors.ModelError(f"{name} is range-coded with entropy model "
                            f"{wanted}, the model {codec.directory} has "
                            f"{entropy.name} (weights "
                            f"{entropy.weights_sha256[:12]})")
  return entropy


def stream_codes(codec, header, chunks, name="stream"):
  """The codes [n, h, w, K] of a stream's chunks (of :func:`bitstream.read`)."""
  _check_stream_model(codec, header, name)
  rows, columns, bits = header.rows, header.columns, header.bits
  codes = np.zeros([0, rows, columns, bits], np.int8)
  t = 0
  while t < len(chunks):
    coding = chunks[t][0]
    run = t
    while run < len(chunks) and chunks[run][0] == coding:
      run += 1
    if coding == bitstream.RAW:
      try:
        decoded = np.stack([bitstream.unpack_raw(c, rows, columns, bits)
                            for _, c in chunks[t:run]])
      except errors.FormatError as e:
        raise errors.FormatError(f"{name}: {e}") from None
    else:
      try:
        decoded = _entropy_for(codec, header, name).decompress(
            [c for _, c in chunks[t:run]], rows, columns, context=codes)
      except errors.FormatError as e:
        raise errors.FormatError(f"{name}: {e}") from None
    codes = np.concatenate([codes, decoded])
    t = run
  return codes


@dataclasses.dataclass(frozen=True)
class Decompressed:
  """A decoded stream: its header, codes and reconstructions."""

  header: bitstream.Header
  # int8 [n, h, w, K]; akbari2020: the code map, int32 [h, w, C].
  codes: np.ndarray
  # uint8 [n, H, W, 3], after each iteration; akbari2020: [1, H, W, 3].
  x_hat: np.ndarray
  # akbari2020: the code map's side info, float32 [C] each.
  minimum: Optional[np.ndarray] = None
  maximum: Optional[np.ndarray] = None
  # akbari2020: the base layer's image [1, H, W, 3] (before enhancement).
  base: Optional[np.ndarray] = None


def _check_decode_size(height, width, max_pixels, name):
  """Raises InputError if a height x width image is over ``max_pixels``."""
  rows, columns = -(-height // codes_io.BLOCK), -(-width // codes_io.BLOCK)
  padded = rows * columns * codes_io.BLOCK ** 2
  if max_pixels is not None and padded > max_pixels:
    raise errors.InputError(
        f"{name}: its {height}x{width} image ({padded} pixels padded) is "
        f"over the decoding limit of {max_pixels} pixels")


def decompress(codec, data, iterations=None, name="stream",
               max_pixels=MAX_DECODE_PIXELS):
  """Bitstream bytes -> :class:`Decompressed` (``iterations`` or all held).

  An akbari2020 stream (for ``codec`` a :class:`SavedVariableRateCodec`)
  decodes to one image; ``iterations`` then counts its layers (1: the base
  layer without the enhancement layer).

  Raises InputError if the image is over ``max_pixels`` (None: no limit).
  """
  header, chunks = bitstream.read(data, iterations, name=name)
  _check_decode_size(header.height, header.width, max_pixels, name)
  if header.variable_rate or isinstance(codec, SavedVariableRateCodec):
    return _decompress_variable_rate(codec, header, chunks, name)
  codes = stream_codes(codec, header, chunks, name)
  return Decompressed(header, codes,
                      codec.decode(codes, header.height, header.width))


def _decompress_variable_rate(codec, header, chunks, name):
  """An akbari2020 stream's chunks -> :class:`Decompressed` (one image)."""
  from tfrnncomp.models import akbari2020_coding  # pylint: disable=g-import-not-at-top
  _check_stream_model(codec, header, name)  # Names both if not its model.
  try:
    channels, side_info, coded = bitstream.unpack_code_map_chunk(chunks[0][1])
  except errors.FormatError as e:
    raise errors.FormatError(f"{name}: {e}") from None
  if channels != codec.channels:  # Only if a hash collides.
    raise errors.FormatError(f"{name} has a code map of {channels} channels, "
                             f"the model {codec.directory} decodes "
                             f"{codec.channels}")
  minimum, maximum = akbari2020_coding.unpack_side_info(side_info, channels)
  if not (np.isfinite(minimum).all() and np.isfinite(maximum).all()):
    raise errors.FormatError(f"{name}: its side information is not finite")
  try:
    code_map = akbari2020_coding.decode_code_map(
        coded, header.rows, header.columns, channels, header.bits)
  except ValueError as e:
    raise errors.FormatError(f"{name}: {error_message(e)}") from None
  base = codec.decode(code_map, minimum, maximum, header.bits, header.height,
                      header.width)[None]
  x_hat = base
  if len(chunks) > 1:
    from tfrnncomp import enhancement  # pylint: disable=g-import-not-at-top
    try:
      x_hat = enhancement.decode_residual(chunks[1][1], base[0])[None]
    except errors.TfrnncompError:
      raise
    except (ValueError, RuntimeError, OSError, SyntaxError) as e:
      raise errors.FormatError(f"{name}: its enhancement layer does not "
                               f"decode: {error_message(e)}") from None
  return Decompressed(header, code_map, x_hat, minimum=minimum,
                      maximum=maximum, base=base)


# --- The tools' operations. -------------------------------------------------


def code_file_format(path):
  """"npz" if ``path`` names an .npz file, else "bitstream" (for writing)."""
  return "npz" if os.fspath(path).lower().endswith(".npz") else "bitstream"


@dataclasses.dataclass(frozen=True)
class EncodeResult:
  """What :func:`encode_file` wrote."""

  output_codes: str
  iterations: int
  bits: int
  height: int
  width: int
  file_bytes: int
  format: str = "npz"  # "npz" or "bitstream".
  range_coded: int = 0  # Iterations range-coded (bitstream only).
  entropy_model: str = ""  # The codec's entropy model (bitstream only).
  entropy_coding: str = "auto"  # See stream_chunks.
  search_steps: int = 0  # Code-search steps per iteration (code_search).
  # akbari2020 (then ``iterations`` is 1 and ``bits`` is C * B):
  system: str = ""
  bits_per_channel: int = 0  # B.
  enhancement_quality: Optional[int] = None  # None: no enhancement layer.
  enhancement_bytes: int = 0

  @property
  def nominal_bpp(self):
    """Code bits per pixel of the padded image: iterations * bits / 256."""
    return self.iterations * self.bits / codes_io.BLOCK ** 2

  @property
  def file_bpp(self):
    """Bits of the code file per pixel of the input image."""
    return self.file_bytes * 8 / (self.height * self.width)

  def describe(self):
    if self.system == VARIABLE_RATE_SYSTEM:
      layer = (f"an HEVC enhancement layer at quality "
               f"{self.enhancement_quality}: {self.enhancement_bytes} bytes"
               if self.enhancement_quality is not None else
               "no enhancement layer")
      return (f"{self.output_codes}: akbari2020, B={self.bits_per_channel} "
              f"bits per channel, {self.width}x{self.height} pixels, "
              f"{self.nominal_bpp:.4f} bpp nominal ({self.bits} bits per "
              f"16x16 block: {self.bits // self.bits_per_channel} channels x "
              f"B), {self.file_bpp:.4f} bpp in the file ({self.file_bytes} "
              f"bytes; bitstream, code map range-coded, {layer})")
    plural = "s" if self.iterations > 1 else ""
    if self.format == "npz":
      how = ".npz"
    elif self.entropy_coding == "off":
      how = "bitstream, raw bits: entropy coding off"
    elif not self.entropy_model:
      how = "bitstream, raw bits: the model has no entropy model"
    else:
      how = (f"bitstream, {self.range_coded} of {self.iterations} "
             f"iteration{plural} range-coded with {self.entropy_model}")
    if self.search_steps:
      how += f"; codes searched, {self.search_steps} steps per iteration"
    return (f"{self.output_codes}: {self.iterations} iteration{plural}, "
            f"{self.width}x{self.height} pixels, {self.nominal_bpp:.4f} bpp "
            f"nominal ({self.bits} bits per 16x16 block and iteration), "
            f"{self.file_bpp:.4f} bpp in the file ({self.file_bytes} bytes; "
            f"{how})")


def _check_output_file(path, overwrite):
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory")
  if os.path.exists(path) and not overwrite:
    raise errors.InputError(f"{path} exists (use --overwrite to replace it)")
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise errors.InputError(f"cannot write {path}: directory {parent} does not "
                            f"exist")
  # Try, rather than os.access: root passes that, yet fails on a read-only
  # file system or an immutable directory. (An unnamed file on Linux.)
  try:
    with tempfile.TemporaryFile(dir=parent):
      pass
  except OSError as e:
    raise errors.InputError(f"cannot write {path}: directory {parent} is not "
                            f"writable ({e.strerror})") from None


def _npz_bytes(codes, height, width):
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "codes.npz")
    codes_io.save_codes(path, codes, height, width)
    with open(path, "rb") as f:
      return f.read()


def encode_file(model, input_image, output_codes, iterations=None,
                overwrite=False, bpp=None, bits_per_channel=None,
                enhancement_quality=None, entropy_coding="auto",
                search_steps=0):
  """Encodes an image file to a code file.

  An akbari2020 model takes ``bits_per_channel`` (B, 1 to 8) or ``bpp``
  (then the largest B whose file fits), and ``enhancement_quality``, instead
  of ``iterations``, and writes bitstreams only (see
  :func:`_encode_variable_rate_file`).

  Args:
    model: a :class:`SavedCodec` or :class:`SavedVariableRateCodec`, or the
      directory of one (loaded after the checks on the input and output,
      which are cheap).
    input_image: any image :func:`tfrnncomp.image_io.read_image` reads.
    output_codes: the file to write: the original ``.npz`` format if the name
      ends in ``.npz`` (:mod:`tfrnncomp.codes_io`), else a bitstream
      (:mod:`tfrnncomp.bitstream`).
    iterations: number of iterations to code (>= 1); or None with ``bpp``.
    overwrite: replace an existing ``output_codes``.
    bpp: instead of ``iterations``, a target: the most iterations (up to
      :data:`MAX_ITERATIONS`) whose file has at most ``bpp`` bits per pixel
      of the input image.
    entropy_coding: for a bitstream of a recurrent model, how its iterations
      are coded: ``"auto"``, ``"always"`` or ``"off"`` (see
      :func:`stream_chunks`). akbari2020 models take ``"auto"`` only.
    search_steps: recurrent models only: code-search steps per iteration
      (:mod:`tfrnncomp.code_search`: slower encoding, better codes for the
      same decoder; 0: the encoder's codes).

  Returns:
    An :class:`EncodeResult`.

  Raises:
    InputError, ModelError: see :func:`~tfrnncomp.image_io.read_image` and
      :func:`load_codec`; nothing is written then.
  """
  _check_entropy_coding(entropy_coding)
  search_steps = check_search_steps(search_steps)
  system = _system_of(model)
  if system == VARIABLE_RATE_SYSTEM:
    if search_steps:
      raise errors.InputError(
          f"the code search is for recurrent models; the model "
          f"{getattr(model, 'directory', model)} is akbari2020")
    if entropy_coding != "auto":
      raise errors.InputError(
          f"entropy coding {entropy_coding!r} is for recurrent models; an "
          f"akbari2020 code map is always range coded")
    return _encode_variable_rate_file(model, input_image, output_codes,
                                      iterations, overwrite, bpp,
                                      bits_per_channel, enhancement_quality)
  if bits_per_channel is not None or enhancement_quality is not None:
    raise errors.InputError(
        f"bits per channel and an enhancement layer are for akbari2020 "
        f"models; the model {getattr(model, 'directory', model)} is {system}")
  if (iterations is None) == (bpp is None):
    raise errors.InputError("give either iterations or a target bpp")
  if iterations is not None:
    iterations = int(iterations)
    if iterations < 1:
      raise errors.InputError(f"iterations must be >= 1, got {iterations}")
  elif not bpp > 0:
    raise errors.InputError(f"the target bpp must be positive, got {bpp}")
  _check_output_file(output_codes, overwrite)
  image = image_io.read_image(input_image)
  height, width = image.shape[:2]
  blocks = lambda n: -(-n // codes_io.BLOCK)
  codec = _as_codec(model)
  codes_io.check_shape(
      (iterations or MAX_ITERATIONS, 1, blocks(height), blocks(width),
       codec.bits),
      lambda m: errors.InputError(f"{input_image}: cannot code it: {m}"))
  codes = codec.encode(image, iterations or MAX_ITERATIONS,
                       search_steps=search_steps)
  fmt = code_file_format(output_codes)
  if fmt == "npz":
    files = {t: lambda t=t: _npz_bytes(codes[:t], height, width)
             for t in range(1, len(codes) + 1)}
    chunks = None
  else:
    chunks = stream_chunks(codec, codes, entropy_coding=entropy_coding)
    files = {t: lambda t=t: write_stream(codec, chunks[:t], height, width)
             for t in range(1, len(codes) + 1)}
  if iterations is None:
    sizes = {t: len(make()) for t, make in files.items()}
    fitting = [t for t, size in sizes.items() if size * 8 <= bpp * height *
               width]
    if not fitting:
      raise errors.InputError(
          f"{input_image}: even 1 iteration takes "
          f"{sizes[1] * 8 / (height * width):.4f} bpp, more than the target "
          f"{bpp:g}")
    iterations = max(fitting)
  data = files[iterations]()
  from tfrnncomp.export import write_atomic  # pylint: disable=g-import-not-at-top
  write_atomic(output_codes, data)
  range_coded = 0 if chunks is None else sum(
      c == bitstream.RANGE_CODED for c, _ in chunks[:iterations])
  return EncodeResult(
      output_codes=output_codes, iterations=iterations, bits=codec.bits,
      height=height, width=width, file_bytes=len(data), format=fmt,
      range_coded=range_coded,
      entropy_model=(codec.entropy.name if chunks and codec.entropy and
                     entropy_coding != "off" else ""),
      entropy_coding=entropy_coding, search_steps=search_steps)


def _encode_variable_rate_file(model, input_image, output_codes, iterations,
                               overwrite, bpp, bits, enhancement_quality):
  """:func:`encode_file` with an akbari2020 model: one bitstream.

  ``bits`` (B) or ``bpp``: then the largest B whose file has at most ``bpp``
  bits per pixel of the input image (with the enhancement layer, if asked).
  """
  where = getattr(model, "directory", model)
  if iterations is not None:
    raise errors.InputError(f"iterations are for the recurrent systems; the "
                            f"model {where} is akbari2020: give bits per "
                            f"channel (1 to {MAX_BITS_PER_CHANNEL}) or a "
                            f"target bpp")
  if bits is not None and bpp is not None:
    raise errors.InputError("give either bits per channel or a target bpp, "
                            "not both")
  if bits is None and bpp is None:
    raise errors.InputError(f"give bits per channel (1 to "
                            f"{MAX_BITS_PER_CHANNEL}) or a target bpp")
  if bits is not None:
    bits = _check_bits_per_channel(bits)
  elif not bpp > 0:
    raise errors.InputError(f"the target bpp must be positive, got {bpp}")
  quality = _check_enhancement_quality(enhancement_quality)
  if code_file_format(output_codes) == "npz":
    raise errors.InputError(
        f"{output_codes}: akbari2020 codes have no .npz form (the original "
        f"release's format holds recurrent codes); name the output otherwise "
        f"to write a bitstream")
  _check_output_file(output_codes, overwrite)
  image = image_io.read_image(input_image)
  height, width = image.shape[:2]
  codec = _as_codec(model)
  if bits is not None:
    data = compress(codec, image, bits, quality)
  else:
    for bits in range(MAX_BITS_PER_CHANNEL, 0, -1):
      data = compress(codec, image, bits, quality)
      if len(data) * 8 <= bpp * height * width:
        break
    else:
      raise errors.InputError(
          f"{input_image}: even B=1 bits per channel takes "
          f"{len(data) * 8 / (height * width):.4f} bpp, more than the target "
          f"{bpp:g}")
  _, chunks = bitstream.read(data)
  from tfrnncomp.export import write_atomic  # pylint: disable=g-import-not-at-top
  write_atomic(output_codes, data)
  return EncodeResult(
      output_codes=output_codes, iterations=1, bits=codec.channels * bits,
      height=height, width=width, file_bytes=len(data), format="bitstream",
      system=VARIABLE_RATE_SYSTEM, bits_per_channel=bits,
      enhancement_quality=quality,
      enhancement_bytes=len(chunks[1][1]) if len(chunks) > 1 else 0)


@dataclasses.dataclass(frozen=True)
class DecodeResult:
  """What :func:`decode_file` wrote: one PNG per iteration, and the images."""

  paths: List[str]
  x_hat: np.ndarray  # uint8 [iterations, height, width, 3].
  layers: str = ""  # akbari2020: what the one image was decoded from.

  @property
  def iterations(self):
    return len(self.paths)

  def describe(self):
    height, width = self.x_hat.shape[1:3]
    if self.layers:
      return (f"{os.path.dirname(self.paths[0])}: "
              f"{os.path.basename(self.paths[0])} ({self.layers}, "
              f"{width}x{height} pixels)")
    names = os.path.basename(self.paths[0])
    if len(self.paths) > 1:
      names += f" ... {os.path.basename(self.paths[-1])}"
    plural = "s" if self.iterations > 1 else ""
    return (f"{os.path.dirname(self.paths[0])}: {names} ({self.iterations} "
            f"iteration{plural}, {width}x{height} pixels)")


def decoded_image_path(output_directory, index):
  """The original decoder's name for the image after iteration ``index``."""
  return os.path.join(output_directory, f"image_{index:02d}.png")


def _write_all(files, overwrite):
  """Writes {path: bytes} atomically; on failure removes what it created."""
  from tfrnncomp.export import write_atomic  # pylint: disable=g-import-not-at-top
  created = []
  try:
    for path, data in files.items():
      existed = os.path.exists(path)
      if existed and not overwrite:
        raise errors.InputError(f"{path} exists (use --overwrite to replace "
                                f"it)")
      write_atomic(path, data)
      if not existed:
        created.append(path)
  except BaseException:
    for path in created:
      try:
        os.remove(path)
      except OSError:
        pass
    raise


def _read_code_file(path):
  """A bitstream's bytes, or None for anything else (read as an .npz).

  Raises:
    InputError: if ``path`` is missing, a directory or unreadable.
    FormatError: if it is neither a bitstream nor a zip archive.
  """
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory, not a code file")
  if not os.path.exists(path):
    raise errors.InputError(f"{path}: no such file")
  try:
    with open(path, "rb") as f:
      prefix = f.read(len(bitstream.MAGIC))
      if bitstream.is_bitstream(prefix):
        return prefix + f.read()
  except OSError as e:
    raise errors.InputError(f"{path}: {e.strerror}") from None
  if not prefix.startswith((b"PK", b"\x93NUM")):  # Zip, or a lone .npy.
    raise errors.FormatError(f"{path} is neither a tfrnncomp bitstream nor an "
                             f".npz code file")
  return None


def decode_file(model, input_codes, output_directory, iterations=None,
                overwrite=False, max_pixels=MAX_DECODE_PIXELS):
  """Decodes a code file to ``image_00.png`` ... in ``output_directory``.

  An akbari2020 stream (its header says so) decodes to one image,
  ``image_00.png``, with its enhancement layer if it has one; the model must
  be the akbari2020 model that made it.

  Args:
    model: a :class:`SavedCodec` or :class:`SavedVariableRateCodec`, or the
      directory of one (loaded after the checks on the input and outputs,
      which are cheap).
    input_codes: a code file: a bitstream (:mod:`tfrnncomp.bitstream`, also
      one cut at an iteration boundary) or an ``.npz``
      (:mod:`tfrnncomp.codes_io`), told apart by their first bytes.
    output_directory: created if needed.
    iterations: how many iterations to decode (one PNG each); None for all
      the file holds (and for akbari2020 streams: a number is an
      InputError).
    overwrite: replace existing ``image_XX.png`` files. Without it, nothing is
      written if any of them exists.
    max_pixels: refuse (InputError) images of more pixels, padded to
      multiples of 16, before decoding anything; None for no limit.

  Returns:
    A :class:`DecodeResult`.

  Raises:
    InputError, FormatError, ModelError: nothing is written then.
  """
  stream = _read_code_file(input_codes)
  if stream is not None:
    if iterations is not None and _stream_system(stream) == (
        VARIABLE_RATE_SYSTEM):
      bitstream.read(stream, name=input_codes)  # Its own errors first.
      raise errors.InputError(f"{input_codes} is an akbari2020 stream, which "
                              f"decodes to one image: give no iteration "
                              f"count")
    header, chunks = bitstream.read(stream, iterations, name=input_codes)
    _check_decode_size(header.height, header.width, max_pixels, input_codes)
    iterations = 1 if header.variable_rate else len(chunks)
  else:
    codes, height, width = codes_io.load_codes(input_codes, max_pixels)
    available = codes.shape[0]
    if iterations is None:
      iterations = available
    iterations = int(iterations)
    if not 1 <= iterations <= available:
      raise errors.InputError(f"cannot decode {iterations} iterations: "
                              f"{input_codes} holds {available}")
  if os.path.exists(output_directory) and not os.path.isdir(output_directory):
    raise errors.InputError(f"{output_directory} exists and is not a "
                            f"directory")
  paths = [decoded_image_path(output_directory, i) for i in range(iterations)]
  if not overwrite:
    for path in paths:
      if os.path.exists(path):
        raise errors.InputError(f"{path} exists (use --overwrite to replace "
                                f"it)")

  codec = _as_codec(model)
  layers = ""
  if stream is not None and (header.variable_rate or
                             isinstance(codec, SavedVariableRateCodec)):
    x_hat = _decompress_variable_rate(codec, header, chunks,
                                      input_codes).x_hat
    layers = (f"akbari2020, B={header.bits} bits per channel, " +
              ("base and enhancement layers" if len(chunks) > 1 else
               "base layer"))
  elif stream is not None:
    codes = stream_codes(codec, header, chunks, input_codes)
    x_hat = codec.decode(codes, header.height, header.width)
  elif isinstance(codec, SavedVariableRateCodec):
    raise errors.ModelError(f"{input_codes} is an .npz of recurrent codes; "
                            f"the model {codec.directory} is "
                            f"{codec.describe_identity()}")
  else:
    bits = codes.shape[-1]
    if bits != codec.bits:
      raise errors.ModelError(f"{input_codes} has {bits} bits per block, the "
                              f"model {codec.directory} decodes {codec.bits}")
    x_hat = codec.decode(codes[:iterations, 0], height, width)
  files = {path: image_io.encode_png(image)
           for path, image in zip(paths, x_hat)}
  created_directory = not os.path.isdir(output_directory)
  os.makedirs(output_directory, exist_ok=True)
  try:
    _write_all(files, overwrite)
  except BaseException:
    if created_directory:
      try:
        os.rmdir(output_directory)
      except OSError:
        pass
    raise
  return DecodeResult(paths=paths, x_hat=x_hat, layers=layers)


def _stream_system(data):
  """The system a stream's header names, unchecked (to pick a message)."""
  end = 7 + data[6] if len(data) > 6 else 0
  return data[7:end].decode("ascii", "replace") if end else None
