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
  as a :class:`SavedCodec`, or raises :class:`~tfrnncomp.errors.ModelError`.
- :func:`encode_file` (image file -> code file) and :func:`decode_file` (code
  file -> ``image_00.png`` ... one PNG per iteration) are the two tools'
  operations. Both check their inputs and outputs before running the network
  and write atomically, so no partial output file is ever left behind.

TensorFlow is imported only when a model is loaded, so ``--help`` and most
usage errors answer at once.
"""

import dataclasses
import os
import sys
from typing import List

from absl import app
from absl import flags
from absl import logging
import numpy as np

from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import image_io

__all__ = ["run", "error_message", "SavedCodec", "load_codec",
           "EncodeResult", "encode_file", "DecodeResult", "decode_file",
           "decoded_image_path"]


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
  ``OSError``) with status 1. Other exceptions are bugs and keep their
  traceback.
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

  app.run(guarded_main, flags_parser=parse)


# --- The codec. -------------------------------------------------------------


class SavedCodec:
  """A codec SavedModel (see :mod:`tfrnncomp.export`) with NumPy in and out.

  Attributes:
    directory: the SavedModel directory.
    bits: code bits per 16x16 block and iteration, read from the ``decode``
      signature.
  """

  def __init__(self, loaded, directory):
    self._loaded = loaded  # Keeps the variables the signatures use alive.
    self.directory = directory
    self._encode = loaded.signatures["encode"]
    self._decode = loaded.signatures["decode"]
    _, specs = self._decode.structured_input_signature
    self.bits = int(specs["codes"].shape[-1])

  def _call(self, function, what, **inputs):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      return function(**{k: tf.constant(v) for k, v in inputs.items()})
    except tf.errors.OpError as e:
      message = e.message.strip().splitlines()[0] if e.message else str(e)
      raise errors.ModelError(f"{self.directory}: {what} failed: {message}"
                              ) from None

  def encode(self, image, iterations):
    """uint8 [H, W, 3] -> int8 +-1 codes [iterations, H/16, W/16, bits].

    H/16 and W/16 are rounded up (the image is padded to a multiple of 16).
    """
    return self._call(self._encode, "encode", image=np.asarray(image, np.uint8),
                      iterations=np.int32(iterations))["codes"].numpy()

  def decode(self, codes, height, width):
    """int8 codes [T, h, w, bits] -> uint8 [T, height, width, 3].

    One reconstruction per iteration, cropped to height x width.
    """
    return self._call(self._decode, "decode", codes=np.asarray(codes, np.int8),
                      height=np.int32(height), width=np.int32(width)
                      )["x_hat"].numpy()


def load_codec(directory):
  """Loads the codec SavedModel in ``directory``.

  Raises:
    ModelError: if ``directory`` does not exist, is not a SavedModel, cannot
      be loaded, or lacks the ``encode`` and ``decode`` signatures.
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
  return SavedCodec(loaded, directory)


def _as_codec(model):
  return model if isinstance(model, SavedCodec) else load_codec(model)


# --- The tools' operations. -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EncodeResult:
  """What :func:`encode_file` wrote."""

  output_codes: str
  iterations: int
  bits: int
  height: int
  width: int
  file_bytes: int

  @property
  def nominal_bpp(self):
    """Code bits per pixel of the padded image: iterations * bits / 256."""
    return self.iterations * self.bits / codes_io.BLOCK ** 2

  @property
  def file_bpp(self):
    """Bits of the code file per pixel of the input image."""
    return self.file_bytes * 8 / (self.height * self.width)

  def describe(self):
    plural = "s" if self.iterations > 1 else ""
    return (f"{self.output_codes}: {self.iterations} iteration{plural}, "
            f"{self.width}x{self.height} pixels, {self.nominal_bpp:.4f} bpp "
            f"nominal ({self.bits} bits per 16x16 block and iteration), "
            f"{self.file_bpp:.4f} bpp in the file ({self.file_bytes} bytes)")


def _check_output_file(path, overwrite):
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory")
  if os.path.exists(path) and not overwrite:
    raise errors.InputError(f"{path} exists (use --overwrite to replace it)")
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise errors.InputError(f"cannot write {path}: directory {parent} does not "
                            f"exist")
  if not os.access(parent, os.W_OK | os.X_OK):
    raise errors.InputError(f"cannot write {path}: directory {parent} is not "
                            f"writable")


def encode_file(model, input_image, output_codes, iterations, overwrite=False):
  """Encodes an image file to a code file (see :mod:`tfrnncomp.codes_io`).

  Args:
    model: a :class:`SavedCodec`, or the directory of one (loaded after the
      checks on the input and output, which are cheap).
    input_image: any image :func:`tfrnncomp.image_io.read_image` reads.
    output_codes: the ``.npz`` file to write.
    iterations: number of iterations to code (>= 1).
    overwrite: replace an existing ``output_codes``.

  Returns:
    An :class:`EncodeResult`.

  Raises:
    InputError, ModelError: see :func:`~tfrnncomp.image_io.read_image` and
      :func:`load_codec`; nothing is written then.
  """
  iterations = int(iterations)
  if iterations < 1:
    raise errors.InputError(f"iterations must be >= 1, got {iterations}")
  _check_output_file(output_codes, overwrite)
  image = image_io.read_image(input_image)
  height, width = image.shape[:2]
  blocks = lambda n: -(-n // codes_io.BLOCK)
  codec = _as_codec(model)
  codes_io.check_shape(
      (iterations, 1, blocks(height), blocks(width), codec.bits),
      lambda m: errors.InputError(f"{input_image}: cannot code it: {m}"))
  codes = codec.encode(image, iterations)
  file_bytes = codes_io.save_codes(output_codes, codes, height, width,
                                   overwrite=overwrite)
  return EncodeResult(output_codes=output_codes, iterations=iterations,
                      bits=codec.bits, height=height, width=width,
                      file_bytes=file_bytes)


@dataclasses.dataclass(frozen=True)
class DecodeResult:
  """What :func:`decode_file` wrote: one PNG per iteration, and the images."""

  paths: List[str]
  x_hat: np.ndarray  # uint8 [iterations, height, width, 3].

  @property
  def iterations(self):
    return len(self.paths)

  def describe(self):
    height, width = self.x_hat.shape[1:3]
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


def decode_file(model, input_codes, output_directory, iterations=None,
                overwrite=False):
  """Decodes a code file to ``image_00.png`` ... in ``output_directory``.

  Args:
    model: a :class:`SavedCodec`, or the directory of one (loaded after the
      checks on the input and outputs, which are cheap).
    input_codes: a code file (see :mod:`tfrnncomp.codes_io`).
    output_directory: created if needed.
    iterations: how many iterations to decode (one PNG each); None for all
      the file holds.
    overwrite: replace existing ``image_XX.png`` files. Without it, nothing is
      written if any of them exists.

  Returns:
    A :class:`DecodeResult`.

  Raises:
    InputError, FormatError, ModelError: nothing is written then.
  """
  codes, height, width = codes_io.load_codes(input_codes)
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
  return DecodeResult(paths=paths, x_hat=x_hat)
