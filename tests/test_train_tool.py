"""tools/train.py killed with SIGKILL mid-run: nothing partial, and it resumes.

Issue 8 ("nothing lost"): a training run on a shared machine gets killed,
often while it saves. The run must leave its last complete checkpoint and
resume from it.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(ROOT, "tools", "train.py")


def _train_command(images, train_dir, steps):
  return [sys.executable, TRAIN, "--preset=tiny", f"--data_dir={images}",
          f"--train_dir={train_dir}", f"--steps={steps}", "--iterations=2",
          "--batch_size=4", "--patch_size=32", "--log_every=1",
          "--checkpoint_every_secs=0"]  # A checkpoint after every step.


def _latest_number(train_dir):
  """N of the ckpt-N the state file names (no read of a checkpoint that the
  running process may be rotating out), or 0."""
  latest = train_dir.exists() and tf.train.latest_checkpoint(str(train_dir))
  return int(latest.rsplit("-", 1)[1]) if latest else 0


def _saved_step(train_dir):
  """The step of the checkpoint the state file names, or 0."""
  if not train_dir.exists():
    return 0
  latest = tf.train.latest_checkpoint(str(train_dir))
  if not latest:
    return 0
  return int(tf.train.load_checkpoint(latest).get_tensor(
      "step/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.fixture
def images(tmp_path):
  folder = tmp_path / "images"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for i in range(3):
    Image.fromarray(rng.integers(0, 256, [48, 48, 3]).astype(np.uint8)).save(
        folder / f"{i}.png")
  return folder


def test_kill_9_during_training_then_resume(tmp_path, images):
  train_dir = tmp_path / "run"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.Popen(_train_command(images, train_dir, 100000),
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 240
    # Kill it once a few checkpoints exist; it saves after every step, so the
    # kill often lands inside a save.
    while (time.time() < deadline and process.poll() is None and
           _latest_number(train_dir) < 3):
      time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == -signal.SIGKILL
  killed_at = _saved_step(train_dir)
  assert killed_at >= 1  # The state file names a complete, readable checkpoint.
  # What a kill inside a save can leave: shards under <prefix>_temp/ and a
  # temporary state file. Make sure both kinds are there for the resume.
  (train_dir / f"ckpt-{killed_at + 1}_temp").mkdir(exist_ok=True)
  (train_dir / f"ckpt-{killed_at + 1}_temp" / "part-00000-of-00001.index"
   ).write_bytes(b"partial")
  (train_dir / "checkpoint.tmp0123abcd").write_text("partial")

  resumed = subprocess.run(_train_command(images, train_dir, killed_at + 2),
                           env=env, capture_output=True, text=True,
                           timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"at step {killed_at}" in resumed.stdout + resumed.stderr
  assert "left by a run killed while saving" in resumed.stdout + resumed.stderr
  assert _saved_step(train_dir) == killed_at + 2
  leftovers = [n for n in os.listdir(train_dir)
               if n.endswith("_temp") or n.startswith("checkpoint.tmp")]
  assert not leftovers


def test_a_float32_run_resumes_with_bfloat16_convolutions(tmp_path, images):
  """Precision and loss weighting may change on resume; the network may not."""
  train_dir = tmp_path / "run"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  first = subprocess.run(_train_command(images, train_dir, 1), env=env,
                         capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-3000:]
  second = subprocess.run(
      _train_command(images, train_dir, 2) + ["--compute_dtype=bfloat16",
                                              "--iteration_weight_ratio=0.8",
                                              "--iteration_ms_ssim_weight=0.5"],
      env=env, capture_output=True, text=True, timeout=300)
  assert second.returncode == 0, second.stderr[-3000:]
  assert "at step 1" in second.stdout + second.stderr
  assert _saved_step(train_dir) == 2
  config = json.loads((train_dir / "config.json").read_text())
  assert config["compute_dtype"] == "bfloat16"
  wider = subprocess.run(
      _train_command(images, train_dir, 3) + ["--width=0.125"], env=env,
      capture_output=True, text=True, timeout=300)
  assert wider.returncode != 0
  assert "different model config" in wider.stderr
  for flag, message in [
      ("--iteration_weight_ratio=0", "iteration_weight_ratio must be in [0.1, 10]"),
      ("--iteration_ms_ssim_weight=-1",
       "iteration_ms_ssim_weight must be in [0, 100]"),
      ("--priming=9", "priming must be in [0, 8]"),
      ("--rate_weight=0.1", "--rate_weight and --rate_target need --entropy_model"),
      (f"--entropy_model={tmp_path}", "only used with --rate_weight"),
      (["--rate_weight=0.1", f"--entropy_model={tmp_path}"],
       "has no valid entropy.json")]:
    flags = flag if isinstance(flag, list) else [flag]
    bad = subprocess.run(_train_command(images, train_dir, 3) + flags,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert message in bad.stderr
    assert "Traceback" not in bad.stderr
