"""Encode and decode speed of the recurrent codecs, beside standard codecs.

What ``tools/benchmark.py`` measures (issue 9), for each codec SavedModel
(:mod:`tfrnncomp.export`) and each nominal rate (bpp = iterations * bits /
256: 0.125 to 2 bpp are 1 to 16 iterations of the shipped 32-bit model):

- encode = the network (:meth:`tfrnncomp.cli.SavedCodec.encode`, image x ->
  codes) + entropy coding (:func:`tfrnncomp.cli.stream_chunks`: the entropy
  model's range coder, :meth:`SavedEntropyCoder.compress
  <tfrnncomp.entropy.saved_model.SavedEntropyCoder.compress>`, and the raw
  packing of chunks it does not shrink) + the container
  (:func:`tfrnncomp.cli.write_stream`); decode = reading the container and
  entropy decoding (:func:`tfrnncomp.cli.stream_codes`) + the network
  (:meth:`~tfrnncomp.cli.SavedCodec.decode`, codes -> x_hat after each
  iteration). Network and entropy coding are timed apart; decoding is
  checked to give back the codes exactly;
- each time is the median of ``runs`` runs, after one unmeasured warm-up
  run per image shape (the first call at a new shape builds oneDNN
  primitives; the SavedModel's signatures have unknown H and W, so nothing is
  retraced, see ``tests/test_benchmark.py``);
- megapixels per second (image pixels / time);
- peak memory: each (model, rate) runs in a fresh Python process
  (:func:`measure_in_subprocess`), which reports its peak resident memory
  (``VmHWM`` of ``/proc/self/status``) and its resident memory after loading
  the model and the entropy model (``VmRSS``), so configurations do not
  inherit each other's peaks;
- efficiency: floating-point operations of one iteration of the encoder
  (E-Conv, E-RNN#1..3, binarizer) and of the decoder (D-Conv, D-RNN#1..4,
  to RGB; with the gain estimator if the model has one), counted by
  TensorFlow's op statistics on the traced step (:func:`network_flops`;
  a convolution counts 2 per multiply-accumulate), divided by the measured
  network time and compared with the peak of one large matmul on this
  machine in the model's precision (:func:`matmul_peak`; float32, or
  bfloat16 for a model whose convolutions compute in bfloat16). Encoding T iterations runs the encoder
  T times and the decoder T - 1 times (:meth:`RecurrentCodec.encode
  <tfrnncomp.models.toderici2017.RecurrentCodec.encode>`), decoding runs the
  decoder T times;
- standard codecs (:mod:`tfrnncomp.codecs`: JPEG, WebP, HEVC, AVIF) on the
  same images at similar rates: each codec's quality sweep is run once (it
  also warms it up), the quality whose file is closest in bpp (by ratio) to
  the learned codec's actual bpp is kept, and its compress and decompress
  are timed (median of ``runs``). They are reported as ratios: learned time
  / standard time.

:func:`run` returns everything as one JSON-able dict (with how it was made:
machine, threads, versions); :func:`markdown` renders it as tables.
"""

import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

__all__ = ["RATES", "STANDARD_CODECS", "LARGE_SIZE", "iterations_for",
           "select_images", "memory_status", "configure_threads",
           "measure_codec", "measure_in_subprocess", "measure_large",
           "measure_standard", "network_flops", "matmul_peak", "run",
           "markdown"]

RATES = (0.125, 0.25, 0.5, 1., 2.)
"""Nominal rates (bpp before entropy coding) measured by default."""

STANDARD_CODECS = ("jpeg", "webp", "hevc", "avif")
"""The standard codecs timed beside the learned ones by default."""

LARGE_SIZE = (3000, 4000)
"""Height and width of the large image (``--large``): 12 megapixels."""

