"""Rate-distortion curves, Bjontegaard rates and visual crops.

Curves come from our result JSONs (:mod:`tfrnncomp.evaluation`) and from the
published Kodak results copied under ``../shared/reference/kodak``, in their
three formats:

- ``tfc/{PSNR,MS-SSIM}_sRGB_RGB/NAME.txt`` (tensorflow/compression's
  ``results/image_compression/kodak``): ``#`` header lines, the first naming
  the system (``... for "Toderici 2017 (CVPR)" on kodak.``), then
  ``bpp, value`` rows averaged over the 24 images; MS-SSIM is linear;
- ``compressai/NAME.json``: CompressAI's layout (``name`` and ``results``
  with ``bpp``, ``psnr-rgb`` and ``ms-ssim-rgb`` lists);
- ``islam2021/test_SYSTEM_{psnr,ssim}.csv`` (K. Islam et al., "Image
  compression with recurrent neural network and generalized divisive
  normalization", CVPR workshops 2021, from
  github.com/khawar-islam/ImageCompression): one row per Kodak image, one
  column per iteration 1..16 of a Toderici-style network with 32 bits per
  16x16 block, i.e. nominal 0.125 t bpp (no entropy coding); ``ssim`` is
  MS-SSIM by the original ``msssim.py``. Averaged here over the images per
  column.

The Bjontegaard delta rate (G. Bjontegaard, "Calculation of average PSNR
differences between RD-curves", VCEG-M33, 2001) of a test curve against an
anchor fits log(rate) of each as a cubic polynomial of the quality, integrates
both over the quality range where the curves overlap, and returns
``exp(mean difference) - 1`` in percent: the average rate change at equal
quality (negative = fewer bits). For MS-SSIM the quality axis is in dB
(``-10 log10(1 - MS-SSIM)``).

Figures use Matplotlib's Agg backend (no display needed).
"""

import dataclasses
import glob
import json
import math
import os
import re
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfrnncomp import errors
from tfrnncomp import evaluation
from tfrnncomp import metrics

__all__ = ["Curve", "curve_from_result", "load_results", "load_tfc",
           "load_compressai", "load_islam2021", "load_references",
           "DEFAULT_REFERENCES", "BD_RATE_RANGE", "bd_rate", "span_points",
           "curve_bd_rate", "bd_rate_table",
           "quality_at", "rate_table",
           "plot_rd", "plot_crops", "crop_comparison", "write_report"]

DEFAULT_REFERENCES = ("tfc/toderici-2017-cvpr", "tfc/johnston-2017-cvpr",
                      "islam2021/gdn", "islam2021/lstm_jpeg_lstm",
                      "tfc/bpg444", "compressai/jpeg")
"""Published curves drawn by default: the recurrent codecs and two anchors."""

ISLAM2021_BPP_PER_ITERATION = 0.125
"""32 bits per 16x16 block and iteration (the paper's network)."""

_ISLAM2021_LABELS = {"gdn": "Islam 2021 (RNN + GDN)",
                     "lstm_jpeg_lstm": "Islam 2021 (LSTM baseline)"}


@dataclasses.dataclass
class Curve:
  """One codec's rate-distortion points.

  Attributes:
    key: identifier (``jpeg``, ``tfc/toderici-2017-cvpr``).
    label: display name.
    published: True for curves copied from papers or other projects.
    psnr: ``(bpp, PSNR dB)`` arrays, or None.
    ms_ssim: ``(bpp, MS-SSIM)`` arrays (linear), or None.
  """
  key: str
  label: str
  published: bool = False
  psnr: Optional[Tuple[np.ndarray, np.ndarray]] = None
  ms_ssim: Optional[Tuple[np.ndarray, np.ndarray]] = None

  def points(self, metric):
    """``(bpp, quality)`` for ``metric`` "psnr" or "ms_ssim_db", or None."""
    if metric == "psnr":
      return self.psnr
    if metric == "ms_ssim_db":
      if self.ms_ssim is None:
        return None
      bpp, value = self.ms_ssim
      return bpp, np.array([metrics.ms_ssim_db(v) for v in value])
    raise ValueError(f"unknown metric {metric!r}")


def _arrays(bpp, values):
  bpp, values = np.asarray(bpp, np.float64), np.asarray(values, np.float64)
  order = np.argsort(bpp, kind="stable")
  return bpp[order], values[order]


