"""Tests of the Islam 2021 codec: the Toderici network with GDN blocks."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

from tfrnncomp import config
from tfrnncomp import export
from tfrnncomp import layers
from tfrnncomp import models
from tfrnncomp import testing
from tfrnncomp import training
from tfrnncomp.models import toderici2017


def _image(height, width, seed=0):
  rng = np.random.default_rng(seed)
  return tf.constant(rng.integers(0, 256, [1, height, width, 3]), tf.uint8)


def _perturb_gdn(model, seed=0):
  """Moves every GDN parameter away from its initial value."""
  rng = np.random.default_rng(seed)
  for v in model.variables:
    if "reparam_" in v.name:
      v.assign(v + rng.uniform(0., .3, v.shape).astype(np.float32))


@pytest.fixture(scope="module")
def islam():
  tf.random.set_seed(2)
  model = models.build_model(config.get_preset("islam2021_tiny"))
  _perturb_gdn(model)
  return model


def test_gdn_and_igdn_blocks_are_in_the_codec(islam):
  assert islam.config.system == "islam2021"
  assert isinstance(islam.encoder.gdn, layers.GDN)
  assert isinstance(islam.encoder.gdn, tfc.GDN)
  assert not islam.encoder.gdn.inverse
  assert islam.decoder.igdn.inverse
  gdn = {v.name.split("/", 1)[1]: tuple(v.shape) for v in islam.variables
         if "reparam_" in v.name}
  e, d = islam.config.scaled(64), islam.config.scaled(512)
  assert gdn == {"encoder/gdn/reparam_beta:0": (e,),
                 "encoder/gdn/reparam_gamma:0": (e, e),
                 "decoder/igdn/reparam_beta:0": (d,),
                 "decoder/igdn/reparam_gamma:0": (d, d)}
  # The encoder applies GDN right after E-Conv, the decoder IGDN after D-Conv.
  x = toderici2017.to_float(_image(32, 32))
  states = islam.encoder.zero_state(1, 32, 32)
  y = islam.encoder.gdn(islam.encoder.conv(x))
  for rnn, state in zip(islam.encoder.rnns, states):
    y, _ = rnn(y, state)
  np.testing.assert_array_equal(islam.encoder(x, states)[0].numpy(), y.numpy())
  codes = tf.sign(y[..., :8])
  states = islam.decoder.zero_state(1, 2, 2)
  z = islam.decoder.igdn(islam.decoder.conv(codes))
  for rnn, state in zip(islam.decoder.rnns, states):
    z = tf.nn.depth_to_space(rnn(z, state)[0], 2)
  np.testing.assert_array_equal(islam.decoder(codes, states)[0].numpy(),
                                islam.decoder.to_rgb(z).numpy())


def test_the_toderici_variable_layout_is_unchanged():
  """Without GDN there are no new variables (checkpoints still restore)."""
  plain = models.build_model(config.resolve(
      "islam2021_tiny", {"analysis": "conv"}))
  gdn = models.build_model(config.get_preset("islam2021_tiny"))
  assert plain.encoder.gdn is None and plain.decoder.igdn is None
  assert plain.config.system == "toderici2017"
  plain_names = [v.name.split("/", 1)[1] for v in plain.variables]
  gdn_names = [v.name.split("/", 1)[1] for v in gdn.variables
               if "reparam_" not in v.name]
  assert plain_names == gdn_names
  assert len(gdn.variables) == len(plain.variables) + 4


@pytest.mark.parametrize("height,width", [(1, 1), (17, 33)])
def test_encode_decode_shapes(islam, height, width):
  codes = islam.encode(_image(height, width), 2)
  assert codes.shape == (2, 1, -(-height // 16), -(-width // 16), 8)
  assert set(np.unique(codes.numpy())) <= {-1, 1}
  assert islam.decode(codes, height, width).shape == (2, 1, height, width, 3)


def test_gradients_reach_every_weight_including_gdn(islam):
  x = toderici2017.to_float(_image(32, 32, seed=1))
  with tf.GradientTape() as tape:
    _, x_hats = islam(x, iterations=2, training=True)
    loss = tf.reduce_mean(tf.abs(x[None] - x_hats))
  grads = tape.gradient(loss, islam.trainable_variables)
  names = []
  for var, grad in zip(islam.trainable_variables, grads):
    assert grad is not None, var.name
    assert np.all(np.isfinite(grad.numpy())), var.name
    assert float(tf.reduce_sum(tf.abs(grad))) > 0, var.name
    names.append(var.name)
  assert sum("reparam_" in n for n in names) == 4


def test_checkpoint_round_trip_keeps_gdn_weights(islam, tmp_path):
  prefix = tf.train.Checkpoint(model=islam).save(str(tmp_path / "ckpt"))
  fresh = models.build_model(islam.config)
  assert export.weights_hash(fresh.variables) != export.weights_hash(
      islam.variables)
  tf.train.Checkpoint(model=fresh).restore(prefix).assert_consumed()
  for a, b in zip(islam.variables, fresh.variables):
    assert a.name == b.name
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  saved = dict(tf.train.list_variables(prefix))
  assert "model/encoder/gdn/reparam_gamma/.ATTRIBUTES/VARIABLE_VALUE" in saved
  image = _image(32, 48, seed=4)
  np.testing.assert_array_equal(fresh.encode(image, 3).numpy(),
                                islam.encode(image, 3).numpy())


def test_export_reloads_bit_exact_in_a_tensorflow_only_process(islam,
                                                                tmp_path):
  directory = str(tmp_path / "islam")
  export.export(islam, directory)
  assert export.load_config(directory) == islam.config
  rng = np.random.default_rng(5)
  image = rng.integers(0, 256, [37, 50, 3]).astype(np.uint8)
  np.save(tmp_path / "image.npy", image)
  script = textwrap.dedent(f"""
      import numpy as np
      import tensorflow as tf
      loaded = tf.saved_model.load({directory!r})
      image = tf.constant(np.load({str(tmp_path / "image.npy")!r}))
      codes = loaded.signatures["encode"](
          image=image, iterations=tf.constant(3))["codes"]
      x_hat = loaded.signatures["decode"](
          codes=codes, height=tf.constant(37), width=tf.constant(50))["x_hat"]
      np.savez({str(tmp_path / "out.npz")!r}, codes=codes.numpy(),
               x_hat=x_hat.numpy())
      """) + testing.plain_tensorflow_check(directory)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run([sys.executable, "-c", script], env=env,
                          capture_output=True, text=True, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / "out.npz")
  module = export.CodecModule(islam)
  codes = module.encode(image=tf.constant(image), iterations=3)["codes"]
  x_hat = module.decode(codes=codes, height=37, width=50)["x_hat"]
  np.testing.assert_array_equal(out["codes"], codes.numpy())
  np.testing.assert_array_equal(out["x_hat"], x_hat.numpy())
  # The graph functions agree with eager execution too.
  eager_codes = islam.encode(tf.constant(image)[None], 3)[:, 0]
  np.testing.assert_array_equal(out["codes"], eager_codes.numpy())


def test_training_runs_in_graph_mode_and_the_loss_falls(tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  yy, xx = np.mgrid[:64, :64] / 64.
  for i in range(3):
    image = np.stack([np.sin(5 * yy + i), np.cos(4 * xx - i),
                      np.sin(3 * (xx + yy) + 2 * i)], -1)
    tf.keras.utils.save_img(str(images / f"{i}.png"),
                            ((image + 1) * 127.5).astype(np.uint8),
                            scale=False)
  lines = []
  tf.random.set_seed(3)
  tc = training.TrainConfig(steps=200, batch_size=8, patch_size=32,
                            iterations=2, learning_rate=5e-3, warmup_steps=10,
                            log_every=50)
  model, per_iteration = training.train(
      config.get_preset("islam2021_tiny"), tc, str(images),
      str(tmp_path / "run"), log=lines.append)
  loss = [float(line.split("loss ")[1].split()[0]) for line in lines]
  assert len(loss) == 4 and loss[-1] < .8 * loss[0], lines
  assert per_iteration.shape == (2, 2)  # L1 and MS-SSIM per iteration.
  # The trained GDN parameters are in the checkpoint.
  saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(
      str(tmp_path / "run")))
  np.testing.assert_array_equal(
      saved.get_tensor(
          "model/decoder/igdn/reparam_gamma/.ATTRIBUTES/VARIABLE_VALUE"),
      model.decoder.igdn.reparam_gamma.numpy())
