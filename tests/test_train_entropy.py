"""tools/train_entropy.py and its data: codes cache, Kodak refusal, export."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from tfrnncomp import cli
from tfrnncomp import errors
from tfrnncomp.entropy import codes_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "train_entropy.py")


def _run(*args):
  env = dict(os.environ)
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The tool's own default applies.
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                        text=True, timeout=600, env=env)


def _images(folder, names, height=48, width=64):
  os.makedirs(folder, exist_ok=True)
  rng = np.random.default_rng(0)
  for name in names:
    rows, cols = np.mgrid[:height, :width]
    x = np.stack([rows * 5, cols * 4, (rows + cols) % 32 * 8], axis=-1)
    x = np.clip(x + rng.normal(0, 6, x.shape), 0, 255).astype(np.uint8)
    Image.fromarray(x).save(os.path.join(folder, name))


class _FakeCodec:
  """Codes that identify their crop; counts the encodes."""

  def __init__(self, weights_sha256="ab" * 32):
    self.weights_sha256 = weights_sha256
    self.calls = 0
    self.search_steps = []

  def encode(self, image, iterations, search_steps=0):
    self.calls += 1
    self.search_steps.append(search_steps)
    h, w = image.shape[0] // 16, image.shape[1] // 16
    signs = np.where(image[::16, ::16, :1] > 127, 1, -1).astype(np.int8)
    return np.broadcast_to(signs[None], (iterations, h, w, 4)).copy()


def test_codes_are_cached_and_extended(tmp_path):
  data, train = str(tmp_path / "data"), str(tmp_path / "train")
  os.makedirs(train)
  _images(data, [f"{i}.png" for i in range(5)] + ["small.png"])
  _images(data, ["small.png"], 16, 16)
  codec = _FakeCodec()
  three = codes_dataset.generate_codes(codec, data, train, 3, crop=32,
                                       iterations=2, log=lambda _: None)
  assert three.shape == (3, 2, 2, 2, 4) and codec.calls == 3
  five = codes_dataset.generate_codes(codec, data, train, 6, crop=32,
                                      iterations=2, log=lambda _: None)
  assert len(five) == 5 and codec.calls == 5  # Two more; "small" is skipped.
  np.testing.assert_array_equal(five[:3], three)
  other = _FakeCodec("cd" * 32)  # Another codec: the cache is not used.
  codes_dataset.generate_codes(other, data, train, 2, crop=32, iterations=2,
                               log=lambda _: None)
  assert other.calls == 2
  train_part, held_out = codes_dataset.split(five, 0.2)
  assert len(train_part) == 4 and len(held_out) == 1
  # Codes of the searching encoder are other codes: not from the cache.
  searched = _FakeCodec()
  codes_dataset.generate_codes(searched, data, train, 2, crop=32,
                               iterations=2, log=lambda _: None,
                               search_steps=3)
  assert searched.calls == 2 and searched.search_steps == [3, 3]
  codes_dataset.generate_codes(searched, data, train, 2, crop=32,
                               iterations=2, log=lambda _: None,
                               search_steps=3)
  assert searched.calls == 2  # Now cached.


def test_kodak_is_refused(tmp_path):
  data = str(tmp_path / "data")
  _images(data, ["a.png", "kodim01.png"])
  with pytest.raises(errors.InputError, match="holds Kodak images"):
    codes_dataset.training_images(data)
  result = _run(f"--data_dir={data}", f"--train_dir={tmp_path / 'train'}",
                "--model=missing")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f"train_entropy.py: error: {data} holds Kodak images "
      f"({os.path.join(data, 'kodim01.png')}); the entropy model must not be "
      f"trained on them"]


def test_one_command_trains_and_saves_beside_the_codec(tmp_path,
                                                       tiny_model_dir):
  model = str(tmp_path / "tiny")
  shutil.copytree(tiny_model_dir, model)
  data, train = str(tmp_path / "data"), str(tmp_path / "train")
  _images(data, ["a.png", "b.png", "c.png", "d.png"])
  result = _run(f"--model={model}", f"--data_dir={data}",
                f"--train_dir={train}", "--images=4", "--crop=32",
                "--iterations=2", "--batch_size=2", "--filters=4",
                "--validation_fraction=0.25", "--log_every=1", "--steps=2")
  assert result.returncode == 0, result.stderr
  assert "codes: 4/4 crops" in result.stdout
  assert "step 2:" in result.stdout and "saved " in result.stdout
  assert os.path.exists(os.path.join(train, "codes.npz"))
  assert os.listdir(os.path.join(train, "checkpoints"))
  with open(os.path.join(model, "entropy", "entropy.json")) as f:
    info = json.load(f)
  codec = cli.load_codec(model)
  assert info["codec"] == codec.identity
  assert info["training"]["steps"] == 2
  assert len(info["training"]["held_out_bits_per_bit"]) == 2
  assert codec.entropy.weights_sha256 == info["weights_sha256"]


def test_a_new_run_starts_from_a_saved_entropy_model(tmp_path,
                                                     tiny_model_dir):
  model = str(tmp_path / "tiny")
  shutil.copytree(tiny_model_dir, model)
  data = str(tmp_path / "data")
  _images(data, ["a.png", "b.png", "c.png", "d.png"])
  common = [f"--model={model}", f"--data_dir={data}", "--images=4",
            "--crop=32", "--iterations=2", "--batch_size=2", "--filters=4",
            "--validation_fraction=0.25", "--log_every=1"]
  first = _run(*common, f"--train_dir={tmp_path / 'first'}", "--steps=3",
               "--learning_rate=0.01")
  assert first.returncode == 0, first.stderr
  held_out = first.stdout.split("(mean ")[1].split(")")[0]
  second = _run(*common, f"--train_dir={tmp_path / 'second'}", "--steps=1",
                f"--init_from={model}", "--warmup_steps=1",
                "--decay_steps=1")
  assert second.returncode == 0, second.stderr
  # The same held-out crops, scored by the saved model's weights.
  assert (f"initialized from {os.path.join(model, 'entropy')}: held-out "
          f"{held_out} bits per bit before training") in second.stdout
  with open(os.path.join(model, "entropy", "entropy.json")) as f:
    training = json.load(f)["training"]
  assert training["init_from"] == model and training["decay_steps"] == 1
  # Bit groups start from a model without them as the same function.
  trained_held_out = second.stdout.split("(mean ")[1].split(")")[0]
  groups = _run(*common, f"--train_dir={tmp_path / 'groups'}", "--steps=1",
                f"--init_from={model}", "--bit_groups=2")
  assert groups.returncode == 0, groups.stderr
  assert (f"held-out {trained_held_out} bits per bit before training"
          in groups.stdout)
  with open(os.path.join(model, "entropy", "entropy.json")) as f:
    assert json.load(f)["config"]["bit_groups"] == 2
  odd = _run(*common, f"--train_dir={tmp_path / 'odd'}", "--bit_groups=3")
  assert odd.returncode == 2
  assert odd.stderr.strip().startswith("train_entropy.py: error: "
                                       "--bit_groups: bit_groups must divide")
  wider = _run(*common[:-4], "--filters=8", "--validation_fraction=0.25",
               "--log_every=1", f"--train_dir={tmp_path / 'third'}",
               "--steps=1", f"--init_from={model}")
  assert wider.returncode == 2  # A usage error.
  assert wider.stderr.strip().startswith("train_entropy.py: error: "
                                         "--init_from: ")
  assert len(wider.stderr.strip().splitlines()) == 1
  missing = _run(*common, f"--train_dir={tmp_path / 'fourth'}",
                 f"--init_from={data}")
  assert missing.returncode == 2
  assert "is neither an entropy model nor a codec directory" in missing.stderr
