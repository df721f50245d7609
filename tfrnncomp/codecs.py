"""Standard image codecs and tfrnncomp SavedModels behind one interface.

A :class:`Codec` turns a uint8 RGB image into bytes and back at a *quality*
(the codec's own rate parameter) and has a default rate sweep
(``qualities``), so one evaluator serves JPEG, WebP, JPEG 2000, AVIF, HEVC,
JPEG XL and the learned models (as CompressAI's ``utils/bench`` codecs do):

    codec = codecs.get_codec("jpeg")
    data = codec.compress(image, 5)        # bytes actually written
    x_hat = codec.decompress(data)         # uint8 [H, W, 3]
    for point in codec.sweep(image): ...   # every quality of the sweep

The standard codecs run in-process through Pillow and its plugins; the
settings follow CompressAI's published runs where there is one:

- ``jpeg``: JPEG, 4:2:0 chroma subsampling, standard tables, no Huffman
  optimization (Pillow's defaults, as CompressAI's ``jpeg.json``);
- ``webp``: lossy WebP (always 4:2:0), Pillow's default method 4;
- ``jpeg2000``: OpenJPEG through Pillow, the 9/7 wavelet with the YCbCr
  component transform, one quality layer at a target rate (the quality is
  the target bpp; ``quality_mode="rates"`` takes the compression ratio
  24 / bpp), raw codestream (no JP2 boxes);
- ``avif``: AV1 (libaom through Pillow's libavif), 4:4:4, speed 6, tune
  "psnr" (-12% BD-rate in PSNR on three Kodak images against libavif's
  default tuning for still images);
- ``hevc``: HEVC (x265 through pillow-heif's libheif) with 4:4:4 chroma and
  BT.601 full-range YCbCr: the coding of BPG (Bellard's 4:4:4 x265 mode)
  in a HEIF container (about 380 bytes of boxes per file). x265 runs with
  preset "slow" and tune "psnr" (no adaptive quantization or psycho-visual
  tuning, which libheif's default tune "ssim" enables: -6% BD-rate in PSNR
  on three Kodak images); libheif maps the quality to CRF (100 - q) / 2. The
  ``hvcC`` box of every file is checked to hold chroma_format_idc = 3;
- ``jpegxl``: JPEG XL (libjxl through pillow-jxl-plugin), effort 7.

Pillow's AVIF and JPEG XL encoders run on one thread so that timings are
comparable; x265 uses its own thread pool. A codec whose library is missing
is reported by :func:`unavailable_reason` (and ``get_codec`` raises
:class:`CodecUnavailableError` with the install hint) instead of failing
later.

:class:`LearnedCodec` wraps a SavedModel written by
:func:`tfrnncomp.export.export`. Its quality is the number of iterations
(for an akbari2020 model: B, the bits per code map channel, 1 to 8);
its sweep encodes once at the largest count and decodes once, since the
decoder returns the reconstruction after every iteration. Its bytes are
those of the bitstream (:mod:`tfrnncomp.bitstream`) that tools/encoder.py
writes, entropy-coded with the model's entropy model when it has one, and
its reconstructions are decoded from those bytes.
"""

import dataclasses
import io
import json
import os
import time
from typing import Iterator, Optional, Sequence

import numpy as np

from tfrnncomp import errors

__all__ = ["CodecUnavailableError", "RatePoint", "Codec", "PillowCodec",
           "JpegCodec", "WebpCodec", "Jpeg2000Codec", "AvifCodec",
           "HevcCodec", "JpegXlCodec", "LearnedCodec", "STANDARD_CODECS",
           "get_codec", "unavailable_reason", "hevc_chroma_format"]


class CodecUnavailableError(errors.TfrnncompError):
  """A codec whose library or plugin is not installed."""


@dataclasses.dataclass
class RatePoint:
  """One image coded at one quality."""
  quality: float
  num_bytes: int
  x_hat: np.ndarray
  encoding_time: float
  decoding_time: float


def _check_image(image):
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise errors.InputError(f"expected a uint8 [H, W, 3] image, got "
                            f"{image.dtype} {list(image.shape)}")
  if 0 in image.shape:
    raise errors.InputError(f"empty image of shape {list(image.shape)}")
  return np.ascontiguousarray(image)


