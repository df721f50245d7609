"""Batch compression of a folder of images or a TFDS dataset, resumable.

:func:`compress_images` codes every image of a source with one codec and
writes, under an output directory, one code file per image and a manifest:

- *Reading*: a ``tf.data`` pipeline reads and decodes the images in parallel
  (``num_parallel_calls``, in order) and prefetches them while the codec
  runs. Folder images are decoded by :func:`tfrnncomp.image_io.read_image`,
  the rules of ``tools/encoder.py`` (EXIF orientation, grayscale, alpha over
  white, ...), so each file is byte for byte the one ``tools/encoder.py``
  writes for that image with the same rate flags; a TFDS dataset
  (``tfds.load(name, split=...)``, images decoded by TFDS) is read the same
  way.
- *Coding*: per image, the codes of ``iterations`` iterations (or, for a
  target ``bpp``, the most iterations whose file fits, as
  :func:`tfrnncomp.cli.encode_file`), the file (a bitstream,
  :mod:`tfrnncomp.bitstream`, ``.rnc``; or the original ``.npz``), and the
  reconstruction of its last iteration for PSNR and MS-SSIM
  (:mod:`tfrnncomp.metrics`, on 8-bit RGB).
- *Outputs*: ``OUTPUT/<file without extension>.rnc`` (or ``.npz``), keeping
  subfolders, each written atomically (:func:`tfrnncomp.export.write_atomic`);
  and the manifest ``OUTPUT/manifest.jsonl``, one JSON object per image
  (sorted by file)::

      {"file": "a/b.png", "output": "a/b.rnc", "bytes": 1234,
       "bpp": 0.512, "psnr": 31.2, "ms_ssim": 0.962, "iterations": 4,
       "height": 480, "width": 640, "format": "bitstream",
       "request": "iterations=4", "model": "residual_gru",
       "weights_sha256": "..."}

  ``bpp`` counts the whole file (8 * bytes / pixels of the image);
  ``psnr`` is capped (:data:`tfrnncomp.metrics.CAP_DB`); ``ms_ssim`` is
  ``null`` where it is undefined (NaN: a negative contrast term, as from an
  untrained model). The
  manifest is rewritten atomically (every ``flush_seconds``, at the end, and
  when the run stops on an error or an interrupt), so it is never partial.
- *Resuming*: an image is skipped when the manifest has its entry with the
  same request, format and model, and its output exists with the recorded
  number of bytes; every other image is coded (again), replacing an output
  that an interrupted run left without a manifest entry. The same command
  therefore resumes a run, and a run with other settings recodes.

An image that cannot be read is reported and skipped (the others go on);
:class:`BatchResult` lists them. The ``codec`` may be any
:class:`tfrnncomp.cli.SavedCodec`, a :class:`tfrnncomp.serving.RemoteCodec`
included (the network on TF Serving).
"""

import dataclasses
import json
import os
import time
from typing import List, Tuple

import numpy as np

from tfrnncomp import cli
from tfrnncomp import codes_io
from tfrnncomp import errors
from tfrnncomp import export
from tfrnncomp import image_io
from tfrnncomp import metrics

__all__ = ["MANIFEST", "EXTENSIONS", "BatchResult", "encode_image",
           "output_name", "read_manifest", "write_manifest",
           "folder_images", "dataset_images", "compress_images"]

MANIFEST = "manifest.jsonl"
"""The manifest's name in the output directory."""

EXTENSIONS = {"bitstream": ".rnc", "npz": ".npz"}
"""The code file extension of each format."""