def curve_from_result(data, key, published=False, label=None):
  """A :class:`Curve` from a CompressAI-layout result dict."""
  results = data["results"]
  bpp = results["bpp"]
  curve = Curve(key=key, label=label or data.get("name", key),
                published=published)
  if "psnr-rgb" in results:
    curve.psnr = _arrays(bpp, results["psnr-rgb"])
  if "ms-ssim-rgb" in results:
    curve.ms_ssim = _arrays(bpp, results["ms-ssim-rgb"])
  return curve


def load_results(results_dir):
  """Our result JSONs in ``results_dir`` (``*.json``), keyed by file stem.

  A JSON object without a ``results`` key is another kind of record kept
  beside the curves (``benchmark.json``, ``entropy_coding.json``) and is
  skipped; one with ``results`` must be a valid result JSON.
  """
  curves = {}
  for path in sorted(glob.glob(os.path.join(results_dir, "*.json"))):
    key = os.path.splitext(os.path.basename(path))[0]
    try:
      with open(path) as f:
        data = json.load(f)
    except (OSError, ValueError):
      data = None  # read_json reports it.
    if isinstance(data, dict) and "results" not in data:
      continue
    curves[key] = curve_from_result(evaluation.read_json(path), key)
  return curves


def _read_tfc(path):
  label, rows = None, []
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if line.startswith("#"):
        match = re.search(r'for "(.*)" on', line)
        if match and label is None:
          label = match.group(1)
      elif line:
        rows.append([float(v) for v in line.split(",")[:2]])
  if not rows:
    raise errors.InputError(f"{path} holds no data rows")
  rows = np.array(rows)
  return label, _arrays(rows[:, 0], rows[:, 1])


def load_tfc(reference_dir):
  """tensorflow/compression's curves (``tfc/*_sRGB_RGB/*.txt``)."""
  curves = {}
  for folder, field in (("PSNR_sRGB_RGB", "psnr"),
                        ("MS-SSIM_sRGB_RGB", "ms_ssim")):
    for path in sorted(glob.glob(os.path.join(reference_dir, "tfc", folder,
                                              "*.txt"))):
      stem = os.path.splitext(os.path.basename(path))[0]
      label, points = _read_tfc(path)
      key = f"tfc/{stem}"
      curve = curves.setdefault(key, Curve(key=key, label=label or stem,
                                           published=True))
      setattr(curve, field, points)
  return curves


def load_compressai(reference_dir):
  """CompressAI's result JSONs (``compressai/*.json``)."""
  curves = {}
  for path in sorted(glob.glob(os.path.join(reference_dir, "compressai",
                                            "*.json"))):
    stem = os.path.splitext(os.path.basename(path))[0]
    data = evaluation.read_json(path)
    key = f"compressai/{stem}"
    curves[key] = curve_from_result(data, key, published=True,
                                    label=f"{data['name']} (CompressAI)")
  return curves


def _read_per_image_csv(path):
  rows = []
  with open(path) as f:
    for line in f:
      values = [v for v in line.replace(",", " ").split()]
      if values:
        rows.append([float(v) for v in values])
  if not rows or len({len(r) for r in rows}) != 1:
    raise errors.InputError(f"{path}: expected equal-length rows of numbers")
  return np.array(rows)


def load_islam2021(reference_dir):
  """Islam et al. 2021's per-image curves, averaged over the images."""
  curves = {}
  pattern = os.path.join(reference_dir, "islam2021", "test_*_psnr.csv")
  for psnr_path in sorted(glob.glob(pattern)):
    system = os.path.basename(psnr_path)[len("test_"):-len("_psnr.csv")]
    key = f"islam2021/{system}"
    curve = Curve(key=key, label=_ISLAM2021_LABELS.get(
        system, f"Islam 2021 ({system})"), published=True)
    psnr = _read_per_image_csv(psnr_path).mean(axis=0)
    bpp = ISLAM2021_BPP_PER_ITERATION * np.arange(1, psnr.size + 1)
    curve.psnr = (bpp, psnr)
    ssim_path = psnr_path[:-len("psnr.csv")] + "ssim.csv"
    if os.path.exists(ssim_path):
      ms_ssim = _read_per_image_csv(ssim_path).mean(axis=0)
      curve.ms_ssim = (ISLAM2021_BPP_PER_ITERATION *
                       np.arange(1, ms_ssim.size + 1), ms_ssim)
    curves[key] = curve
  return curves