class Codec:
  """An image codec with a rate parameter and a default sweep.

  Attributes:
    name: registry key, used for file names (``jpeg``, ``residual_gru``).
    label: display name, the ``name`` of the result JSON.
    qualities: the rate sweep, lowest rate first.
  """

  name = ""
  label = ""
  default_qualities: Sequence[float] = ()
  install_hint = ""

  def __init__(self, qualities=None):
    reason = self.unavailable_reason()
    if reason:
      raise CodecUnavailableError(f"{self.name}: {reason}")
    self.qualities = tuple(qualities if qualities is not None
                           else self.default_qualities)

  @classmethod
  def unavailable_reason(cls) -> Optional[str]:
    """Why the codec cannot run here, or None if it can."""
    return None

  @property
  def description(self) -> str:
    """Library versions and settings, for the result JSON."""
    return self.label

  def compress(self, image, quality) -> bytes:
    raise NotImplementedError

  def decompress(self, data) -> np.ndarray:
    raise NotImplementedError

  def sweep(self, image, qualities=None) -> Iterator[RatePoint]:
    """Codes ``image`` at each quality, timing compression and decompression."""
    image = _check_image(image)
    for quality in (self.qualities if qualities is None else qualities):
      start = time.perf_counter()
      data = self.compress(image, quality)
      encoding_time = time.perf_counter() - start
      start = time.perf_counter()
      x_hat = self.decompress(data)
      decoding_time = time.perf_counter() - start
      if x_hat.shape != image.shape:
        raise errors.FormatError(f"{self.name} decoded {list(x_hat.shape)} "
                                 f"from a {list(image.shape)} image")
      yield RatePoint(quality, len(data), x_hat, encoding_time, decoding_time)


class PillowCodec(Codec):
  """A codec behind ``PIL.Image.save`` / ``PIL.Image.open``."""

  format = ""

  def save_options(self, quality):
    raise NotImplementedError

  def compress(self, image, quality):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    buffer = io.BytesIO()
    Image.fromarray(_check_image(image)).save(
        buffer, format=self.format, **self.save_options(quality))
    return buffer.getvalue()

  def decompress(self, data):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    with Image.open(io.BytesIO(data)) as decoded:
      return np.asarray(decoded.convert("RGB"))


def _pillow_version():
  import PIL  # pylint: disable=g-import-not-at-top
  return PIL.__version__


def _feature_version(feature):
  from PIL import features  # pylint: disable=g-import-not-at-top
  return features.version(feature) or "?"


def _pillow_feature_missing(feature, what):
  from PIL import features  # pylint: disable=g-import-not-at-top
  if not features.check(feature):
    return f"Pillow {_pillow_version()} was built without {what}"
  return None


class JpegCodec(PillowCodec):
  """JPEG 4:2:0, no Huffman optimization (as CompressAI's jpeg.json)."""

  name = "jpeg"
  label = "JPEG (4:2:0)"
  format = "JPEG"
  default_qualities = (1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90)

  @classmethod
  def unavailable_reason(cls):
    return _pillow_feature_missing("jpg", "libjpeg")

  @property
  def description(self):
    return (f"JPEG 4:2:0, quality sweep, optimize off. Pillow "
            f"{_pillow_version()}, libjpeg(-turbo) {_feature_version('jpg')}")

  def save_options(self, quality):
    return {"quality": int(quality), "subsampling": 2, "optimize": False}


class WebpCodec(PillowCodec):
  """Lossy WebP at Pillow's default method."""

  name = "webp"
  label = "WebP"
  format = "WEBP"
  default_qualities = (0, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90)

  @classmethod
  def unavailable_reason(cls):
    return _pillow_feature_missing("webp", "libwebp")

  @property
  def description(self):
    return (f"WebP lossy (4:2:0), quality sweep, method 4. Pillow "
            f"{_pillow_version()}, libwebp {_feature_version('webp')}")

  def save_options(self, quality):
    return {"quality": int(quality), "lossless": False}


