"""Multi-worker training: two worker processes on localhost, same weights."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_end_with_identical_weights(tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  rng = np.random.default_rng(0)
  for i in range(3):
    Image.fromarray(rng.integers(0, 256, [48, 48, 3]).astype(np.uint8)).save(
        images / f"{i}.png")
  train_dir = tmp_path / "run"
  workers = [f"localhost:{port}" for port in _free_ports(2)]
  processes = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps({
        "cluster": {"worker": workers},
        "task": {"type": "worker", "index": index}}))
    processes.append(subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tools", "train.py"),
         "--preset=tiny", f"--data_dir={images}", f"--train_dir={train_dir}",
         "--steps=4", "--iterations=2", "--batch_size=8", "--log_every=2",
         "--strategy=multi_worker"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outputs = [p.communicate(timeout=300)[0] for p in processes]
  for p, out in zip(processes, outputs):
    assert p.returncode == 0, out[-3000:]
  # Both workers saw the same all-reduced loss ...
  losses = [[line for line in out.splitlines() if line.startswith("step 4")]
            for out in outputs]
  assert losses[0] and losses[0][0].split("loss")[1] == losses[1][0].split(
      "loss")[1]
  # ... and end with identical weights.
  chief = tf.train.load_checkpoint(str(train_dir))
  worker = tf.train.load_checkpoint(str(train_dir / "worker_1"))
  names = [n for n in chief.get_variable_to_shape_map() if "/kernel/" in n]
  assert len(names) > 10
  for name in names:
    np.testing.assert_array_equal(chief.get_tensor(name),
                                  worker.get_tensor(name))
  first = tf.train.load_checkpoint(str(train_dir))
  assert int(first.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 4