def load_references(reference_dir, keys=None):
  """All published curves under ``reference_dir`` (or those in ``keys``)."""
  curves = {}
  for loader in (load_tfc, load_compressai, load_islam2021):
    curves.update(loader(reference_dir))
  if keys is not None:
    missing = [k for k in keys if k not in curves]
    if missing:
      raise errors.InputError(f"no reference curve {', '.join(missing)} in "
                              f"{reference_dir}")
    curves = {k: curves[k] for k in keys}
  return curves


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality):
  """Bjontegaard delta rate of a test curve against an anchor, in percent.

  Args:
    anchor_rate: the anchor's rates (bpp, > 0).
    anchor_quality: its qualities (PSNR or MS-SSIM in dB).
    test_rate: the test curve's rates.
    test_quality: its qualities.

  Returns:
    The average rate difference at equal quality in percent (-20 means the
    test curve needs 20% fewer bits), or NaN if the curves' quality ranges do
    not overlap or a curve has fewer than 2 points.
  """
  curves = []
  for rate, quality in ((anchor_rate, anchor_quality),
                        (test_rate, test_quality)):
    rate = np.asarray(rate, np.float64)
    quality = np.asarray(quality, np.float64)
    keep = (rate > 0) & np.isfinite(quality) & np.isfinite(rate)
    rate, quality = rate[keep], quality[keep]
    if np.unique(quality).size < 2:
      return math.nan
    degree = min(3, np.unique(quality).size - 1)
    curves.append((np.polyfit(quality, np.log(rate), degree),
                   quality.min(), quality.max()))
  low = max(curves[0][1], curves[1][1])
  high = min(curves[0][2], curves[1][2])
  if not high > low:
    return math.nan
  areas = []
  for coefficients, _, _ in curves:
    integral = np.polyint(coefficients)
    areas.append(np.polyval(integral, high) - np.polyval(integral, low))
  mean_log_ratio = (areas[1] - areas[0]) / (high - low)
  return float((math.exp(mean_log_ratio) - 1.) * 100.)


def span_points(rate, quality, rate_range):
  """The points of a curve that span ``rate_range = (low, high)`` bpp.

  Those inside the range and, on each side, the nearest one outside it (so
  that the fitted curve covers the range's ends); all points if
  ``rate_range`` is None.
  """
  rate, quality = np.asarray(rate), np.asarray(quality)
  if rate_range is None:
    return rate, quality
  low, high = rate_range
  order = np.argsort(rate)
  rate, quality = rate[order], quality[order]
  first = max(0, int(np.searchsorted(rate, low, side="right")) - 1)
  last = min(rate.size, int(np.searchsorted(rate, high, side="left")) + 1)
  return rate[first:last], quality[first:last]


BD_RATE_RANGE = (0.25, 1.0)
"""The rates (bpp) of the second BD-rate table of ``bd_rate.md``."""


def curve_bd_rate(anchor, test, metric, rate_range=None):
  """:func:`bd_rate` of two :class:`Curve` s for "psnr" or "ms_ssim_db".

  With ``rate_range = (low, high)``, each curve keeps only the points that
  span that range (:func:`span_points`), so the quality range compared is
  the one both codecs reach between those rates.
  """
  a, t = anchor.points(metric), test.points(metric)
  if a is None or t is None:
    return math.nan
  a = span_points(a[0], a[1], rate_range)
  t = span_points(t[0], t[1], rate_range)
  return bd_rate(a[0], a[1], t[0], t[1])


def bd_rate_table(curves: Sequence[Curve], anchors: Dict[str, Curve],
                  metric_names=(("psnr", "PSNR"), ("ms_ssim_db", "MS-SSIM")),
                  rate_range=None):
  """A Markdown table of BD-rates of ``curves`` against each anchor.

  Args:
    curves: the rows.
    anchors: column groups, by display name (e.g. ``{"JPEG": curve}``).
    metric_names: ``(metric, heading)`` pairs, the columns of each anchor.
    rate_range: optional ``(low, high)`` bpp: compare only the points that
      span it (:func:`curve_bd_rate`).

  Returns:
    The table as a string (one line per curve; "n/a" where the quality
    ranges do not overlap).
  """
  headings = [f"vs {name} ({heading})" for name in anchors
              for _, heading in metric_names]
  lines = ["| Codec | " + " | ".join(headings) + " |",
           "|---|" + "---:|" * len(headings)]
  for curve in curves:
    cells = []
    for anchor in anchors.values():
      for metric, _ in metric_names:
        value = (0. if anchor is curve else
                 curve_bd_rate(anchor, curve, metric, rate_range))
        cells.append("n/a" if math.isnan(value) else f"{value:+.1f}%")
    label = curve.label + (" (published)" if curve.published else "")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