LARGE_RATE = 0.25
"""Nominal bpp of the large image's encode and decode."""

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def iterations_for(bpp, bits):
  """Iterations giving ``bpp`` nominal with ``bits`` bits per 16x16 block.

  Raises:
    InputError: if ``bpp`` is not a positive multiple of bits / 256.
  """
  from tfrnncomp import errors  # pylint: disable=g-import-not-at-top
  iterations = bpp * 256 / bits
  if bpp <= 0 or abs(iterations - round(iterations)) > 1e-9:
    raise errors.InputError(f"rate {bpp:g} bpp is not a positive multiple of "
                            f"{bits}/256 = {bits / 256:g} bpp (one iteration "
                            f"of a {bits}-bit model)")
  return int(round(iterations))


def select_images(images_dir, images):
  """Image paths: the first ``images`` (an int or digits) of ``images_dir``
  (sorted), or the comma-separated names given (with or without extension).

  Raises:
    InputError: if the directory has no images, or a name is not in it.
  """
  from tfrnncomp import data  # pylint: disable=g-import-not-at-top
  from tfrnncomp import errors  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(images_dir):
    raise errors.InputError(f"images directory {images_dir} does not exist")
  paths = data.list_images(images_dir)
  if not paths:
    raise errors.InputError(f"{images_dir} holds no images")
  images = str(images).strip()
  if images.isdigit():
    count = int(images)
    if count < 1:
      raise errors.InputError(f"the number of images must be >= 1, got "
                              f"{count}")
    return paths[:count]
  by_name = {}
  for path in paths:
    name = os.path.basename(path)
    by_name.setdefault(name, path)
    by_name.setdefault(os.path.splitext(name)[0], path)
  chosen = []
  for name in (n.strip() for n in images.split(",")):
    if name not in by_name:
      raise errors.InputError(f"no image {name!r} in {images_dir}")
    chosen.append(by_name[name])
  return chosen


def memory_status():
  """{"peak_bytes": VmHWM, "resident_bytes": VmRSS} of this process (Linux).

  Falls back to ``ru_maxrss`` for the peak where /proc is missing.
  """
  values = {}
  try:
    with open("/proc/self/status") as f:
      for line in f:
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
          values[key] = int(rest.split()[0]) * 1024
  except OSError:
    import resource  # pylint: disable=g-import-not-at-top
    values["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return {"peak_bytes": values.get("VmHWM"),
          "resident_bytes": values.get("VmRSS")}


def configure_threads(intra_op=0, inter_op=0):
  """Sets TensorFlow's thread pools (0: TensorFlow's default) and returns
  what is in effect. Must run before TensorFlow executes anything."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if intra_op:
    tf.config.threading.set_intra_op_parallelism_threads(int(intra_op))
  if inter_op:
    tf.config.threading.set_inter_op_parallelism_threads(int(inter_op))
  return {
      "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
      "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
      "cpus": len(os.sched_getaffinity(0)) if hasattr(
          os, "sched_getaffinity") else os.cpu_count(),
      "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(default)"),
  }


def _median(values):
  return float(np.median(values))


def _timed(function, *args):
  start = time.perf_counter()
  result = function(*args)
  return result, time.perf_counter() - start


def _code_once(codec, image, iterations):
  """One encode and decode of ``image``: (times, data, codes, x_hat)."""
  from tfrnncomp import bitstream  # pylint: disable=g-import-not-at-top
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  height, width = image.shape[:2]
  codes, network_encode = _timed(codec.encode, image, iterations)
  start = time.perf_counter()
  chunks = cli.stream_chunks(codec, codes)
  data = cli.write_stream(codec, chunks, height, width)
  entropy_encode = time.perf_counter() - start
  start = time.perf_counter()
  header, read = bitstream.read(data)
  decoded = cli.stream_codes(codec, header, read)
  entropy_decode = time.perf_counter() - start
  x_hat, network_decode = _timed(codec.decode, decoded, header.height,
                                 header.width)
  if not np.array_equal(decoded, codes):
    raise AssertionError("the bitstream did not decode to its codes")
  times = {"network_encode": network_encode, "entropy_encode": entropy_encode,
           "entropy_decode": entropy_decode, "network_decode": network_decode}
  return times, data, x_hat


def _measure_image(codec, name, image, iterations, runs):
  """One image's bpp, PSNR and median times over ``runs`` (after warm-up)."""
  from tfrnncomp import metrics  # pylint: disable=g-import-not-at-top
  samples = []
  for _ in range(runs):
    times, data, x_hat = _code_once(codec, image, iterations)
    samples.append(times)
  height, width = image.shape[:2]
  result = {"image": name, "height": height, "width": width,
            "bpp": len(data) * 8 / (height * width),
            "psnr": metrics.psnr(image, x_hat[-1])}
  for key in samples[0]:
    result[key] = _median([s[key] for s in samples])
  result["encode"] = _median([s["network_encode"] + s["entropy_encode"]
                              for s in samples])
  result["decode"] = _median([s["network_decode"] + s["entropy_decode"]
                              for s in samples])
  return result


