"""The tools' --help text: absl prints each tool's module docstring."""

import ast
import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = sorted(glob.glob(os.path.join(ROOT, "tools", "*.py")))


def _docstring(path):
  with open(path) as f:
    return ast.get_docstring(ast.parse(f.read()), clean=False)


@pytest.mark.parametrize("path", TOOLS, ids=os.path.basename)
def test_usage_examples_keep_their_line_breaks(path):
  """A backslash at a line's end in a plain (not raw) docstring joins the
  lines: `--help` then showed each multi-line example command as one line
  with the continuation's indentation inside it."""
  doc = _docstring(path)
  assert doc, f"{path} has no module docstring"
  joined = [line for line in doc.splitlines()
            if re.search(r"\S\s{4,}--\w", line)]
  assert not joined, joined


def test_help_shows_the_examples():
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "train.py"), "--help"],
      capture_output=True, text=True, timeout=120,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert "Trains a codec (any system)" in result.stdout
  assert ("  python tools/train.py --preset residual_gru_half \\\n"
          "      --data_dir ../shared/data/train") in result.stdout
  assert "--rate_weight" in result.stdout