_YLABELS = {"psnr": "PSNR (RGB) [dB]",
            "ms_ssim_db": "MS-SSIM (RGB) [dB], -10 log10(1 - MS-SSIM)"}


def plot_rd(curves: Sequence[Curve], metric, path, title=None, max_bpp=2.):
  """Writes a quality-vs-bpp PNG of ``curves`` ("psnr" or "ms_ssim_db").

  Measured curves are drawn solid with markers, published ones dashed.
  """
  plt = _pyplot()
  figure, axes = plt.subplots(figsize=(8, 6), dpi=120)
  low, high = math.inf, -math.inf
  for curve in curves:
    points = curve.points(metric)
    if points is None:
      continue
    bpp, quality = points
    style = (dict(linestyle="--", linewidth=1.2) if curve.published else
             dict(linestyle="-", marker="o", markersize=3, linewidth=1.6))
    label = curve.label + (" [published]" if curve.published else "")
    axes.plot(bpp, quality, label=label, **style)
    shown = quality[bpp <= max_bpp]
    if shown.size:
      low, high = min(low, shown.min()), max(high, shown.max())
  axes.set_xlim(0, max_bpp)
  if math.isfinite(low):
    margin = 0.03 * (high - low)
    axes.set_ylim(low - margin, high + margin)
  axes.set_xlabel("bits per pixel (bytes written x 8 / pixels)")
  axes.set_ylabel(_YLABELS[metric])
  if title:
    axes.set_title(title)
  axes.grid(True, alpha=0.3)
  axes.legend(fontsize=7, loc="lower right")
  figure.tight_layout()
  figure.savefig(path)
  plt.close(figure)