def encode_image(codec, image, fmt="bitstream", iterations=None, bpp=None,
                 name="image", search_steps=0):
  """An image's code file bytes, as :func:`tfrnncomp.cli.encode_file` makes.

  Args:
    codec: a :class:`~tfrnncomp.cli.SavedCodec`.
    image: uint8 [H, W, 3].
    fmt: "bitstream" or "npz".
    iterations: iterations to code (>= 1); or None with ``bpp``.
    bpp: instead, the most iterations (up to :data:`cli.MAX_ITERATIONS`)
      whose file has at most ``bpp`` bits per pixel.
    name: the image's name, for messages.

  Returns:
    ``(data, iterations, codes)``: the file's bytes, the iterations in it and
    the codes of those iterations.

  Raises:
    InputError: if the image cannot be coded or no rate fits ``bpp``.
  """
  if (iterations is None) == (bpp is None):
    raise errors.InputError("give either iterations or a target bpp")
  height, width = image.shape[:2]
  blocks = lambda n: -(-n // codes_io.BLOCK)
  codes_io.check_shape(
      (iterations or cli.MAX_ITERATIONS, 1, blocks(height), blocks(width),
       codec.bits),
      lambda m: errors.InputError(f"{name}: cannot code it: {m}"))
  codes = codec.encode(image, iterations or cli.MAX_ITERATIONS,
                       search_steps=search_steps)
  if fmt == "npz":
    make = lambda t: _npz_bytes(codes[:t], height, width)
  elif fmt == "bitstream":
    chunks = cli.stream_chunks(codec, codes)
    make = lambda t: cli.write_stream(codec, chunks[:t], height, width)
  else:
    raise errors.InputError(f"unknown format {fmt!r} (bitstream or npz)")
  if iterations is None:
    sizes = {t: len(make(t)) for t in range(1, len(codes) + 1)}
    fitting = [t for t, size in sizes.items()
               if size * 8 <= bpp * height * width]
    if not fitting:
      raise errors.InputError(
          f"{name}: even 1 iteration takes "
          f"{sizes[1] * 8 / (height * width):.4f} bpp, more than the target "
          f"{bpp:g}")
    iterations = max(fitting)
  return make(iterations), iterations, codes[:iterations]


def _npz_bytes(codes, height, width):
  """The .npz code file of ``codes``, as :func:`codes_io.save_codes` writes."""
  import tempfile  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "codes.npz")
    codes_io.save_codes(path, codes, height, width)
    with open(path, "rb") as f:
      return f.read()


def output_name(filename, fmt):
  """The output path (relative) of a source file name: new extension.

  Raises:
    InputError: for a name that would leave the output directory.
  """
  name = os.path.normpath(str(filename).replace("\\", "/"))
  if os.path.isabs(name) or name.split(os.sep)[0] in ("..", "") or (
      name == "."):
    raise errors.InputError(f"{filename!r} is not a relative file name")
  return os.path.splitext(name)[0] + EXTENSIONS[fmt]


def read_manifest(path):
  """{file: entry} of a manifest; {} if it does not exist.

  Raises:
    InputError: if it exists but is not a manifest.
  """
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except FileNotFoundError:
    return {}
  except OSError as e:
    raise errors.InputError(f"cannot read {path}: {cli.error_message(e)}"
                            ) from None
  entries = {}
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      entry = json.loads(line)
      entries[str(entry["file"])] = entry
    except (ValueError, KeyError, TypeError):
      raise errors.InputError(f"{path}:{number} is not a manifest line (JSON "
                              f"with a \"file\")") from None
  return entries


def write_manifest(path, entries):
  """Writes {file: entry} as JSON lines sorted by file, atomically."""
  text = "".join(json.dumps(entries[k], sort_keys=True) + "\n"
                 for k in sorted(entries))
  export.write_atomic(path, text.encode("utf-8"))


def _read_or_error(path):
  """(uint8 image, b"") or (an empty image, the error message as bytes)."""
  try:
    return image_io.read_image(os.fsdecode(path)), b""
  except errors.InputError as e:
    return np.zeros([0, 0, 3], np.uint8), str(e).encode("utf-8")