def _measurement(model_dir, codec, iterations, runs, images, loaded):
  """The dict of :func:`measure_codec` and :func:`measure_large`."""
  entropy = codec.entropy
  return {"model": model_dir, "identity": codec.identity,
          "entropy_model": entropy.name if entropy else None,
          "bits": codec.bits, "iterations": iterations,
          "nominal_bpp": iterations * codec.bits / 256, "runs": runs,
          "images": images,
          "memory": {"after_loading": loaded, "end": memory_status()}}


def measure_codec(model_dir, image_paths, iterations, runs=3):
  """Times a codec SavedModel on images at one iteration count, here.

  Returns:
    A dict: "images" (per image: size, bpp of the bitstream, PSNR of the
    last x_hat, and the median seconds of "network_encode",
    "entropy_encode", "encode" (their sum), "entropy_decode",
    "network_decode", "decode"), "warmup_seconds" (per image shape: its
    first encode + decode), "memory" (:func:`memory_status` after loading,
    and at the end) and the model's identity.
  """
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  from tfrnncomp import image_io  # pylint: disable=g-import-not-at-top
  codec = cli.load_codec(model_dir)
  codec.entropy  # pylint: disable=pointless-statement  # Loaded now, untimed.
  loaded = memory_status()
  images = [(path, image_io.read_image(path)) for path in image_paths]
  warmup = {}
  for path, image in images:
    shape = "x".join(map(str, image.shape[:2]))
    if shape not in warmup:
      start = time.perf_counter()
      _code_once(codec, image, iterations)
      warmup[shape] = time.perf_counter() - start
  results = [_measure_image(codec, os.path.basename(path), image, iterations,
                            runs) for path, image in images]
  return dict(_measurement(model_dir, codec, iterations, runs, results,
                           loaded), warmup_seconds=warmup)


def measure_large(model_dir, size=LARGE_SIZE, bpp=LARGE_RATE, runs=1):
  """Encode and decode of one large image (tiled, :mod:`tfrnncomp.tiling`).

  The image is kodim01 (if found) resized to ``size`` (height, width), else
  a smooth synthetic image. Returns the :func:`measure_codec`-like dict.
  """
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  from tfrnncomp import tiling  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  height, width = size
  source = os.path.join(os.path.dirname(_ROOT), "shared", "data", "kodak",
                        "kodim01.png")
  if os.path.isfile(source):
    with Image.open(source) as original:
      image = np.asarray(original.convert("RGB").resize(
          (width, height), Image.BICUBIC))
  else:
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.stack([rows * 255 // height, columns * 255 // width,
                      (rows + columns) % 256], -1).astype(np.uint8)
  codec = cli.load_codec(model_dir)
  codec.entropy  # pylint: disable=pointless-statement  # Loaded now, untimed.
  iterations = iterations_for(bpp, codec.bits)
  loaded = memory_status()
  name = (f"kodim01 resized to {width}x{height}" if os.path.isfile(source)
          else "synthetic")
  result = _measure_image(codec, name, image, iterations, runs)
  result["tiles"] = (
      len(tiling.plan(height, width, codec.tile, codec.margin))
      if tiling.needs_tiling(height, width, codec.max_untiled_pixels) else 1)
  return _measurement(model_dir, codec, iterations, runs, [result], loaded)