def plot_crops(original, panels, path, box, title=None, columns=4):
  """Writes a side-by-side PNG of crops of reconstructions.

  Args:
    original: the uint8 [H, W, 3] original (shown first).
    panels: a list of ``(caption, uint8 image)``.
    path: the PNG to write.
    box: ``(top, left, height, width)`` of the crop.
    title: figure title, or None.
    columns: panels per row.
  """
  plt = _pyplot()
  top, left, height, width = box
  images = [("original", original)] + list(panels)
  rows = -(-len(images) // columns)
  figure, axes = plt.subplots(rows, columns, dpi=100, squeeze=False,
                              figsize=(columns * width / 80,
                                       rows * (height / 80 + 0.5)))
  for ax in axes.flat:
    ax.axis("off")
  for ax, (caption, image) in zip(axes.flat, images):
    ax.imshow(image[top:top + height, left:left + width],
              interpolation="nearest")
    ax.set_title(caption, fontsize=8)
  if title:
    figure.suptitle(title, fontsize=10)
  figure.tight_layout()
  figure.savefig(path)
  plt.close(figure)


def crop_comparison(codecs, image, path, box, target_bpp=0.25, title=None):
  """Codes ``image`` near ``target_bpp`` with each codec; writes the crops.

  Each codec's sweep point closest to ``target_bpp`` is shown, captioned with
  its actual bpp and PSNR.

  Returns:
    The list of ``(codec name, bpp, PSNR)`` shown.
  """
  pixels = image.shape[0] * image.shape[1]
  panels, shown = [], []
  for codec in codecs:
    point = evaluation.closest_point(codec, image, target_bpp)
    bpp = point.num_bytes * 8 / pixels
    value = metrics.psnr(image, point.x_hat)
    panels.append((f"{codec.label}\n{bpp:.3f} bpp, {value:.2f} dB",
                   point.x_hat))
    shown.append((codec.name, bpp, value))
  plot_crops(image, panels, path, box, title=title)
  return shown


def quality_at(curve, metric, bpp):
  """``curve``'s quality at ``bpp``, interpolated linearly in log(bpp).

  ``metric`` is "psnr" or "ms_ssim" (linear). None outside the measured
  rates (no extrapolation) or if the curve lacks the metric.
  """
  points = curve.psnr if metric == "psnr" else curve.ms_ssim
  if points is None:
    return None
  rates, values = points
  if not rates[0] <= bpp <= rates[-1]:
    return None
  return float(np.interp(np.log(bpp), np.log(rates), values))


def rate_table(curves: Sequence[Curve], rates=(0.125, 0.25, 0.5, 1.0, 2.0)):
  """Markdown table of PSNR (dB) and MS-SSIM of each curve at ``rates``.

  Values are interpolated linearly in log(bpp) between measured points
  (:func:`quality_at`); "-" where a curve does not cover a rate.
  """
  lines = ["| Codec | " + " | ".join(f"PSNR @{r:g}" for r in rates) + " | "
           + " | ".join(f"MS-SSIM @{r:g}" for r in rates) + " |",
           "|---|" + "---:|" * (2 * len(rates))]
  for curve in curves:
    cells = []
    for metric, fmt in (("psnr", "{:.2f}"), ("ms_ssim", "{:.4f}")):
      for r in rates:
        value = quality_at(curve, metric, r)
        cells.append("-" if value is None else fmt.format(value))
    label = curve.label + (" (published)" if curve.published else "")
    lines.append(f"| {label} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_report(results_dir, reference_dir=None, output_dir=None,
                 references=DEFAULT_REFERENCES, dataset="kodak"):
  """Writes ``psnr.png``, ``ms_ssim.png`` and ``bd_rate.md``.

  Args:
    results_dir: folder of our result JSONs.
    reference_dir: folder of published results (see the module docstring),
      or None for none.
    output_dir: where to write (``results_dir`` if None).
    references: keys of the published curves to include (all if None).
    dataset: name used in titles.

  Returns:
    The paths written.
  """
  output_dir = output_dir or results_dir
  measured = load_results(results_dir)
  if not measured:
    raise errors.InputError(f"no result JSON in {results_dir}")
  published = {}
  if reference_dir:
    published = load_references(reference_dir, references)
  curves = list(measured.values()) + list(published.values())
  os.makedirs(output_dir, exist_ok=True)
  paths = []
  for metric, name in (("psnr", "PSNR"), ("ms_ssim_db", "MS-SSIM")):
    path = os.path.join(output_dir, f"{metric.replace('_db', '')}.png")
    plot_rd(curves, metric, path, title=f"{name} on {dataset}")
    paths.append(path)

  anchors = {label: measured[key] for key, label in (("jpeg", "JPEG"),
                                                     ("hevc", "HEVC"))
             if key in measured}
  lines = [f"# BD-rate on {dataset}", "",
           "Bjontegaard delta rate (VCEG-M33: cubic fit of log rate against "
           "quality, averaged over the overlapping quality range) of each "
           "codec against our measured JPEG 4:2:0 and HEVC 4:4:4 anchors. "
           "Negative: fewer bits than the anchor at equal quality. MS-SSIM "
           "is on RGB, in dB. Our bpp counts the bytes actually written. "
           "Published curves are their authors' measurements: Toderici 2017 "
           "and Islam 2021 at nominal rates (t/8 bpp after t iterations, no "
           "entropy coding), Johnston 2018 with entropy coding and spatially "
           "adaptive rates.", ""]
  if anchors:
    lines.append(bd_rate_table(curves, anchors))
    low, high = BD_RATE_RANGE
    lines += [f"## Over {low:g}-{high:g} bpp", "",
              f"The same, each curve keeping only the points that span "
              f"{low:g}-{high:g} bpp (those inside and the nearest one on "
              f"either side; `plotting.span_points`): the range of the "
              f"quality targets.", "",
              bd_rate_table(curves, anchors, rate_range=BD_RATE_RANGE)]
  else:
    lines.append("No JPEG or HEVC result to use as an anchor.\n")
  path = os.path.join(output_dir, "bd_rate.md")
  evaluation.write_atomic_text(path, "\n".join(lines))
  paths.append(path)
  table = [f"# Quality at fixed rates on {dataset}", "",
           "PSNR (dB) and MS-SSIM (RGB, linear) averaged per image, "
           "interpolated linearly in log(bpp) between each codec's measured "
           "points ('-': outside them). Our bpp counts the bytes actually "
           "written; the published Toderici 2017 and Islam 2021 curves are at "
           "nominal rates.", "", rate_table(curves)]
  path = os.path.join(output_dir, "rates.md")
  evaluation.write_atomic_text(path, "\n".join(table))
  paths.append(path)
  return paths
