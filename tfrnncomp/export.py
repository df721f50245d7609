"""SavedModel export: the exported module *is* the codec.

A SavedModel written by :func:`export` holds the codec's signatures, built
from core TensorFlow ops only (it loads in a process that imports nothing but
``tensorflow``). The module depends on the system (``config.system``).

Recurrent codecs (Toderici 2017, Islam 2021): a :class:`CodecModule` with

- ``encode(image: uint8 [H, W, 3], iterations: int32 [])``
  -> ``{"codes": int8 [iterations, ceil(H/16), ceil(W/16), bits]}`` (+-1);
- ``encode_search(image: uint8 [H, W, 3], iterations: int32 [],
  search_steps: int32 [])`` -> the same ``{"codes": ...}``, each iteration's
  codes searched against the decoder for ``search_steps`` steps
  (:mod:`tfrnncomp.code_search`; slower, the same decoder; 0 gives
  ``encode``'s codes);
- ``decode(codes: int8 [T, h, w, bits], height: int32 [], width: int32 [])``
  -> ``{"x_hat": uint8 [T, height, width, 3]}``, the reconstruction after
  each iteration;
- ``serving_default``: the same as ``encode``.

The variable-rate codec (Akbari 2020): a :class:`VariableRateModule` with

- ``encode(image: uint8 [H, W, 3], bits_per_channel: int32 [])``
  -> ``{"code_map": uint8 [ceil(H/16), ceil(W/16), C]`` (levels in
  [0, 2^B - 1]), ``"minimum": float32 [C], "maximum": float32 [C]}`` (the
  per-channel side information, float16-representable values);
- ``decode(code_map: uint8 [h, w, C], minimum: float32 [C],
  maximum: float32 [C], bits_per_channel: int32 [], height: int32 [],
  width: int32 [])`` -> ``{"x_hat": uint8 [height, width, 3]}``;
- ``serving_default``: the same as ``encode``.

For TensorFlow Serving, :func:`export_for_serving` (a model) and
:func:`copy_for_serving` (an exported directory, with its entropy model)
write the same directory as version ``VERSION`` of model ``NAME`` under a
serving base directory, ``BASE/NAME/VERSION/`` with ``saved_model.pb`` and
``variables/`` directly in it: the layout TF Serving's file-system source
polls (``--model_base_path=BASE/NAME``; it serves the highest version, and
ignores names that are not numbers, so the ``.tmp-*`` directory a write goes
through is never loaded half-written).

The resolved config is written beside it as ``config.json`` (with its
``"system"``), with ``model.json`` giving the model identifier (name and a
SHA-256 of the weights) that bitstreams record.

Why a ``tf.Module`` holding the variables rather than the Keras model itself:
Keras' own SavedModel hooks retrace every layer's ``call`` and save Keras
metadata; a plain module with the variables in a list saves exactly the
signatures and nothing else. (``tfc.GDN`` itself cannot be traced in a
``tf.function`` in TF 2.14 at all; the models use
:class:`tfrnncomp.layers.GDN`, which can, see its docstring.)
"""

import hashlib
import json
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

__all__ = ["CodecModule", "VariableRateModule", "make_module", "export",
           "restore_weights", "weights_hash", "write_atomic", "load_config",
           "next_version", "export_for_serving", "copy_for_serving"]


_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400


def _write_unnamed(directory, data):
  """Writes ``data`` to a nameless file in ``directory``; returns a name.

  Linux: the file is opened with ``O_TMPFILE`` (it has no name while it is
  written, so a process killed meanwhile, even by SIGKILL, leaves nothing
  behind) and linked to a hidden ``.tmp-*`` name once complete. Returns None
  where that is not supported (then nothing was written).
  """
  if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
    return None
  try:
    fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
  except OSError:
    return None  # Unsupported file system; mkstemp reports real errors.
  import ctypes  # pylint: disable=g-import-not-at-top
  with os.fdopen(fd, "wb") as f:
    f.write(data)
    f.flush()
    tmp = os.path.join(directory, f".tmp-{os.urandom(8).hex()}")
    # link("/proc/self/fd/N") would link the symlink: linkat follows it.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.linkat(_AT_FDCWD, f"/proc/self/fd/{fd}".encode(), _AT_FDCWD,
                   os.fsencode(tmp), _AT_SYMLINK_FOLLOW) != 0:
      return None
  return tmp


