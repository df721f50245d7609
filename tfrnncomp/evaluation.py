"""Rate-distortion evaluation of codecs on a test set, in CompressAI's layout.

For each codec (a :class:`tfrnncomp.codecs.Codec`) and each image, every
point of the codec's rate sweep is coded and decoded, and measured on the
decoded 8-bit RGB image against the original:

- ``bpp`` = bytes actually written x 8 / (H x W) (the whole file: headers
  and container included);
- ``psnr-rgb``, ``ms-ssim-rgb``, ``psnr-hvs`` (see :mod:`tfrnncomp.metrics`);
- ``encoding_time`` and ``decoding_time`` in seconds (wall clock, in
  process, bytes in memory).

Per-image results are cached as ``CACHE/CODEC/IMAGE.json`` together with the
codec's description, its sweep and a SHA-256 of the image's pixels, so an
interrupted run resumes where it stopped and a changed codec, sweep or image
is measured again.

The summary of a codec averages the per-image values of each rate point over
the images (as CompressAI's ``eval_model`` and the tensorflow/compression
result files do: the mean of per-image PSNRs, not the PSNR of the mean MSE);
``ms-ssim-rgb-db`` is ``-10 log10(1 - mean MS-SSIM)``. It is written as one
JSON per codec::

    {"name": ..., "description": ..., "dataset": ..., "num_images": N,
     "results": {"quality": [...], "bpp": [...], "psnr-rgb": [...],
                 "ms-ssim-rgb": [...], "ms-ssim-rgb-db": [...],
                 "psnr-hvs": [...], "encoding_time": [...],
                 "decoding_time": [...]}}

with one entry per rate point, the layout of CompressAI's
``results/image/kodak/*.json`` (its plotting tools read ``name`` and
``results``; the extra keys do not disturb them).
"""

import hashlib
import json
import os
import re
import sys
import tempfile

import numpy as np

from tfrnncomp import errors
from tfrnncomp import metrics

__all__ = ["PER_IMAGE_KEYS", "load_images", "measure", "evaluate_image",
           "evaluate_codec", "summarize", "write_json", "write_atomic_text",
           "read_json",
           "closest_point", "progress_bar"]

PER_IMAGE_KEYS = ("quality", "bytes", "bpp", "psnr-rgb", "ms-ssim-rgb",
                  "psnr-hvs", "encoding_time", "decoding_time")
"""The lists of one image's cached results, one entry per rate point."""

_CACHE_VERSION = 1


def load_images(dataset=None, image_dir=None, data_dir=None, manual_dir=None,
                max_images=None):
  """The test images as a list of ``(filename, uint8 [H, W, 3])``.

  Args:
    dataset: a TFDS dataset name (``"kodak"``; built offline on first use,
      see :mod:`tfrnncomp.datasets.kodak`), or None.
    image_dir: a folder of images instead (see
      :mod:`tfrnncomp.datasets.image_folder`).
    data_dir: TFDS data directory (TFDS' default if None).
    manual_dir: TFDS manual directory holding the dataset's files.
    max_images: keep only the first images (for quick runs).

  Raises:
    InputError: if neither or both sources are given, or a source is bad.
  """
  if (dataset is None) == (image_dir is None):
    raise errors.InputError("give exactly one of a dataset and an image folder")
  if image_dir is not None:
    from tfrnncomp import datasets  # pylint: disable=g-import-not-at-top
    images = list(datasets.iterate_folder(image_dir))
  else:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    # pylint: disable-next=g-import-not-at-top,unused-import
    import tfrnncomp.datasets
    kwargs = {}
    if manual_dir:
      kwargs["download_config"] = tfds.download.DownloadConfig(
          manual_dir=manual_dir)
    try:
      ds = tfds.load(dataset, split="test", data_dir=data_dir,
                     download_and_prepare_kwargs=kwargs)
    except tfds.core.registered.DatasetNotFoundError:
      raise errors.InputError(f"unknown dataset {dataset!r}") from None
    images = [(example["filename"].decode(), example["image"])
              for example in tfds.as_numpy(ds)]
  if max_images is not None:
    images = images[:max_images]
  return images


def measure(x, x_hat):
  """The distortion metrics of one decoded image."""
  ms_ssim = metrics.ms_ssim(x, x_hat)
  return {"psnr-rgb": metrics.psnr(x, x_hat), "ms-ssim-rgb": ms_ssim,
          "psnr-hvs": metrics.psnr_hvs(x, x_hat)}


def evaluate_image(codec, image):
  """Runs ``codec``'s sweep on one image: a dict of :data:`PER_IMAGE_KEYS`."""
  height, width = image.shape[:2]
  result = {key: [] for key in PER_IMAGE_KEYS}
  for point in codec.sweep(image):
    result["quality"].append(point.quality)
    result["bytes"].append(int(point.num_bytes))
    result["bpp"].append(point.num_bytes * 8 / (height * width))
    for key, value in measure(image, point.x_hat).items():
      result[key].append(value)
    result["encoding_time"].append(point.encoding_time)
    result["decoding_time"].append(point.decoding_time)
  result["height"], result["width"] = height, width
  return result


