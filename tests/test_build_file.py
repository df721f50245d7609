"""The Bazel BUILD file lists every module, tool and test, with their deps."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_build_file_is_in_step_with_the_modules():
  result = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "update_build.py"),
       "--check"], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr


def test_build_file_has_a_rule_per_python_file():
  with open(os.path.join(ROOT, "BUILD")) as f:
    build = f.read()
  for folder, kind in (("tfrnncomp", "py_library"), ("tools", "py_binary"),
                       ("tests", "py_test")):
    for base, _, files in os.walk(os.path.join(ROOT, folder)):
      for name in files:
        if name.endswith(".py") and (folder != "tests" or
                                     name.startswith("test_")):
          path = os.path.relpath(os.path.join(base, name), ROOT)
          assert f'{kind}(\n    name = "{path[:-3]}",' in build, path