def write_atomic(path, data):
  """Writes bytes to ``path`` through a temporary file and a rename.

  ``path`` never holds a partial file: it keeps its old content (or does not
  exist) until the new one is complete. On Linux the data are written to a
  nameless file (``O_TMPFILE``) that is named and renamed only when complete,
  so even a SIGKILL leaves no temporary file; elsewhere a hidden ``.tmp-*``
  file is used, removed on any exception (only a SIGKILL can leave it).
  """
  directory = os.path.dirname(os.path.abspath(path))
  tmp = _write_unnamed(directory, data)
  if tmp is not None:
    try:
      os.replace(tmp, path)
    except BaseException:
      if os.path.exists(tmp):
        os.remove(tmp)
      raise
    return
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
    # mkstemp makes 0600 files; give the output the usual umask-based mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def weights_hash(variables):
  """SHA-256 (hex) of the variables' values, in order: identifies a model."""
  digest = hashlib.sha256()
  for v in variables:
    value = np.ascontiguousarray(v.numpy())
    digest.update(str(value.dtype).encode() + str(value.shape).encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


class CodecModule(tf.Module):
  """The exported codec: ``encode``, ``decode`` and their signatures."""

  def __init__(self, model):
    super().__init__(name=model.config.name)
    # Untracked reference to the Keras model; its variables tracked in a list.
    self.__dict__["_model"] = model
    self.model_variables = list(model.variables)
    bits = model.config.bits

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="iterations")])
    def encode(image, iterations):
      return {"codes": model.encode(image[None], iterations)[:, 0]}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="iterations"),
        tf.TensorSpec([], tf.int32, name="search_steps")])
    def encode_search(image, iterations, search_steps):
      tf.debugging.assert_non_negative(search_steps,
                                       "search_steps must be >= 0")
      return {"codes": model.encode(image[None], iterations,
                                    search_steps=search_steps)[:, 0]}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, bits], tf.int8, name="codes"),
        tf.TensorSpec([], tf.int32, name="height"),
        tf.TensorSpec([], tf.int32, name="width")])
    def decode(codes, height, width):
      return {"x_hat": model.decode(codes[:, None], height, width)[:, 0]}

    self.encode = encode
    self.encode_search = encode_search
    self.decode = decode

  @property
  def signatures(self):
    return {"encode": self.encode, "encode_search": self.encode_search,
            "decode": self.decode, "serving_default": self.encode}


class VariableRateModule(tf.Module):
  """The exported Akbari 2020 codec: ``encode``, ``decode``, signatures."""

  def __init__(self, model):
    super().__init__(name=model.config.name)
    self.__dict__["_model"] = model
    self.model_variables = list(model.variables)
    channels = model.config.code_channels

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, 3], tf.uint8, name="image"),
        tf.TensorSpec([], tf.int32, name="bits_per_channel")])
    def encode(image, bits_per_channel):
      code_map, minimum, maximum = model.encode(image[None], bits_per_channel)
      return {"code_map": code_map[0], "minimum": minimum[0],
              "maximum": maximum[0]}

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, channels], tf.uint8, name="code_map"),
        tf.TensorSpec([channels], tf.float32, name="minimum"),
        tf.TensorSpec([channels], tf.float32, name="maximum"),
        tf.TensorSpec([], tf.int32, name="bits_per_channel"),
        tf.TensorSpec([], tf.int32, name="height"),
        tf.TensorSpec([], tf.int32, name="width")])
    def decode(code_map, minimum, maximum, bits_per_channel, height, width):
      x_hat = model.decode(code_map[None], minimum[None], maximum[None],
                           bits_per_channel, height, width)
      return {"x_hat": x_hat[0]}

    self.encode = encode
    self.decode = decode

  @property
  def signatures(self):
    return {"encode": self.encode, "decode": self.decode,
            "serving_default": self.encode}