class Jpeg2000Codec(PillowCodec):
  """JPEG 2000 (OpenJPEG), 9/7 wavelet + ICT, at a target bpp."""

  name = "jpeg2000"
  label = "JPEG 2000 (OpenJPEG)"
  format = "JPEG2000"
  default_qualities = (0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4,
                       0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0)

  @classmethod
  def unavailable_reason(cls):
    return _pillow_feature_missing("jpg_2000", "OpenJPEG")

  @property
  def description(self):
    return (f"JPEG 2000 codestream, 9/7 irreversible wavelet, YCbCr (mct=1), "
            f"one layer at a target bpp (quality = bpp). Pillow "
            f"{_pillow_version()}, OpenJPEG {_feature_version('jpg_2000')}")

  def save_options(self, quality):
    if quality <= 0:
      raise errors.InputError(f"jpeg2000 quality is a target bpp > 0, got "
                              f"{quality}")
    return {"quality_mode": "rates", "quality_layers": [24. / quality],
            "irreversible": True, "mct": 1, "no_jp2": True}


class AvifCodec(PillowCodec):
  """AVIF (AV1 intra), 4:4:4, through Pillow's libavif."""

  name = "avif"
  label = "AVIF (4:4:4)"
  format = "AVIF"
  default_qualities = (0, 5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80)
  install_hint = "Pillow >= 11.3 with AVIF support"

  @classmethod
  def unavailable_reason(cls):
    missing = _pillow_feature_missing("avif", "libavif")
    if missing:
      return f"{missing} (needs {cls.install_hint})"
    from PIL import _avif  # pylint: disable=g-import-not-at-top
    if not _avif.encoder_codec_available("aom"):
      return "Pillow's libavif has no libaom encoder"
    return None

  @property
  def description(self):
    return (f"AVIF (AV1 intra, libaom), 4:4:4 full range, speed 6, tune "
            f"psnr, quality sweep, 1 thread. Pillow {_pillow_version()}, "
            f"libavif {_feature_version('avif')}")

  def save_options(self, quality):
    return {"quality": int(quality), "subsampling": "4:4:4", "speed": 6,
            "max_threads": 1, "codec": "aom", "advanced": {"tune": "psnr"}}


def hevc_chroma_format(data):
  """chroma_format_idc (1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4) of a HEIF's hvcC.

  The HEVCDecoderConfigurationRecord (ISO/IEC 14496-15, 8.3.3.1) holds it in
  the low two bits of its 17th byte.
  """
  at = data.find(b"hvcC")
  if at < 0 or at + 4 + 16 >= len(data):
    raise errors.FormatError("no hvcC box in the HEIF file")
  return data[at + 4 + 16] & 3


class HevcCodec(Codec):
  """HEVC 4:4:4 intra (x265) in HEIF, through pillow-heif."""

  name = "hevc"
  label = "HEVC (4:4:4, x265)"
  default_qualities = (1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60)
  install_hint = "pip install pillow-heif"

  @classmethod
  def unavailable_reason(cls):
    try:
      import pillow_heif  # pylint: disable=g-import-not-at-top
    except ImportError:
      return f"pillow-heif is not installed ({cls.install_hint})"
    if not pillow_heif.libheif_info().get("encoders", {}).get("x265"):
      return "pillow-heif's libheif has no x265 encoder"
    return None

  @property
  def description(self):
    import pillow_heif  # pylint: disable=g-import-not-at-top
    info = pillow_heif.libheif_info()
    return (f"HEVC intra 4:4:4, YCbCr BT.601 full range (as BPG), in HEIF; "
            f"x265 preset slow, tune psnr, CRF (100 - quality) / 2; quality "
            f"sweep. pillow-heif {pillow_heif.__version__}, libheif "
            f"{info.get('libheif')}, {info.get('encoders', {}).get('x265')}")

  def compress(self, image, quality):
    import pillow_heif  # pylint: disable=g-import-not-at-top
    image = _check_image(image)
    heif = pillow_heif.from_bytes("RGB", (image.shape[1], image.shape[0]),
                                  image.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=int(quality), chroma=444,
              enc_params={"preset": "slow", "tune": "psnr"})
    data = buffer.getvalue()
    chroma = hevc_chroma_format(data)
    if chroma != 3:
      raise errors.FormatError(f"x265 wrote chroma_format_idc {chroma}, "
                               f"not 3 (4:4:4)")
    return data

  def decompress(self, data):
    import pillow_heif  # pylint: disable=g-import-not-at-top
    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    return np.asarray(heif.to_pillow().convert("RGB"))


