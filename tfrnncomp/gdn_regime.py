"""How nonlinear the GDN and IGDN layers of a trained model are on real data.

A GDN layer (Ballé et al., ICLR 2016 / 2017; :class:`tfrnncomp.layers.GDN`)
computes, over the channels j of a pixel,

    GDN:   y_i = x_i / (beta_i + sum_j gamma_ji |x_j|^alpha)^epsilon
    IGDN:  y_i = x_i * (beta_i + sum_j gamma_ji |x_j|^alpha)^epsilon

Where the pool ``beta_i + sum_j gamma_ji |x_j|^alpha`` stays close to beta_i,
the layer is the fixed per-channel scale ``beta_i^(-/+epsilon)``: linear.
Its *gain relative to linear* is

    g_i = (pool_i / beta_i)^epsilon  >= 1,

the factor by which it divides (GDN) or multiplies (IGDN) x_i beyond that
scale. A network of convolutions whose GDNs all have g close to 1 is a linear
transform, and can code no better than the best linear block transform of
its size (for Akbari et al. 2020's code map of 8 channels per 16x16 block:
8 principal components). :func:`measure` runs a model on images and gives,
for every GDN layer, the distribution of g over all pixels, channels and
calls (a recurrent codec calls its GDN blocks once per iteration).

``tools/inspect_gdn.py`` prints it for a SavedModel. The README's "Trained
GDN models" section gives the shipped models' numbers.
"""

import contextlib
import dataclasses
import itertools

import numpy as np
import tensorflow as tf

from tfrnncomp import layers
from tfrnncomp.models.toderici2017 import to_float

__all__ = ["LayerRegime", "LINEAR_TOLERANCE", "gdn_layers", "measure",
           "record", "format_table"]

LINEAR_TOLERANCE = 1.05
"""g at or below this counts as linear (within 5% of the fixed scale)."""

_LOG_BINS = np.linspace(0., 8., 8001)
"""Histogram bin edges of log10(g): 0.001 apart (0.23% of g), up to g = 1e8."""


@dataclasses.dataclass(frozen=True)
class LayerRegime:
  """The gain relative to linear, g, of one GDN layer over the measured data.

  Attributes:
    name: the layer's path in the model (``decoder/stage2_resigdn/igdn1``).
    inverse: IGDN rather than GDN.
    calls: how many times the model called the layer.
    values: how many values of g were measured (elements of its inputs).
    median: median of g (the lower edge of its histogram bin, 0.23% wide).
    p99: 99th percentile of g (likewise).
    maximum: largest g (exact).
    linear_share: share of values with g <= LINEAR_TOLERANCE.
  """
  name: str
  inverse: bool
  calls: int
  values: int
  median: float
  p99: float
  maximum: float
  linear_share: float

  @property
  def is_linear(self):
    """True if the median value of g is within LINEAR_TOLERANCE."""
    return self.median <= LINEAR_TOLERANCE


def _layer_path(model, layer):
  """The layer's path below the model, from its variables' names."""
  name = layer.reparam_beta.name.split(":")[0].rsplit("/", 1)[0]
  prefix = model.name + "/"
  return name[len(prefix):] if name.startswith(prefix) else name


def gdn_layers(model):
  """{path: layer} of every built GDN / IGDN layer of ``model``, sorted."""
  found = {}
  for module in model.submodules:
    if isinstance(module, layers.GDN) and module.built:
      found[_layer_path(model, module)] = module
  return dict(sorted(found.items()))


