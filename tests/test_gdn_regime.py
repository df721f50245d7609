"""Tests of tfrnncomp/gdn_regime.py and tools/inspect_gdn.py."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfrnncomp import config
from tfrnncomp import gdn_regime
from tfrnncomp import layers
from tfrnncomp import models
from tfrnncomp import testing


class _ConvGDN(tf.keras.Model):
  """conv -> GDN -> conv -> IGDN, called as the codecs are."""

  def __init__(self):
    super().__init__(name="net")
    self.conv1 = tf.keras.layers.Conv2D(4, 3, padding="same", name="conv1")
    self.gdn = layers.GDN(name="gdn")
    self.conv2 = tf.keras.layers.Conv2D(4, 3, padding="same", name="conv2")
    self.igdn = layers.GDN(inverse=True, name="igdn")

  def call(self, x, training=False):
    return self.igdn(self.conv2(self.gdn(self.conv1(x))))


def _net(seed=0):
  tf.keras.utils.set_random_seed(seed)
  net = _ConvGDN()
  net(tf.zeros([1, 16, 16, 3]))
  return net


def _images(count=2, size=32):
  return list(testing.photo_crops(count, size))


def _expected_gains(layer, inputs):
  """g = ((beta + gamma x^2) / beta)^(1/2), in float64 numpy."""
  xs = inputs.numpy().astype(np.float64)
  beta, gamma = layer.beta.numpy(), layer.gamma.numpy()
  pool = beta + np.einsum("...j,ji->...i", xs ** 2, gamma)
  return np.sqrt(pool / beta).ravel()


def test_zero_gamma_is_linear():
  net = _net()
  for layer in (net.gdn, net.igdn):
    layer.reparam_gamma.assign(tf.zeros_like(layer.reparam_gamma))
  results = gdn_regime.measure(net, _images())
  assert [r.name for r in results] == ["gdn", "igdn"]
  for r in results:
    assert r.median == r.p99 == r.maximum == 1.
    assert r.linear_share == 1. and r.is_linear
    assert r.calls == 2 and r.values == 2 * 32 * 32 * 4


def test_gains_match_the_equation():
  net = _net()
  # Large gamma: the GDN is far from linear on these inputs.
  net.gdn.reparam_gamma.assign(tf.fill(net.gdn.reparam_gamma.shape, 10.))
  images = _images(1)
  x = tf.cast(images[0][None], tf.float32) / 255. - .5
  gains = _expected_gains(net.gdn, net.conv1(x))
  (gdn, igdn), = [gdn_regime.measure(net, images)]
  assert gdn.maximum == pytest.approx(gains.max(), rel=1e-5)
  # Quantiles: the lower edge of a histogram bin 0.23% wide.
  for measured, q in ((gdn.median, 50), (gdn.p99, 99)):
    assert np.percentile(gains, q) / 1.0024 <= measured <= (
        np.percentile(gains, q) * 1.0001)
  assert gdn.linear_share == pytest.approx(
      np.mean(gains <= gdn_regime.LINEAR_TOLERANCE))
  assert not gdn.is_linear and gdn.median > gdn_regime.LINEAR_TOLERANCE
  assert igdn.inverse and not gdn.inverse


def test_recording_leaves_outputs_and_layers_unchanged():
  net = _net()
  x = tf.cast(_images(1)[0][None], tf.float32) / 255. - .5
  before = net(x).numpy()
  with gdn_regime.record(net) as results:
    during = net(x).numpy()
    assert results == []
  after = net(x).numpy()
  np.testing.assert_array_equal(before, during)
  np.testing.assert_array_equal(before, after)
  assert "call" not in vars(net.gdn) and "call" not in vars(net.igdn)
  assert len(results) == 2


def test_errors():
  with pytest.raises(ValueError, match="no built GDN layers"):
    gdn_regime.measure(tf.keras.Sequential([tf.keras.layers.Dense(2)]), [])
  net = _net()
  with pytest.raises(ValueError, match="was not called"):
    gdn_regime.measure(net, [])
  with pytest.raises(RuntimeError, match="eager"):
    with gdn_regime.record(net):
      tf.function(net)(tf.zeros([1, 16, 16, 3]))
  assert "call" not in vars(net.gdn)


def test_akbari_layers_in_call_order():
  tf.keras.utils.set_random_seed(0)
  model = models.build_model(config.get_preset("akbari2020_tiny"))
  results = gdn_regime.measure(model, _images(1), bits=(4,))
  names = [r.name for r in results]
  assert len(names) == len(set(names)) == 21  # 11 GDNs, 10 IGDNs
  assert names[0] == "encoder/stage1_gdn"
  assert names[10] == "encoder/stage5_gdn"
  assert names[-1] == "decoder/stage4_igdn"
  assert [r.inverse for r in results] == [False] * 11 + [True] * 10
  assert all(r.calls == 1 for r in results)


def test_islam_blocks_are_measured_once_per_iteration():
  tf.keras.utils.set_random_seed(0)
  model = models.build_model(config.get_preset("islam2021_tiny"))
  results = gdn_regime.measure(model, _images(1), iterations=3)
  assert [(r.name, r.calls) for r in results] == [("encoder/gdn", 3),
                                                  ("decoder/igdn", 3)]


def test_tool(run_tool, akbari_tiny_model_dir, tiny_model_dir, tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  for i, crop in enumerate(testing.photo_crops(2, 40)):
    Image.fromarray(crop).save(images / f"im{i}.png")
  output = tmp_path / "gdn.json"
  status, out, _ = run_tool("inspect_gdn", f"--model={akbari_tiny_model_dir}",
                            f"--images_dir={images}", "--bits_per_channel=2",
                            f"--output_json={output}")
  assert status == 0, out
  assert "| encoder/stage1_gdn | GDN |" in out
  assert "layers are linear at the median" in out
  written = json.loads(output.read_text())
  assert written["images"] == ["im0.png", "im1.png"]
  assert len(written["layers"]) == 21
  # 40 x 40 crops are cut to 32 x 32 (multiples of 16): 32 * 32 * 3 inputs
  # of the first GDN, at half resolution and 'filters' channels.
  first = written["layers"][0]
  assert first["calls"] == 2 and first["values"] % (16 * 16) == 0
  status, _, err = run_tool("inspect_gdn", f"--model={tiny_model_dir}",
                            f"--images_dir={images}")
  assert status == 1 and "has no GDN layers" in err
  assert "Traceback" not in err
  status, _, err = run_tool("inspect_gdn", f"--model={tmp_path}",
                            f"--images_dir={images}")
  assert status == 1 and "config.json" in err
  status, _, err = run_tool("inspect_gdn", "--images=0")
  assert status == 2 and "--images" in err