def make_module(model):
  """The exportable tf.Module of ``model``'s system."""
  if model.config.system == "akbari2020":
    return VariableRateModule(model)
  return CodecModule(model)


def export(model, directory, overwrite=False):
  """Writes ``model`` as a SavedModel to ``directory`` (atomically).

  Returns the model identifier dict written to ``model.json``.
  """
  directory = os.path.abspath(directory)
  if os.path.exists(directory) and not overwrite:
    raise FileExistsError(f"{directory} exists (pass overwrite=True)")
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
  try:
    module = make_module(model)
    tf.saved_model.save(module, tmp, signatures=module.signatures)
    identity = {"name": model.config.name,
                "weights_sha256": weights_hash(module.model_variables)}
    with open(os.path.join(tmp, "config.json"), "w") as f:
      f.write(model.config.to_json())
    with open(os.path.join(tmp, "model.json"), "w") as f:
      json.dump(identity, f, indent=2)
    if os.path.exists(directory):
      shutil.rmtree(directory)
    os.replace(tmp, directory)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return identity


def load_config(directory):
  """The config (of any system) saved beside a SavedModel."""
  from tfrnncomp import config as config_lib  # pylint: disable=g-import-not-at-top
  with open(os.path.join(directory, "config.json")) as f:
    return config_lib.config_from_json(f.read())


def _relative_name(variable):
  """``encoder/rnn1/input_conv/kernel`` from ``<model name>/encoder/...:0``."""
  name = variable.name.split(":")[0]
  return name.split("/", 1)[1] if "/" in name else name


def restore_weights(model, directory, log=None):
  """Loads a SavedModel's weights into an in-memory model, by variable name.

  Names are compared without the model's own name, so a model of another
  preset name can start from an export (``tools/train.py --init_from``).
  Every variable of the SavedModel must find a variable of the same name and
  shape in ``model``; variables of ``model`` that the SavedModel lacks keep
  their initial values and are listed through ``log``. That lets Islam et
  al. 2021's network (the recurrent codec plus GDN/IGDN blocks) start from a
  trained recurrent codec of the same cells and width.

  Returns:
    The names (without the model name) of the variables left at their
    initial values.

  Raises:
    ValueError: a variable of the SavedModel has no counterpart of the same
      name and shape (the configs differ).
  """
  loaded = tf.saved_model.load(directory)
  targets = {_relative_name(v): v for v in model.variables}
  if len(targets) != len(model.variables):
    raise ValueError("the model has variables of duplicate names")
  used = set()
  for value in loaded.model_variables:
    name = _relative_name(value)
    target = targets.get(name)
    if target is None:
      raise ValueError(f"{directory} has variable {name!r}, which the model "
                       f"lacks: configs differ")
    if target.shape != value.shape:
      raise ValueError(f"{directory}: variable {name!r} has shape "
                       f"{value.shape}, expected {target.shape}")
    target.assign(value)
    used.add(name)
  kept = [name for name in targets if name not in used]
  if kept and log is not None:
    log(f"kept at initialization (not in {directory}): {', '.join(kept)}")
  return kept


def load_network(directory):
  """The Keras network of a codec SavedModel: its config, then its weights.

  For tools that need the network itself (its layers, the training path)
  rather than the exported signatures.

  Raises:
    tfrnncomp.errors.ModelError: no readable config, or weights that do not
      match it.
  """
  from tfrnncomp import errors  # pylint: disable=g-import-not-at-top
  from tfrnncomp import models  # pylint: disable=g-import-not-at-top
  try:
    config = load_config(directory)
  except (OSError, ValueError) as error:
    raise errors.ModelError(f"{directory}: no readable config.json ({error})")
  model = models.build_model(config)
  try:
    kept = restore_weights(model, directory)
  except (OSError, ValueError) as error:
    raise errors.ModelError(f"{directory}: cannot load its weights ({error})")
  if kept:
    raise errors.ModelError(f"{directory} lacks weights of its own config: "
                            f"{', '.join(kept)}")
  return model