def folder_images(folder, files, parallel_reads=None, prefetch=2):
  """Yields (file, image or None, error) for ``files`` (relative to folder).

  The images are read and decoded by a ``tf.data`` pipeline,
  ``parallel_reads`` at a time (None: ``tf.data.AUTOTUNE``), in order.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not files:
    return
  paths = [os.path.join(folder, f) for f in files]
  read = lambda p: tf.numpy_function(_read_or_error, [p],
                                     (tf.uint8, tf.string), stateful=False)
  images = tf.data.Dataset.from_tensor_slices(paths).map(
      read, num_parallel_calls=parallel_reads or tf.data.AUTOTUNE,
      deterministic=True).prefetch(prefetch)
  for name, (image, error) in zip(files, images.as_numpy_iterator()):
    yield (name, None, error.decode("utf-8")) if error else (name, image, "")


def dataset_images(name, split="test", data_dir=None, prefetch=2):
  """(number of examples, iterator of (file, image, "")) of a TFDS split.

  The file is the example's ``"filename"`` if it has one, else
  ``"{index:06d}.png"``.

  Raises:
    InputError: for an unknown dataset or split.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top,unused-import
  import tfrnncomp.datasets  # Registers the kodak builder.
  try:
    ds, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True)
  except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
    raise errors.InputError(f"cannot load dataset {name!r} split {split!r}: "
                            f"{cli.error_message(e)}") from None
  total = info.splits[split].num_examples

  def generate():
    for index, example in enumerate(
        tfds.as_numpy(ds.prefetch(prefetch or tf.data.AUTOTUNE))):
      filename = example.get("filename", b"")
      filename = (filename.decode("utf-8") if isinstance(filename, bytes)
                  else str(filename)) or f"{index:06d}.png"
      image = np.asarray(example["image"], np.uint8)
      if image.ndim == 3 and image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
      yield filename, image, ""
  return total, generate()


@dataclasses.dataclass
class BatchResult:
  """What :func:`compress_images` did."""

  manifest: str
  entries: dict  # {file: manifest entry} of the whole manifest.
  coded: List[str]  # Files coded by this run.
  skipped: List[str]  # Files already done.
  failed: List[Tuple[str, str]]  # (file, message) of the unreadable ones.

  def describe(self):
    text = (f"{self.manifest}: {len(self.coded)} coded, {len(self.skipped)} "
            f"already done")
    if self.failed:
      text += f", {len(self.failed)} failed"
    done = [self.entries[f] for f in self.coded + self.skipped
            if f in self.entries]
    if done:
      bpp = np.mean([e["bpp"] for e in done])
      psnr = np.mean([e["psnr"] for e in done if e["psnr"] is not None])
      text += f"; mean {bpp:.4f} bpp, {psnr:.2f} dB PSNR"
    return text


def _finite(value):
  """A metric for JSON: None (null) where it is undefined (NaN)."""
  value = float(value)
  return value if np.isfinite(value) else None


def _request(iterations, bpp):
  return f"iterations={iterations}" if bpp is None else f"bpp={bpp:g}"


def _is_done(entry, output_dir, settings):
  if entry is None or any(entry.get(k) != v for k, v in settings.items()):
    return False
  if entry.get("search_steps", 0) != settings.get("search_steps", 0):
    return False  # A searched file is not the plain encoder's, nor back.
  try:
    return os.path.getsize(os.path.join(output_dir, entry["output"])
                           ) == entry["bytes"]
  except (OSError, KeyError, TypeError):
    return False


