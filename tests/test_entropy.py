"""The entropy model and its range coder: causality, bins, exact round trips.

The range coding tests use a tiny BinaryPixelRNN with random weights and one
strong hand-set path, which predicts synthetic codes with runs along the rows
confidently, so that coding costs are meaningful.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfrnncomp import testing
from tfrnncomp.entropy import bins
from tfrnncomp.entropy import pixelrnn
from tfrnncomp.entropy import saved_model
from tfrnncomp.entropy import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BITS = 8
CONFIG = pixelrnn.EntropyConfig(bits=BITS, filters=2 * BITS)
GROUPED = pixelrnn.EntropyConfig(bits=BITS, filters=2 * BITS, bit_groups=2)
IDENTITY = {"name": "fake_codec", "weights_sha256": "00" * 32}


def synthetic_codes(count, iterations, rows, columns, seed=0, flip=0.05):
  """int8 +-1 [count, T, rows, columns, BITS] with runs along the rows.

  Each bit equals the same bit of its left neighbour but with probability
  ``flip``; the first column is uniform.
  """
  rng = np.random.default_rng(seed)
  shape = (count, iterations, rows)
  first = np.where(rng.random(shape + (1, BITS)) < 0.5, 1, -1)
  flips = np.where(rng.random(shape + (columns - 1, BITS)) < flip, -1, 1)
  return (first * np.concatenate([np.ones_like(first),
                                  np.cumprod(flips, axis=3)], axis=3)
          ).astype(np.int8)


def paired_codes(codes, seed=0, flip=0.05):
  """``codes`` with bit k + K/2 = bit k of the same position, but with
  probability ``flip``: structure that only bit groups can use."""
  rng = np.random.default_rng(seed)
  half = BITS // 2
  flips = np.where(rng.random(codes[..., :half].shape) < flip, -1, 1)
  return np.concatenate([codes[..., :half], codes[..., :half] * flips],
                        axis=-1).astype(np.int8)


def _random_model(seed, stddev=0.3, config=CONFIG):
  """Random weights everywhere, also where initializers put zeros."""
  return testing.random_entropy_model(config, seed, stddev)


def _with_groups(model):
  """A GROUPED model with ``model``'s weights (its groups' weights at 0)."""
  grouped = pixelrnn.BinaryPixelRNN(GROUPED).build_variables()
  weights = {v.name: v for v in model.variables}
  for v in grouped.variables:
    if v.name in weights:
      v.assign(weights.pop(v.name))
  assert not weights  # Every weight found its place.
  return grouped


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """(model, SavedEntropyCoder directory): a model that predicts well.

  Small random weights everywhere, and a strong path that predicts each bit
  equal to the same bit of the left neighbour, which synthetic_codes mostly
  is: z[2k] = relu(b_k), z[2k + 1] = relu(-b_k), logit_k = 4 (z[2k] - z[2k+1]).
  """
  model = _random_model(0, stddev=0.01)
  c = CONFIG.filters
  left = np.zeros([1, CONFIG.radius, BITS, c], np.float32)
  hidden = np.zeros([c, c], np.float32)
  out = np.zeros([c, BITS], np.float32)
  for k in range(BITS):
    left[0, -1, k, 2 * k], left[0, -1, k, 2 * k + 1] = 1., -1.
    hidden[2 * k, 2 * k] = hidden[2 * k + 1, 2 * k + 1] = 1.
    out[2 * k, k], out[2 * k + 1, k] = 4., -4.
  model.left.kernel.assign(left)
  model.hidden.kernel.assign(hidden)
  model.out.kernel.assign(out)
  codec_dir = tmp_path_factory.mktemp("codec")
  saved_model.save(model, str(codec_dir), IDENTITY)
  return model, saved_model.entropy_directory(str(codec_dir))


@pytest.fixture(scope="module")
def coder(trained):
  return saved_model.load(trained[1])


@pytest.fixture(scope="module")
def grouped(trained, tmp_path_factory):
  """(model, SavedEntropyCoder): ``trained`` with 2 bit groups, whose
  weights predict bit k + 4 equal to bit k (what paired_codes mostly is)."""
  model = _with_groups(trained[0])
  half = BITS // 2
  model.intra.assign(4. * np.eye(BITS, k=half, dtype=np.float32))
  codec_dir = tmp_path_factory.mktemp("grouped")
  saved_model.save(model, str(codec_dir), IDENTITY)
  return model, saved_model.load(saved_model.entropy_directory(str(codec_dir)))


# --- Bins. --------------------------------------------------------------------


def test_bin_rule():
  logits = tf.constant([0., -1e-7, 1 / 16, -1 / 16, 7.99, 8., -8., -8.01, 1e9,
                        -np.inf, np.inf])
  np.testing.assert_array_equal(
      bins.logits_to_bins(logits).numpy(),
      [128, 127, 129, 127, 255, 255, 0, 0, 255, 0, 255])


def test_lookup_table_is_a_valid_monotone_16_bit_table():
  table = bins.lookup_table()
  assert table.shape == (256, 4) and table.dtype == np.int32
  assert (table[:, 0] == 16).all() and (table[:, 1] == 0).all()
  assert (table[:, 3] == 2 ** 16).all()
  assert (0 < table[:, 2]).all() and (table[:, 2] < 2 ** 16).all()
  assert (np.diff(table[:, 2]) <= 0).all()  # P(+1) grows with the bin.
  np.testing.assert_array_equal(table[:, 2], table[::-1, 3] - table[::-1, 2])


def test_bins_cost_under_a_thousandth_of_a_bit_per_bit():
  p = np.linspace(0.001, 0.999, 2001)
  logits = np.log(p / (1 - p)).astype(np.float32)
  k = bins.logits_to_bins(tf.constant(logits)).numpy()
  table = bins.lookup_table()
  q = (table[k, 3] - table[k, 2]) / 2 ** 16
  entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
  cross = -(p * np.log2(q) + (1 - p) * np.log2(1 - q))
  assert (cross - entropy).max() < 1e-3
  assert (cross - entropy).mean() < 2e-4


# --- The network. -------------------------------------------------------------


def test_predictions_are_causal():
  """Bit flips at or after (t, i, j) in raster order never change its logits."""
  model = _random_model(1)
  codes = synthetic_codes(1, 3, 6, 7, seed=3)[0][:, None].astype(np.float32)
  base = model(codes).numpy()
  t, i, j = 1, 3, 2
  for (ti, ii, ji) in [(t, i, j), (t, i, j + 1), (t, i + 1, 0), (t, 5, 6),
                       (2, 0, 0)]:
    changed = codes.copy()
    changed[ti, 0, ii, ji, 5] *= -1
    diff = np.abs(model(changed).numpy() - base).max(axis=-1)[:, 0]
    assert diff[t, i, j] == 0
    assert (diff[:ti] == 0).all()
    assert (diff[ti, :ii] == 0).all() and (diff[ti, ii, :ji + 1] == 0).all()
  # Earlier bits are used: the left neighbour, rows above, the last iteration.
  for (ti, ii, ji) in [(t, i, j - 1), (t, i - 1, j + 3), (t, 0, 0),
                       (t - 1, i + 1, j + 1)]:
    changed = codes.copy()
    changed[ti, 0, ii, ji, 0] *= -1
    assert np.abs(model(changed).numpy() - base)[t, 0, i, j].max() > 0


@pytest.mark.parametrize("config", [CONFIG, GROUPED])
def test_coding_path_computes_the_training_path(config):
  model = _random_model(2, config=config)
  codes = synthetic_codes(1, 3, 4, 5, seed=5)[0].astype(np.float32)
  expected = model(codes[:, None]).numpy()[:, 0]
  r = CONFIG.radius
  for t in range(3):
    recent = np.stack([codes[t - s] if t >= s else np.zeros_like(codes[0])
                       for s in range(1, CONFIG.history + 1)])
    mean = codes[:t].mean(axis=0) if t else np.zeros_like(codes[0])
    progressive = model.progressive_context(recent, mean, t)
    state = model.zero_row_state(5)
    padded = np.pad(codes[t], [[r, 0], [r, r], [0, 0]])
    for i in range(4):
      context, state = model.row_context(padded[i:i + r], state,
                                         progressive[i])
      for j in range(5):
        left = np.pad(codes[t, i], [[r, 0], [0, 0]])[j:j + r].reshape(1, -1)
        logits = model.intra_logits(
            model.position_logits(context[j][None], left),
            codes[t, i, j][None])
        np.testing.assert_allclose(logits[0], expected[t, i, j], atol=1e-4)


def test_bit_groups_see_the_earlier_groups_of_their_position_only():
  model = _random_model(4, config=GROUPED)
  codes = synthetic_codes(1, 2, 4, 5, seed=9)[0][:, None].astype(np.float32)
  base = model(codes).numpy()
  weights = model.intra.numpy()
  half = BITS // 2
  for m in (0, half - 1, half, BITS - 1):
    changed = codes.copy()
    changed[1, 0, 2, 3, m] *= -1
    diff = model(changed).numpy()[1, 0, 2, 3] - base[1, 0, 2, 3]
    if m < half:  # Moves the second group's logits by -2 b_m W[m, k].
      np.testing.assert_allclose(
          diff[half:], -2 * codes[1, 0, 2, 3, m] * weights[m, half:],
          rtol=1e-4, atol=1e-5)
    else:
      np.testing.assert_array_equal(diff[half:], 0)
    np.testing.assert_array_equal(diff[:half], 0)
  with pytest.raises(ValueError, match="bit_groups must divide"):
    pixelrnn.EntropyConfig(bits=BITS, bit_groups=3)


def test_bit_groups_start_as_the_model_without_them():
  """Zero group weights: the function of the same network without groups
  (tools/train_entropy.py --bit_groups with --init_from)."""
  plain = _random_model(6)
  model = _with_groups(plain)
  np.testing.assert_array_equal(model.intra.numpy(), 0)
  codes = synthetic_codes(1, 2, 4, 5, seed=9)[0][:, None].astype(np.float32)
  np.testing.assert_array_equal(model(codes).numpy(), plain(codes).numpy())


def test_training_learns_and_resumes_from_its_checkpoint(tmp_path):
  tf.random.set_seed(0)
  codes = synthetic_codes(8, 2, 6, 6)
  first = training.Trainer(pixelrnn.BinaryPixelRNN(CONFIG).build_variables(),
                           str(tmp_path), learning_rate=1e-2)
  before = first.evaluate(codes).mean()
  first.fit(codes, steps=30, batch_size=4, log=lambda _: None)
  assert first.evaluate(codes).mean() < min(0.8, before - 0.1)
  second = training.Trainer(pixelrnn.BinaryPixelRNN(CONFIG).build_variables(),
                            str(tmp_path))
  assert second.restore().endswith("ckpt-30")
  assert int(second.step.numpy()) == 30
  for a, b in zip(first.model.variables, second.model.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  second.fit(codes, steps=31, batch_size=4, log=lambda _: None)
  assert int(second.step.numpy()) == 31


def test_training_follows_the_warm_up_and_decay_schedule(tmp_path):
  codes = synthetic_codes(4, 2, 4, 4)
  trainer = training.Trainer(pixelrnn.BinaryPixelRNN(CONFIG).build_variables(),
                             str(tmp_path), learning_rate=1e-2,
                             warmup_steps=4, decay_steps=10)
  seen, step = [], trainer.train_step

  def recording_step(batch):  # Reads the rate each step is taken with.
    seen.append(float(trainer.optimizer.learning_rate.numpy()))
    return step(batch)

  trainer.train_step = recording_step
  trainer.fit(codes, steps=20, batch_size=2, log=lambda _: None)
  np.testing.assert_allclose(seen[:4], [2.5e-3, 5e-3, 7.5e-3, 1e-2])
  np.testing.assert_allclose(seen[4:10], 1e-2)
  assert all(a > b for a, b in zip(seen[10:], seen[11:]))  # Cosine decay.
  assert seen[-1] < 1e-3


# --- Range coding. ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 3, 5), (2, 8, 8)])
def test_random_codes_round_trip_bit_exactly(coder, shape):
  rng = np.random.default_rng(sum(shape))
  codes = rng.choice(np.array([-1, 1], np.int8), size=shape + (BITS,))
  chunks = coder.compress(codes)
  assert len(chunks) == shape[0]
  decoded = coder.decompress(chunks, shape[1], shape[2])
  assert decoded.dtype == np.int8
  np.testing.assert_array_equal(decoded, codes)


def test_structured_codes_compress_to_the_cross_entropy(trained, coder):
  model, _ = trained
  codes = synthetic_codes(1, 3, 16, 16, seed=7)[0]
  chunks = coder.compress(codes)
  np.testing.assert_array_equal(coder.decompress(chunks, 16, 16), codes)
  actual = np.array([len(c) * 8 for c in chunks])
  xent = coder.cross_entropy(codes)
  raw = codes[0].size
  assert (actual < raw).all() and actual.sum() < 0.9 * raw * len(actual)
  # The range coder's cost: the bins' rounding (< 0.1%) and a few bytes.
  assert (actual <= xent * 1.002 + 32).all(), (actual, xent)
  assert (actual >= xent * 0.99 - 32).all(), (actual, xent)
  ideal = bins.ideal_bits(
      bins.logits_to_bins(model(codes[:, None].astype(np.float32))).numpy(),
      codes[:, None])
  assert actual.sum() >= ideal - 16 * len(chunks)


def test_bit_groups_round_trip_and_code_what_they_predict(trained, coder,
                                                         grouped):
  model, grouped_coder = grouped
  rng = np.random.default_rng(17)
  random = rng.choice(np.array([-1, 1], np.int8), size=(2, 3, 5, BITS))
  np.testing.assert_array_equal(
      grouped_coder.decompress(grouped_coder.compress(random), 3, 5), random)
  codes = paired_codes(synthetic_codes(1, 3, 16, 16, seed=7)[0], seed=1)
  chunks = grouped_coder.compress(codes)
  np.testing.assert_array_equal(grouped_coder.decompress(chunks, 16, 16),
                                codes)
  actual = np.array([len(c) * 8 for c in chunks])
  xent = grouped_coder.cross_entropy(codes)
  assert (actual <= xent * 1.002 + 32).all(), (actual, xent)
  assert (actual >= xent * 0.99 - 32).all(), (actual, xent)
  # The second group costs little once the first is known: the file is
  # smaller than without groups (same network otherwise; 0.80 here).
  without = np.array([len(c) * 8 for c in coder.compress(codes)])
  assert actual.sum() < 0.85 * without.sum(), (actual, without)
  # Later iterations after a context, as without groups.
  later = grouped_coder.decompress(chunks[1:], 16, 16, context=codes[:1])
  np.testing.assert_array_equal(later, codes[1:])


def test_later_iterations_decode_after_a_context(coder):
  codes = synthetic_codes(1, 5, 5, 6, seed=11)[0]
  chunks = coder.compress(codes)
  for start in (1, 2, 4):  # Context shorter and longer than the history.
    later = coder.decompress(chunks[start:], 5, 6, context=codes[:start])
    np.testing.assert_array_equal(later, codes[start:])
  # The chunks depend on the context: decoding without it is wrong.
  with pytest.raises(Exception):
    wrong = coder.decompress(chunks[2:], 5, 6)
    np.testing.assert_array_equal(wrong, codes[2:])


def test_saved_model_records_its_identity(trained, coder):
  with open(os.path.join(trained[1], "entropy.json")) as f:
    info = json.load(f)
  assert info["codec"] == IDENTITY
  assert info["config"] == CONFIG.to_dict()
  assert info["bins"] == {"num_bins": 256, "precision": 16,
                          "bins_per_logit": 16}
  assert info["arithmetic"]["kind"] == "integer"
  assert len(info["weights_sha256"]) == 64
  assert coder.weights_sha256 == info["weights_sha256"]


@pytest.mark.parametrize("onednn,groups", [("0", 1), ("1", 1), ("0", 2)])
def test_two_processes_code_identical_bytes(tmp_path, coder, grouped, onednn,
                                            groups):
  """Encoder and decoder in other processes agree with this one, bit for bit,
  also with other convolution kernels (oneDNN on or off: other summation
  orders, as on another CPU; tfrnncomp/entropy/integer.py)."""
  if groups > 1:
    coder = grouped[1]
  codes = paired_codes(synthetic_codes(1, 3, 9, 11, seed=13)[0])
  chunks = coder.compress(codes)
  np.save(tmp_path / "codes.npy", codes)
  np.save(tmp_path / "chunks.npy", np.array(chunks, dtype=object),
          allow_pickle=True)
  script = textwrap.dedent(f"""
      import sys, numpy as np
      sys.path.insert(0, {ROOT!r})
      from tfrnncomp.entropy import saved_model
      coder = saved_model.load({coder.directory!r})
      codes = np.load({str(tmp_path / "codes.npy")!r})
      chunks = np.load({str(tmp_path / "chunks.npy")!r}, allow_pickle=True)
      np.save({str(tmp_path / "their_chunks.npy")!r},
              np.array(coder.compress(codes), dtype=object), allow_pickle=True)
      np.save({str(tmp_path / "their_codes.npy")!r},
              coder.decompress(list(chunks), 9, 11))
      """)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             TF_ENABLE_ONEDNN_OPTS=onednn)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  their_chunks = np.load(tmp_path / "their_chunks.npy", allow_pickle=True)
  assert list(their_chunks) == chunks
  np.testing.assert_array_equal(np.load(tmp_path / "their_codes.npy"), codes)