def _image_hash(image):
  digest = hashlib.sha256(str(image.shape).encode())
  digest.update(np.ascontiguousarray(image).tobytes())
  return digest.hexdigest()


def _cache_path(cache_dir, codec, filename):
  stem = os.path.splitext(filename)[0]
  stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem.replace(os.sep, "__"))
  return os.path.join(cache_dir, codec.name, stem + ".json")


def _cache_stamp(codec, filename, image):
  return {"version": _CACHE_VERSION, "codec": codec.description,
          "qualities": [float(q) for q in codec.qualities],
          "image": filename, "image_sha256": _image_hash(image)}


def _read_cache(path, stamp):
  try:
    with open(path) as f:
      entry = json.load(f)
  except (OSError, ValueError):
    return None
  if entry.get("stamp") != stamp:
    return None
  return entry.get("results")


def evaluate_codec(codec, images, cache_dir=None, progress=None):
  """Per-image results of ``codec`` on ``images``, reusing the cache.

  Args:
    codec: a :class:`tfrnncomp.codecs.Codec`.
    images: a list of ``(filename, image)``.
    cache_dir: the cache folder (None: no cache).
    progress: called with the filename after each image, or None.

  Returns:
    A list of per-image result dicts (see :func:`evaluate_image`), in the
    order of ``images``.
  """
  results = []
  for filename, image in images:
    result = None
    if cache_dir:
      path = _cache_path(cache_dir, codec, filename)
      stamp = _cache_stamp(codec, filename, image)
      result = _read_cache(path, stamp)
    if result is None:
      result = evaluate_image(codec, image)
      if cache_dir:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_json(path, {"stamp": stamp, "results": result})
    results.append(result)
    if progress:
      progress(filename)
  return results


def summarize(codec, per_image, dataset=""):
  """Averages per-image results into the CompressAI-layout summary."""
  if not per_image:
    raise errors.InputError("no images to summarize")
  n = len(per_image[0]["quality"])
  if any(r["quality"] != per_image[0]["quality"] for r in per_image):
    raise errors.InputError(f"{codec.name}: images were coded at different "
                            f"qualities")
  mean = lambda key: [float(np.mean([r[key][i] for r in per_image]))
                      for i in range(n)]
  results = {"quality": list(per_image[0]["quality"])}
  for key in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
    results[key] = mean(key)
  results["ms-ssim-rgb-db"] = [metrics.ms_ssim_db(v)
                               for v in results["ms-ssim-rgb"]]
  for key in ("psnr-hvs", "encoding_time", "decoding_time"):
    results[key] = mean(key)
  return {"name": codec.label, "description": codec.description,
          "dataset": dataset, "num_images": len(per_image),
          "results": results}


def write_atomic_text(path, text):
  """Writes a text file atomically (a temporary file renamed into place).

  The file gets the usual permissions (0666 minus the umask), not the
  temporary file's 0600.
  """
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
  try:
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path, data):
  """Writes ``data`` as indented JSON, atomically."""
  write_atomic_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path):
  """Reads a result JSON (ours or CompressAI's) and checks its layout.

  Raises:
    InputError: if the file cannot be read or lacks ``name`` / ``results``
      with a ``bpp`` list.
  """
  try:
    with open(path) as f:
      data = json.load(f)
  except (OSError, ValueError) as e:
    raise errors.InputError(f"cannot read {path}: {e}") from None
  if not isinstance(data, dict) or "results" not in data or not isinstance(
      data["results"].get("bpp"), list):
    raise errors.InputError(f"{path} is not a result JSON (no results.bpp)")
  data.setdefault("name", os.path.splitext(os.path.basename(path))[0])
  return data


def closest_point(codec, image, target_bpp):
  """The rate point of ``codec``'s sweep on ``image`` closest to a bpp."""
  pixels = image.shape[0] * image.shape[1]
  points = list(codec.sweep(image))
  return min(points, key=lambda p: abs(p.num_bytes * 8 / pixels - target_bpp))


def progress_bar(total, description):
  """A progress callback (tqdm if installed, else a counter on stderr)."""
  try:
    import tqdm  # pylint: disable=g-import-not-at-top
  except ImportError:
    tqdm = None
  if tqdm is not None:
    bar = tqdm.tqdm(total=total, desc=description, unit="image",
                    file=sys.stderr, leave=True)

    def update(filename):
      bar.set_postfix_str(filename, refresh=False)
      bar.update(1)
      if bar.n >= total:
        bar.close()
    return update

  done = [0]

  def count(filename):
    done[0] += 1
    sys.stderr.write(f"\r{description}: {done[0]}/{total} {filename}   ")
    if done[0] >= total:
      sys.stderr.write("\n")
    sys.stderr.flush()
  return count