class _Accumulator:
  """Histogram of log10(g) and exact counts of one layer."""

  def __init__(self, layer):
    self.layer = layer
    self.calls = 0
    self.counts = np.zeros(len(_LOG_BINS) - 1, np.int64)
    self.values = 0
    self.linear = 0
    self.maximum = 1.
    self.first_call = None

  def add(self, inputs):
    layer = self.layer
    inputs = tf.convert_to_tensor(inputs, dtype=layer.compute_dtype)
    if layer.rectify:
      inputs = tf.nn.relu(inputs)
    pool = tf.cast(layer.norm_pool(inputs), tf.float64)
    beta = tf.cast(layer.beta_parameter(layer.compute_dtype), tf.float64)
    # pool >= beta (gamma >= 0); the max guards against rounding.
    ratio = np.maximum((pool / beta).numpy(), 1.).ravel()
    gain = ratio ** layer.epsilon_value
    self.calls += 1
    self.values += gain.size
    self.linear += int(np.count_nonzero(gain <= LINEAR_TOLERANCE))
    self.maximum = max(self.maximum, float(gain.max()))
    log_gain = np.clip(np.log10(gain), _LOG_BINS[0], _LOG_BINS[-1])
    self.counts += np.histogram(log_gain, _LOG_BINS)[0]

  def quantile(self, q):
    cumulative = np.cumsum(self.counts)
    index = int(np.searchsorted(cumulative, q * cumulative[-1]))
    return float(10. ** _LOG_BINS[min(index, len(_LOG_BINS) - 2)])

  def result(self, name):
    if not self.values:
      raise ValueError(f"GDN layer {name} was not called")
    return LayerRegime(
        name=name, inverse=bool(self.layer.inverse), calls=self.calls,
        values=self.values, median=self.quantile(.5),
        p99=self.quantile(.99), maximum=self.maximum,
        linear_share=self.linear / self.values)


@contextlib.contextmanager
def record(model):
  """Within the block, eager calls of ``model`` are measured; yields a list.

  On leaving the block the list holds one :class:`LayerRegime` per GDN layer
  of ``model``, in the order of their first calls (raises ValueError if one
  was never called). Each layer's ``call`` is wrapped on the instance (not the
  class) and restored on exit. The model must run eagerly (not inside a
  ``tf.function``), since the measurement reads values.
  """
  found = gdn_layers(model)
  if not found:
    raise ValueError(f"model {model.name!r} has no built GDN layers")
  accumulators = {}
  order = itertools.count()
  for name, layer in found.items():
    accumulator = accumulators[name] = _Accumulator(layer)

    def wrapped(inputs, *args, _call=layer.call, _acc=accumulator, **kwargs):
      if not tf.executing_eagerly():
        raise RuntimeError("gdn_regime.record needs eager execution")
      if _acc.first_call is None:
        _acc.first_call = next(order)
      _acc.add(inputs)
      return _call(inputs, *args, **kwargs)

    layer.call = wrapped
  results = []
  try:
    yield results
  finally:
    for layer in found.values():
      del layer.call  # the instance attribute; the class's method is back
  results.extend(acc.result(name) for name, acc in sorted(
      accumulators.items(),
      key=lambda item: (item[1].first_call is None, item[1].first_call or 0)))


def measure(model, images, **call_kwargs):
  """Runs ``model(x, **call_kwargs)`` on each image; returns LayerRegimes.

  Args:
    model: a codec of :mod:`tfrnncomp.models` (or any Keras model holding
      :class:`tfrnncomp.layers.GDN` layers).
    images: iterable of uint8 arrays [H, W, 3], H and W multiples of 16.
    **call_kwargs: e.g. ``bits=(8,)`` (Akbari 2020) or ``iterations=16``.
  """
  with record(model) as results:
    for image in images:
      model(to_float(image[None]), training=False, **call_kwargs)
  return results


def format_table(results):
  """A Markdown table of :func:`measure`'s results."""
  lines = ["| layer | kind | median g | 99th pct g | max g | share g <= "
           f"{LINEAR_TOLERANCE:g} |", "|---|---|---|---|---|---|"]
  for r in results:
    lines.append(f"| {r.name} | {'IGDN' if r.inverse else 'GDN'} | "
                 f"{r.median:.3f} | {r.p99:.3f} | {r.maximum:.3f} | "
                 f"{100 * r.linear_share:.1f}% |")
  linear = sum(r.is_linear for r in results)
  lines.append("")
  lines.append(f"{linear} of {len(results)} layers are linear at the median "
               f"(median g <= {LINEAR_TOLERANCE:g}).")
  return "\n".join(lines)
