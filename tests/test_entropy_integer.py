"""The entropy model's integer coding path (tfrnncomp/entropy/integer.py).

It must follow the float network closely (so the files stay as small), and
compute exactly the same logits whatever kernels the machine runs: here, in
another process with oneDNN switched on or off (different convolution
kernels and summation orders, as on another CPU).
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp.entropy import integer
from tfrnncomp.entropy import pixelrnn
from tfrnncomp.entropy import saved_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BITS = 8
CONFIG = pixelrnn.EntropyConfig(bits=BITS, filters=2 * BITS)
IDENTITY = {"name": "fake_codec", "weights_sha256": "00" * 32}


def _random_model(seed, stddev=0.3):
  tf.random.set_seed(seed)
  model = pixelrnn.BinaryPixelRNN(CONFIG).build_variables()
  for v in model.variables:
    v.assign(tf.random.normal(v.shape, stddev=stddev))
  return model


def _random_codes(shape, seed):
  rng = np.random.default_rng(seed)
  return rng.choice(np.array([-1, 1], np.int8), size=shape + (BITS,))


def _coding_path_logits(model, codes):
  """Logits [T, h, w, K] through the coding interface, position by position."""
  codes = codes.astype(np.float32)
  t_count, rows, columns, _ = codes.shape
  r = model.config.radius
  out = np.zeros(codes.shape, np.float64)
  for t in range(t_count):
    recent = np.stack([codes[t - s] if t >= s else np.zeros_like(codes[0])
                       for s in range(1, CONFIG.history + 1)])
    mean = (codes[:t].sum(axis=0) / max(t, 1)).astype(np.float32)
    progressive = model.progressive_context(recent, mean, t)
    state = model.zero_row_state(columns)
    padded = np.pad(codes[t], [[r, 0], [r, r], [0, 0]])
    for i in range(rows):
      context, state = model.row_context(padded[i:i + r], state,
                                         progressive[i])
      for j in range(columns):
        left = np.pad(codes[t, i], [[r, 0], [0, 0]])[j:j + r].reshape(1, -1)
        out[t, i, j] = model.position_logits(context[j][None], left)[0]
  return out


def test_integer_path_follows_the_float_network_on_a_fixed_grid():
  model = _random_model(3)
  exact = integer.IntegerPixelRNN(model)
  codes = _random_codes((3, 4, 5), seed=4)
  expected = model(codes[:, None].astype(np.float32)).numpy()[:, 0]
  logits = _coding_path_logits(exact, codes)
  # Multiples of 2^-A: the bins (floor(16 l)) are exact.
  scaled = logits * 2 ** integer.ACTIVATION_BITS
  np.testing.assert_array_equal(scaled, np.round(scaled))
  assert np.abs(expected).mean() > 0.5  # A network with something to say.
  error = np.abs(logits - expected)
  assert error.max() < 0.02 and error.mean() < 0.003, (error.max(),
                                                         error.mean())


def test_integer_weights_fit_their_bounds():
  model = _random_model(5, stddev=2.)
  exact = integer.IntegerPixelRNN(model)
  for layer in (exact.above, exact.left, exact.lstm_input, exact.lstm_state,
                exact.from_state, exact.progressive, exact.progressive_out,
                exact.hidden, exact.out):
    kernel = layer.kernel.numpy()
    assert np.abs(kernel).max() <= 2 ** integer.WEIGHT_BITS
    assert np.abs(kernel).max() > 2 ** (integer.WEIGHT_BITS - 1)
    np.testing.assert_array_equal(kernel, np.round(kernel))
  table = exact.tanh_table.numpy()
  assert table.shape == (2 * integer.TABLE_RANGE << integer.TABLE_BITS,)
  assert (np.diff(table) >= 0).all()
  assert table[0] == -table[-1] == -(1 << integer.ACTIVATION_BITS)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  model = _random_model(7)
  codec_dir = tmp_path_factory.mktemp("codec")
  info = saved_model.save(model, str(codec_dir), IDENTITY)
  assert info["arithmetic"] == integer.arithmetic_info()
  return saved_model.entropy_directory(str(codec_dir))


@pytest.mark.parametrize("onednn", ["0", "1"])
def test_other_kernels_code_and_decode_the_same_bytes(tmp_path, saved, onednn):
  coder = saved_model.load(saved)
  codes = _random_codes((3, 10, 13), seed=8)
  chunks = coder.compress(codes)
  np.testing.assert_array_equal(coder.decompress(chunks, 10, 13), codes)
  np.save(tmp_path / "codes.npy", codes)
  np.save(tmp_path / "chunks.npy", np.array(chunks, dtype=object),
          allow_pickle=True)
  script = textwrap.dedent(f"""
      import sys, numpy as np
      sys.path.insert(0, {ROOT!r})
      from tfrnncomp.entropy import saved_model
      coder = saved_model.load({saved!r})
      codes = np.load({str(tmp_path / "codes.npy")!r})
      chunks = np.load({str(tmp_path / "chunks.npy")!r}, allow_pickle=True)
      np.save({str(tmp_path / "their_chunks.npy")!r},
              np.array(coder.compress(codes), dtype=object), allow_pickle=True)
      np.save({str(tmp_path / "their_codes.npy")!r},
              coder.decompress(list(chunks), 10, 13))
      """)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             TF_ENABLE_ONEDNN_OPTS=onednn)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  their_chunks = np.load(tmp_path / "their_chunks.npy", allow_pickle=True)
  assert list(their_chunks) == chunks
  np.testing.assert_array_equal(np.load(tmp_path / "their_codes.npy"), codes)