class JpegXlCodec(PillowCodec):
  """JPEG XL (libjxl) through pillow-jxl-plugin."""

  name = "jpegxl"
  label = "JPEG XL"
  format = "JXL"
  default_qualities = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90)
  install_hint = "pip install pillow-jxl-plugin"

  @classmethod
  def unavailable_reason(cls):
    try:
      import pillow_jxl  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      return f"pillow-jxl-plugin is not installed ({cls.install_hint})"
    return None

  @property
  def description(self):
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    try:
      version = metadata.version("pillow-jxl-plugin")
    except metadata.PackageNotFoundError:
      version = "?"
    return (f"JPEG XL (libjxl, VarDCT), effort 7, quality sweep, 1 thread. "
            f"pillow-jxl-plugin {version}, Pillow {_pillow_version()}")

  def save_options(self, quality):
    import pillow_jxl  # pylint: disable=g-import-not-at-top,unused-import
    return {"quality": int(quality), "effort": 7, "num_threads": 1,
            "lossless": False}


STANDARD_CODECS = {cls.name: cls for cls in (
    JpegCodec, WebpCodec, Jpeg2000Codec, AvifCodec, HevcCodec, JpegXlCodec)}
"""The standard codecs by name."""


def unavailable_reason(name):
  """Why standard codec ``name`` cannot run here, or None if it can."""
  if name not in STANDARD_CODECS:
    raise errors.InputError(f"unknown codec {name!r}; choose from "
                            f"{', '.join(STANDARD_CODECS)}")
  return STANDARD_CODECS[name].unavailable_reason()


def get_codec(name, qualities=None):
  """A standard codec by name.

  Raises:
    InputError: for an unknown name.
    CodecUnavailableError: if its library is missing.
  """
  unavailable_reason(name)  # Validates the name.
  return STANDARD_CODECS[name](qualities)