# --- TensorFlow Serving layout. ---------------------------------------------

_SERVING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def _serving_model_dir(base_dir, name):
  if not isinstance(name, str) or not _SERVING_NAME.fullmatch(name):
    raise ValueError(f"invalid serving model name {name!r}: use letters, "
                     f"digits, '_', '.', '-' (it is part of the URL)")
  return os.path.join(os.path.abspath(base_dir), name)


def next_version(model_dir):
  """1 + the highest version directory (a decimal name) in ``model_dir``.

  1 if there is none (or ``model_dir`` does not exist). TF Serving takes the
  names of the subdirectories that are whole numbers as versions.
  """
  try:
    names = os.listdir(model_dir)
  except FileNotFoundError:
    return 1
  versions = [int(n) for n in names if n.isdigit() and
              os.path.isdir(os.path.join(model_dir, n))]
  return max(versions, default=0) + 1


def _version_directory(base_dir, name, version):
  model_dir = _serving_model_dir(base_dir, name)
  if version is None:
    version = next_version(model_dir)
  version = int(version)
  if not 1 <= version < 2 ** 63:
    raise ValueError(f"serving version must be a positive integer, got "
                     f"{version}")
  directory = os.path.join(model_dir, str(version))
  if os.path.exists(directory):
    # Versions are immutable: a server may have loaded this one.
    raise FileExistsError(f"{directory} exists: version {version} of "
                          f"{name} is taken (give another version or none "
                          f"for the next free one)")
  return directory


def export_for_serving(model, base_dir, name, version=None):
  """Exports ``model`` as version ``version`` of ``name`` for TF Serving.

  Writes ``base_dir/name/version/`` (see the module docstring) atomically, as
  :func:`export` does, with ``config.json`` and ``model.json`` beside
  ``saved_model.pb``.

  Args:
    model: the in-memory codec.
    base_dir: the serving base directory (created if needed).
    name: the serving model name, used in the URLs (``/v1/models/NAME``).
    version: a positive integer, or None for :func:`next_version`.

  Returns:
    ``(directory, identity)``: the version directory and the ``model.json``
    dict.

  Raises:
    ValueError: on a bad name or version.
    FileExistsError: if that version exists.
  """
  directory = _version_directory(base_dir, name, version)
  return directory, export(model, directory)


def copy_for_serving(source, base_dir, name, version=None):
  """Copies an exported codec directory to ``base_dir/name/version/``.

  The whole directory is copied (atomically, through a ``.tmp-*`` directory
  and a rename), its ``entropy/`` model included: TF Serving loads only the
  codec SavedModel at the top and ignores the rest, and a client can use the
  same directory for the entropy model and the model identifier
  (:mod:`tfrnncomp.serving`).

  Returns:
    The version directory.

  Raises:
    ValueError: on a bad name or version, or a ``source`` that is not a
      SavedModel directory.
    FileExistsError: if that version exists.
  """
  if not os.path.isfile(os.path.join(source, "saved_model.pb")):
    raise ValueError(f"{source} is not a SavedModel directory (no "
                     f"saved_model.pb)")
  directory = _version_directory(base_dir, name, version)
  parent = os.path.dirname(directory)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-export-")
  try:
    staged = os.path.join(tmp, "copy")
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns(".tmp-*"))
    umask = os.umask(0)  # copytree keeps modes; the new top gets the usual.
    os.umask(umask)
    os.chmod(staged, 0o777 & ~umask)
    os.replace(staged, directory)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return directory
