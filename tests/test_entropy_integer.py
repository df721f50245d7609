"""The entropy model's integer coding path (tfrnncomp/entropy/integer.py).

It must follow the float network closely (so the files stay as small), and
compute on a fixed grid from integers only; that the bytes are the same with
other kernels (oneDNN on or off, as on another CPU) is tested in
tests/test_entropy.py.
"""

import numpy as np
import pytest

from tfrnncomp import testing
from tfrnncomp.entropy import integer
from tfrnncomp.entropy import pixelrnn

BITS = 8
CONFIG = pixelrnn.EntropyConfig(bits=BITS, filters=2 * BITS)
GROUPED = pixelrnn.EntropyConfig(bits=BITS, filters=2 * BITS, bit_groups=4)


def _random_model(seed, stddev=0.3, config=CONFIG):
  """Random weights everywhere, also where initializers put zeros."""
  return testing.random_entropy_model(config, seed, stddev)


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
        out[t, i, j] = model.intra_logits(
            model.position_logits(context[j][None], left),
            codes[t, i, j][None])[0]
  return out


@pytest.mark.parametrize("config", [CONFIG, GROUPED])
def test_integer_path_follows_the_float_network_on_a_fixed_grid(config):
  model = _random_model(3, config=config)
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
  grouped = integer.IntegerPixelRNN(_random_model(5, config=GROUPED))
  intra = grouped.intra.numpy()  # Scale 2^A, the later groups' rows masked.
  np.testing.assert_array_equal(intra, np.round(intra))
  assert np.abs(intra).max() <= 2 ** (integer.CLIP_BITS +
                                      integer.ACTIVATION_BITS)
  np.testing.assert_array_equal(intra * (1 - np.array(GROUPED.intra_mask())),
                                0)
  table = exact.tanh_table.numpy()
  assert table.shape == (2 * integer.TABLE_RANGE << integer.TABLE_BITS,)
  assert (np.diff(table) >= 0).all()
  assert table[0] == -table[-1] == -(1 << integer.ACTIVATION_BITS)