def measure_in_subprocess(task, threads=None, timeout=None):
  """Runs ``task`` (a dict: "kind" "codec" or "large", and the arguments of
  :func:`measure_codec` / :func:`measure_large`) in a fresh Python process,
  so that its peak memory is its own; returns its result.

  Raises:
    RuntimeError: if the process fails (with the end of its stderr).
  """
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
      p for p in (_ROOT, env.get("PYTHONPATH")) if p)
  env.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  payload = json.dumps({"task": task, "threads": threads or {}})
  result = subprocess.run([sys.executable, "-m", "tfrnncomp.benchmark",
                           payload], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)
  if result.returncode != 0:
    tail = " | ".join(result.stderr.strip().splitlines()[-3:])
    raise RuntimeError(f"benchmark worker failed ({result.returncode}): "
                       f"{tail}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def _worker(payload):
  """The subprocess side of :func:`measure_in_subprocess`."""
  request = json.loads(payload)
  threads = configure_threads(**request["threads"])
  task = dict(request["task"])
  kind = task.pop("kind")
  if kind == "codec":
    result = measure_codec(**task)
  elif kind == "large":
    task["size"] = tuple(task["size"])
    result = measure_large(**task)
  else:
    raise ValueError(f"unknown task kind {kind!r}")
  result["threads"] = threads
  print(json.dumps(result))


def measure_standard(name, image, target_bpps, runs=3):
  """A standard codec at the qualities closest to ``target_bpps``.

  Returns one dict per target: "target_bpp", "quality", "bpp", "psnr" and
  the median "encode" and "decode" seconds; or {"unavailable": reason}.
  """
  from tfrnncomp import codecs  # pylint: disable=g-import-not-at-top
  from tfrnncomp import metrics  # pylint: disable=g-import-not-at-top
  reason = codecs.unavailable_reason(name)
  if reason:
    return {"unavailable": reason}
  codec = codecs.get_codec(name)
  pixels = image.shape[0] * image.shape[1]
  sweep = [(p.quality, p.num_bytes * 8 / pixels) for p in codec.sweep(image)]
  points = []
  for target in target_bpps:
    quality, bpp = min(sweep, key=lambda q: abs(np.log(q[1] / target)))
    encode, decode = [], []
    for _ in range(runs):
      data, seconds = _timed(codec.compress, image, quality)
      encode.append(seconds)
      x_hat, seconds = _timed(codec.decompress, data)
      decode.append(seconds)
    points.append({"target_bpp": target, "quality": quality, "bpp": bpp,
                   "psnr": metrics.psnr(image, x_hat),
                   "encode": _median(encode), "decode": _median(decode)})
  return {"description": codec.description, "points": points}


def network_flops(config, height, width):
  """Floating-point operations of one encoder and one decoder iteration.

  Builds the network of ``config`` (:func:`tfrnncomp.models.build_model`),
  traces one :meth:`encode_step` and one :meth:`decode_step` on a padded
  ``height`` x ``width`` image, and sums TensorFlow's registered "flops"
  statistics of the traced ops (a convolution: 2 * output size * kernel
  size * input channels; element-wise ops: one per element).

  Returns:
    {"encoder": {"total": F, "conv": F_conv}, "decoder": {...}}: per
    iteration, for a batch of one.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.framework import ops  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  from tfrnncomp import models  # pylint: disable=g-import-not-at-top
  from tfrnncomp.models import toderici2017  # pylint: disable=g-import-not-at-top
  model = models.build_model(config)
  block = toderici2017.BLOCK
  height, width = -(-height // block) * block, -(-width // block) * block
  x = tf.zeros([1, height, width, 3])
  encoder_state, decoder_state = model.zero_state(x)
  spec = lambda t: tf.TensorSpec(t.shape, t.dtype)
  nested_spec = lambda s: tf.nest.map_structure(spec, s)
  codes = tf.TensorSpec([1, height // block, width // block, config.bits])

  def count(function, *specs):
    graph = tf.function(function, autograph=False).get_concrete_function(
        *specs).graph
    totals = {"total": 0, "conv": 0}
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # The flops registry's deprecation warnings.
    try:
      stats = []
      for op in graph.get_operations():
        try:
          stats.append((op.type, ops.get_stats_for_node_def(
              graph, op.node_def, "flops").value))
        except (ValueError, TypeError):
          pass
    finally:
      logger.setLevel(level)
    for op_type, flops in stats:
      if flops:
        totals["total"] += int(flops)
        if op_type.startswith("Conv2D"):
          totals["conv"] += int(flops)
    return totals

  return {"encoder": count(lambda x, x_hat, s: model.encode_step(x, x_hat, s),
                           spec(x), spec(x), nested_spec(encoder_state)),
          "decoder": count(lambda c, x_hat, s: model.decode_step(c, x_hat, s),
                           codes, spec(x), nested_spec(decoder_state))}


def matmul_peak(size=4096, repeats=5, dtype="float32"):
  """GFLOP/s of a size x size matmul of ``dtype`` here (best of ``repeats``)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  a = tf.cast(tf.random.normal([size, size], seed=0), dtype)
  matmul = tf.function(lambda a: tf.reduce_sum(tf.linalg.matmul(a, a)))
  matmul(a).numpy()
  best = min(_timed(lambda: matmul(a).numpy())[1] for _ in range(repeats))
  return 2 * size ** 3 / best / 1e9


def _efficiency(measurement, flops, peak):
  """Adds achieved GFLOP/s and % of the matmul peak to each image."""
  iterations = measurement["iterations"]
  for image in measurement["images"]:
    per = flops.get((image["height"], image["width"]))
    if not per:
      continue
    encoder, decoder = per["encoder"]["total"], per["decoder"]["total"]
    encode = iterations * encoder + (iterations - 1) * decoder
    decode = iterations * decoder
    image["encode_gflops"] = encode / 1e9
    image["decode_gflops"] = decode / 1e9
    image["encode_gflop_per_s"] = encode / image["network_encode"] / 1e9
    image["decode_gflop_per_s"] = decode / image["network_decode"] / 1e9
    if peak:
      image["encode_peak_percent"] = 100 * image["encode_gflop_per_s"] / peak
      image["decode_peak_percent"] = 100 * image["decode_gflop_per_s"] / peak


def _versions():
  versions = {"python": platform.python_version()}
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    versions["tensorflow"] = tf.__version__
  except ImportError:
    pass
  return versions


def _cpu_model():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor()


def run(model_dirs, image_paths, rates=RATES, runs=3,
        standard_codecs=STANDARD_CODECS, large=False, threads=None,
        isolate=True, log=print):
  """The whole benchmark; returns the JSON-able result dict.

  Args:
    model_dirs: codec SavedModel directories.
    image_paths: the images (:func:`select_images`).
    rates: nominal bpp; each a multiple of every model's bits / 256.
    runs: timed runs per measurement (the median is kept).
    standard_codecs: names in :data:`tfrnncomp.codecs.STANDARD_CODECS`.
    large: also encode and decode a :data:`LARGE_SIZE` image at
      :data:`LARGE_RATE` bpp.
    threads: {"intra_op": n, "inter_op": m} for the workers (0: default).
    isolate: measure each (model, rate) in a fresh process (peak memory per
      configuration); False runs everything here (faster; the peaks are
      then cumulative).
    log: called with progress lines.
  """
  from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
  from tfrnncomp import export  # pylint: disable=g-import-not-at-top
  from tfrnncomp import image_io  # pylint: disable=g-import-not-at-top
  threads = threads or {}
  environment = configure_threads(**threads)
  configs = {}
  for model_dir in model_dirs:
    config = export.load_config(model_dir)
    if cli.model_system(model_dir) == cli.VARIABLE_RATE_SYSTEM:
      from tfrnncomp import errors  # pylint: disable=g-import-not-at-top
      raise errors.InputError(f"{model_dir} is an akbari2020 model; the "
                              f"benchmark times the recurrent codecs")
    for bpp in rates:
      iterations_for(bpp, config.bits)  # Checks every rate first.
    configs[model_dir] = config
  peaks = {}
  for dtype in sorted({"float32"} | {getattr(c, "compute_dtype", "float32")
                                      for c in configs.values()}):
    log(f"measuring the {dtype} matmul peak")
    peaks[dtype] = matmul_peak(dtype=dtype)
  shapes = sorted({image_io.read_image(p).shape[:2] for p in image_paths})
  models = []
  for model_dir, config in configs.items():
    peak = peaks[getattr(config, "compute_dtype", "float32")]
    flops = {}
    for height, width in shapes:
      flops[(height, width)] = network_flops(config, height, width)
    if large:
      flops[LARGE_SIZE] = network_flops(config, *LARGE_SIZE)
    measurements = []
    for bpp in rates:
      iterations = iterations_for(bpp, config.bits)
      log(f"{model_dir}: {bpp:g} bpp ({iterations} iterations)")
      task = {"model_dir": model_dir, "image_paths": list(image_paths),
              "iterations": iterations, "runs": runs}
      if isolate:
        measurement = measure_in_subprocess(dict(task, kind="codec"),
                                            threads)
      else:
        measurement = measure_codec(**task)
        measurement["threads"] = environment
      _efficiency(measurement, flops, peak)
      measurements.append(measurement)
    model = {"model": model_dir, "config": config.to_dict(),
             "flops_per_iteration": {f"{h}x{w}": f for (h, w), f in
                                     flops.items()},
             "rates": measurements}
    if large:
      log(f"{model_dir}: {LARGE_SIZE[1]}x{LARGE_SIZE[0]} at {LARGE_RATE:g} "
          f"bpp")
      task = {"model_dir": model_dir, "size": list(LARGE_SIZE),
              "bpp": LARGE_RATE, "runs": 1}
      if isolate:
        model["large"] = measure_in_subprocess(dict(task, kind="large"),
                                               threads)
      else:
        model["large"] = measure_large(**dict(task, size=LARGE_SIZE))
      _efficiency(model["large"], flops, peak)
    models.append(model)

  standard = {}
  for name in standard_codecs:
    log(f"standard codec {name}")
    per_image = []
    for index, path in enumerate(image_paths):
      image = image_io.read_image(path)
      targets = sorted({m["images"][index]["bpp"] for model in models
                        for m in model["rates"]})
      per_image.append(dict(measure_standard(name, image, targets, runs),
                            image=os.path.basename(path)))
    standard[name] = per_image
  return {
      "description": "Encode and decode times of tfrnncomp codecs (network "
                     "and entropy coding apart), megapixels per second, peak "
                     "memory, efficiency against the matmul peak of the "
                     "model's precision, and "
                     "standard codecs at similar rates",
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "machine": {"cpu": _cpu_model(), "threads": environment,
                  "load_average": os.getloadavg(),
                  "matmul_float32_gflop_per_s": peaks["float32"],
                  "matmul_gflop_per_s": peaks},
      "versions": _versions(), "runs": runs,
      "images": [os.path.basename(p) for p in image_paths],
      "models": models, "standard": standard}


def _mean(values):
  values = [v for v in values if v is not None]
  return float(np.mean(values)) if values else float("nan")


def _standard_ratio(results, name, measurement, key):
  """Mean over images of learned time / standard time at the closest rate."""
  ratios = []
  for index, image in enumerate(measurement["images"]):
    entry = results["standard"].get(name, [])
    if index >= len(entry) or "points" not in entry[index]:
      return None
    point = min(entry[index]["points"],
                key=lambda p: abs(p["target_bpp"] - image["bpp"]))
    ratios.append(image[key] / point[key])
  return _mean(ratios)


def _ratio(value):
  """A time ratio for the tables: 0.52x, 7.5x, 2060x."""
  return f"{value:.0f}x" if value >= 100 else f"{value:.2g}x"


def markdown(results):
  """The results as Markdown tables (means over the images)."""
  lines = [f"Measured {results['date']} on {results['machine']['cpu']} "
           f"({results['machine']['threads']['cpus']} CPUs; load average "
           f"{results['machine']['load_average'][0]:.2f}), TensorFlow "
           f"{results['versions'].get('tensorflow', '?')}, "
           f"{len(results['images'])} images, median of {results['runs']} "
           f"run(s). Matmul peak: " + ", ".join(
               f"{peak:.0f} GFLOP/s in {dtype}" for dtype, peak in
               results["machine"].get("matmul_gflop_per_s", {
                   "float32": results["machine"][
                       "matmul_float32_gflop_per_s"]}).items()) + ".",
           ""]
  for model in results["models"]:
    lines += [f"**{model['config'].get('name')}** ({model['model']}; "
              f"{model['config'].get('compute_dtype', 'float32')} "
              f"convolutions)", "",
              "| bpp nominal | iterations | bpp actual | PSNR (dB) | encode s "
              "(network + entropy) | decode s (entropy + network) | encode "
              "MP/s | decode MP/s | peak memory MB | encode / decode % of "
              "peak |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    rows = list(model["rates"]) + ([model["large"]] if "large" in model
                                   else [])
    for m in rows:
      images = m["images"]
      mean = lambda key, images=images: _mean([i.get(key) for i in images])
      pixels = _mean([i["height"] * i["width"] for i in images])
      peak = m["memory"]["end"]["peak_bytes"]
      label = f"{m['nominal_bpp']:g}"
      if m is model.get("large"):
        label += f" ({images[0]['width']}x{images[0]['height']})"
      lines.append(
          f"| {label} | {m['iterations']} | {mean('bpp'):.3f} | "
          f"{mean('psnr'):.2f} | {mean('encode'):.2f} "
          f"({mean('network_encode'):.2f} + {mean('entropy_encode'):.2f}) | "
          f"{mean('decode'):.2f} ({mean('entropy_decode'):.2f} + "
          f"{mean('network_decode'):.2f}) | "
          f"{pixels / mean('encode') / 1e6:.3g} | "
          f"{pixels / mean('decode') / 1e6:.3g} | "
          f"{peak / 2 ** 20:.0f} | {mean('encode_peak_percent'):.0f} / "
          f"{mean('decode_peak_percent'):.0f} |")
    flops = next(iter(model["flops_per_iteration"].items()))
    lines += ["", f"Per iteration on {flops[0]}: encoder "
              f"{flops[1]['encoder']['total'] / 1e9:.1f} GFLOP (convolutions "
              f"{flops[1]['encoder']['conv'] / 1e9:.1f}), decoder "
              f"{flops[1]['decoder']['total'] / 1e9:.1f} GFLOP (convolutions "
              f"{flops[1]['decoder']['conv'] / 1e9:.1f}).", ""]
    names = [n for n, e in results["standard"].items()
             if all("points" in i for i in e)]
    if names:
      lines += ["Time of this codec / time of a standard codec at the "
                "closest rate (encode, decode; higher = ours slower):", "",
                "| bpp nominal | " + " | ".join(names) + " |",
                "|---|" + "---|" * len(names)]
      for m in model["rates"]:
        cells = []
        for name in names:
          encode = _standard_ratio(results, name, m, "encode")
          decode = _standard_ratio(results, name, m, "decode")
          cells.append(f"{_ratio(encode)}, {_ratio(decode)}")
        lines.append(f"| {m['nominal_bpp']:g} | " + " | ".join(cells) + " |")
      lines.append("")
  for name, entries in results["standard"].items():
    if entries and "unavailable" in entries[0]:
      lines.append(f"{name}: not measured ({entries[0]['unavailable']}).")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  _worker(sys.argv[1])