class LearnedCodec(Codec):
  """A tfrnncomp SavedModel as a codec; the quality is the iteration count.

  For an akbari2020 model (Akbari et al. 2020, config.json "system"), the
  quality is B, the bits per code map channel (1 to 8), and each point is
  its own encode and decode; with ``enhancement_quality`` Q every point also
  carries the HEVC enhancement layer of quality Q (the codec is then named
  ``NAME+hevcQ``). For a recurrent model, ``search_steps`` N > 0 encodes
  with the code search (:mod:`tfrnncomp.code_search`; the codec is then
  named ``NAME+searchN``).
  """

  def __init__(self, saved_model_dir, qualities=None,
               enhancement_quality=None, search_steps=0):
    saved_model_dir = os.path.abspath(os.path.expanduser(saved_model_dir))
    config_path = os.path.join(saved_model_dir, "config.json")
    if not os.path.isfile(config_path):
      raise errors.ModelError(f"{saved_model_dir} is not a tfrnncomp "
                              f"SavedModel (no config.json)")
    with open(config_path) as f:
      self.config = json.load(f)
    identity_path = os.path.join(saved_model_dir, "model.json")
    self.identity = {}
    if os.path.isfile(identity_path):
      with open(identity_path) as f:
        self.identity = json.load(f)
    self.directory = saved_model_dir
    self.name = os.path.basename(saved_model_dir.rstrip(os.sep))
    self.label = f"tfrnncomp {self.config.get('name', self.name)}"
    self.variable_rate = self.config.get("system") == "akbari2020"
    self.enhancement_quality = enhancement_quality
    from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
    self.search_steps = cli.check_search_steps(search_steps)
    if self.search_steps:
      if self.variable_rate:
        raise errors.InputError(f"{self.name}: the code search is for "
                                f"recurrent models, not akbari2020")
      self.name = f"{self.name}+search{self.search_steps}"
      self.label += f" + code search ({self.search_steps} steps)"
    if enhancement_quality is not None:
      if not self.variable_rate:
        raise errors.InputError(f"{self.name}: an enhancement layer is for "
                                f"akbari2020 models")
      if int(enhancement_quality) != enhancement_quality or not (
          0 <= enhancement_quality <= 100):
        raise errors.InputError(f"enhancement quality must be an integer "
                                f"from 0 to 100, got {enhancement_quality}")
      self.enhancement_quality = int(enhancement_quality)
      self.name = f"{self.name}+hevc{self.enhancement_quality}"
      self.label += (f" + HEVC enhancement layer (quality "
                     f"{self.enhancement_quality})")
    if self.variable_rate:
      self.bits = None
      self.default_qualities = tuple(range(1, 9))
      super().__init__(qualities)
      for b in self.qualities:
        if int(b) != b or not 1 <= b <= 8:
          raise errors.InputError(f"{self.name}: bits per channel must be "
                                  f"integers from 1 to 8, got {b}")
      self._model = None
      return
    self.bits = int(self.config["bits"])
    self.default_qualities = tuple(
        range(1, int(self.config.get("iterations", 16)) + 1))
    super().__init__(qualities)
    for t in self.qualities:
      if int(t) != t or t < 1:
        raise errors.InputError(f"{self.name}: iterations must be positive "
                                f"integers, got {t}")
    self._model = None

  @property
  def model(self):
    """The loaded :class:`tfrnncomp.cli.SavedCodec` (loaded on first use)."""
    if self._model is None:
      from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
      self._model = cli.load_codec(self.directory)
    return self._model

  @property
  def description(self):
    weights = self.identity.get("weights_sha256", "?")[:16]
    if self.variable_rate:
      return (f"tfrnncomp SavedModel {self.name} (akbari2020, "
              f"{self.config.get('code_channels')} code map channels, weights "
              f"sha256 {weights}); quality = bits per channel B; bytes = the "
              f"bitstream tools/encoder.py --bits_per_channel=B writes (side "
              f"info and the range-coded code map, "
              + ("no enhancement layer" if self.enhancement_quality is None
                 else f"and the HEVC enhancement layer of quality "
                      f"{self.enhancement_quality}")
              + "), reconstructions decoded from those bytes")
    entropy = ("range-coded with its entropy model "
               f"{self.model.entropy.name}" if self.model.entropy is not None
               else "raw bits, no entropy model")
    return (f"tfrnncomp SavedModel {self.name} ({self.config.get('cell')}, "
            f"{self.bits} bits per 16x16 block and iteration, weights sha256 "
            f"{weights}); quality = iterations; bytes = the bitstream "
            f"tools/encoder.py writes ({entropy}"
            + (f"; codes searched, --search_steps={self.search_steps}"
               if self.search_steps else "")
            + "), reconstructions decoded "
            "from those bytes; one encode and one decode at the largest "
            "count give every point (a stream cut after t chunks is the "
            "stream of t iterations), their times apportioned t/T")

  def compress(self, image, quality):
    from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
    return cli.compress(self.model, _check_image(image), int(quality),
                        enhancement_quality=self.enhancement_quality,
                        search_steps=self.search_steps)

  def decompress(self, data):
    from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
    return cli.decompress(self.model, data).x_hat[-1]

  def sweep(self, image, qualities=None):
    """One encode at the largest iteration count and one decode of its bytes.

    The stream of t iterations is the first t chunks of that of T (the
    entropy model of iteration t sees only iterations <= t), so each point's
    bytes are exactly what ``tools/encoder.py --iteration t-1`` writes.
    (An akbari2020 model codes each quality on its own.)
    """
    if self.variable_rate:
      yield from super().sweep(image, qualities)
      return
    from tfrnncomp import cli  # pylint: disable=g-import-not-at-top
    image = _check_image(image)
    qualities = [int(t) for t in (self.qualities if qualities is None
                                  else qualities)]
    iterations = max(qualities)
    height, width = image.shape[:2]
    start = time.perf_counter()
    codes = self.model.encode(image, iterations,
                              search_steps=self.search_steps)
    chunks = cli.stream_chunks(self.model, codes)
    data = cli.write_stream(self.model, chunks, height, width)
    encoding_time = time.perf_counter() - start
    start = time.perf_counter()
    decoded = cli.decompress(self.model, data)
    decoding_time = time.perf_counter() - start
    if not np.array_equal(decoded.codes, codes):
      raise errors.ModelError(f"{self.name}: its bitstream did not decode to "
                              f"its codes")
    for t in qualities:
      size = len(cli.write_stream(self.model, chunks[:t], height, width))
      yield RatePoint(t, size, decoded.x_hat[t - 1],
                      encoding_time * t / iterations,
                      decoding_time * t / iterations)