def compress_images(codec, output_dir, folder=None, dataset=None,
                    split="test", data_dir=None, iterations=None, bpp=None,
                    fmt="bitstream", manifest=None, max_images=None,
                    parallel_reads=None, progress=None, on_image=None,
                    flush_seconds=10., search_steps=0):
  """Compresses every image of ``folder`` or ``dataset`` (see module doc).

  Args:
    codec: a :class:`~tfrnncomp.cli.SavedCodec` (or a RemoteCodec).
    output_dir: where the code files and the manifest go (created).
    folder: a folder of images (searched recursively), or None.
    dataset: instead, a TFDS dataset name (``split``, ``data_dir``).
    split: the TFDS split.
    data_dir: the TFDS data directory (TFDS' default if None).
    iterations: iterations to code (>= 1); or None with ``bpp``.
    bpp: a target rate instead (the most iterations that fit, per image).
    fmt: "bitstream" (``.rnc``) or "npz".
    manifest: the manifest path (default ``output_dir/manifest.jsonl``).
    max_images: only the first images (in sorted order for a folder).
    parallel_reads: images read and decoded at once (None: autotuned).
    progress: None, or a function of the number of images returning a
      callback called with each file name as it is done, skipped or failed
      (e.g. ``functools.partial(evaluation.progress_bar,
      description="compressing")``, :func:`tfrnncomp.evaluation.progress_bar`).
    on_image: a callback called with each new manifest entry after its
      output is written (an exception from it stops the run, after the
      manifest is written).
    flush_seconds: rewrite the manifest at least this often.
    search_steps: code-search steps per iteration
      (:mod:`tfrnncomp.code_search`; 0: the encoder's codes). Recorded in
      each manifest entry when positive: a run with another value recodes.

  Returns:
    A :class:`BatchResult`.

  Raises:
    InputError: on bad arguments, a bad source, colliding output names, or
      an unreadable manifest.
  """
  if (folder is None) == (dataset is None):
    raise errors.InputError("give exactly one of a folder and a dataset")
  if (iterations is None) == (bpp is None):
    raise errors.InputError("give either iterations or a target bpp")
  if iterations is not None and int(iterations) < 1:
    raise errors.InputError(f"iterations must be >= 1, got {iterations}")
  if bpp is not None and not bpp > 0:
    raise errors.InputError(f"the target bpp must be positive, got {bpp}")
  if fmt not in EXTENSIONS:
    raise errors.InputError(f"unknown format {fmt!r} (bitstream or npz)")
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise errors.InputError(f"{output_dir} exists and is not a directory")
  manifest = manifest or os.path.join(output_dir, MANIFEST)
  search_steps = cli.check_search_steps(search_steps)
  settings = {"format": fmt, "request": _request(iterations, bpp),
              "model": codec.name, "weights_sha256": codec.weights_sha256}
  if search_steps:  # Absent otherwise, as in manifests written before it.
    settings["search_steps"] = search_steps
  entries = read_manifest(manifest)

  if folder is not None:
    from tfrnncomp import datasets  # pylint: disable=g-import-not-at-top
    files = [os.path.relpath(p, folder) for p in datasets.list_folder(folder)]
    files = files[:max_images] if max_images is not None else files
    outputs = {}
    for name in files:
      out = output_name(name, fmt)
      if out in outputs:
        raise errors.InputError(f"{outputs[out]} and {name} would both be "
                                f"written to {out}")
      outputs[out] = name
    skipped = [f for f in files if _is_done(entries.get(f), output_dir,
                                            settings)]
    todo = [f for f in files if f not in set(skipped)]
    total = len(files)
    source = folder_images(folder, todo, parallel_reads)
  else:
    total, source = dataset_images(dataset, split, data_dir)
    if max_images is not None:
      total = min(total, max_images)
    skipped = []
  tick = progress(total) if progress else None
  if tick:
    for name in skipped:
      tick(name)

  os.makedirs(output_dir, exist_ok=True)
  coded, failed, written = [], [], set()
  last_flush = time.monotonic()
  try:
    for index, (name, image, error) in enumerate(source):
      if max_images is not None and index >= max_images:
        break
      if dataset is not None and _is_done(entries.get(name), output_dir,
                                          settings):
        skipped.append(name)
      elif error:
        failed.append((name, error))
      else:
        try:
          out = output_name(name, fmt)
          if out in written:
            raise errors.InputError(f"{name}: another image was written to "
                                    f"{out}")
          data, used, codes = encode_image(codec, image, fmt, iterations, bpp,
                                           name, search_steps)
        except errors.InputError as e:
          failed.append((name, str(e)))
        else:
          height, width = image.shape[:2]
          x_hat = codec.decode(codes, height, width)[-1]
          path = os.path.join(output_dir, out)
          os.makedirs(os.path.dirname(path), exist_ok=True)
          export.write_atomic(path, data)
          written.add(out)
          entry = dict(settings, file=name, output=out, bytes=len(data),
                       bpp=len(data) * 8 / (height * width),
                       psnr=_finite(metrics.psnr(image, x_hat)),
                       ms_ssim=_finite(metrics.ms_ssim(image, x_hat)),
                       iterations=used,
                       height=int(height), width=int(width))
          entries[name] = entry
          coded.append(name)
          if on_image:
            on_image(entry)
      if tick:
        tick(name)
      if time.monotonic() - last_flush > flush_seconds:
        write_manifest(manifest, entries)
        last_flush = time.monotonic()
  finally:
    write_manifest(manifest, entries)
  return BatchResult(manifest=manifest, entries=entries, coded=coded,
                     skipped=skipped, failed=failed)
