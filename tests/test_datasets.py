"""Tests of the Kodak TFDS builder and the image-folder loader."""

import os
import shutil

import numpy as np
import pytest

from tfrnncomp import errors
from tfrnncomp.datasets import image_folder
from tfrnncomp.datasets import kodak

KODAK_DIR = kodak.DEFAULT_DIR
needs_kodak = pytest.mark.skipif(
    not os.path.isfile(os.path.join(KODAK_DIR, "kodim01.png")),
    reason=f"no Kodak images in {KODAK_DIR}")


def _load(data_dir, manual_dir):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tfrnncomp.datasets  # pylint: disable=g-import-not-at-top,unused-import
  return tfds.load("kodak", split="test", data_dir=str(data_dir),
                   download_and_prepare_kwargs={
                       "download_config": tfds.download.DownloadConfig(
                           manual_dir=str(manual_dir))})


def test_checksum_table_has_the_24_images():
  assert sorted(kodak.SHA256) == [f"kodim{i:02d}.png" for i in range(1, 25)]
  assert all(len(h) == 64 for h in kodak.SHA256.values())


@needs_kodak
def test_kodak_builds_offline_with_24_checked_images(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  examples = list(tfds.as_numpy(_load(tmp_path / "tfds", KODAK_DIR)))
  assert [e["filename"].decode() for e in examples] == sorted(kodak.SHA256)
  for example in examples:
    assert example["image"].dtype == np.uint8
    assert example["image"].shape in ((512, 768, 3), (768, 512, 3))
  with Image.open(os.path.join(KODAK_DIR, "kodim04.png")) as original:
    np.testing.assert_array_equal(examples[3]["image"], np.asarray(original))
  assert examples[3]["image"].shape == (768, 512, 3)  # kodim04 is portrait.


@needs_kodak
def test_a_wrong_checksum_is_an_error(tmp_path):
  manual = tmp_path / "kodak"
  manual.mkdir()
  for name in kodak.SHA256:
    os.symlink(os.path.join(KODAK_DIR, name), manual / name)
  os.remove(manual / "kodim07.png")
  shutil.copy(os.path.join(KODAK_DIR, "kodim08.png"), manual / "kodim07.png")
  with pytest.raises(errors.FormatError, match="kodim07.png has SHA-256"):
    kodak.verify(str(manual))
  with pytest.raises(errors.FormatError, match="kodim07.png"):
    _load(tmp_path / "tfds", manual)
  os.remove(manual / "kodim07.png")
  with pytest.raises(errors.InputError, match="kodim07.png is missing"):
    kodak.verify(str(manual))


def test_source_folder_order(tmp_path, monkeypatch):
  manual, env = tmp_path / "manual", tmp_path / "env"
  for folder in (manual, env):
    folder.mkdir()
    (folder / "kodim01.png").write_bytes(b"")
  monkeypatch.setenv(kodak.ENV_VAR, str(env))
  assert kodak.find_source(str(manual)) == str(manual)
  assert kodak.find_source(str(tmp_path / "empty")) == str(env)
  monkeypatch.setenv(kodak.ENV_VAR, str(tmp_path / "nowhere"))
  monkeypatch.setattr(kodak, "DEFAULT_DIR", str(tmp_path / "nothing"))
  with pytest.raises(errors.InputError, match="no kodim"):
    kodak.find_source(None)


def test_image_folder_loads_any_images_as_rgb(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, [20, 30, 3], dtype=np.uint8)
  Image.fromarray(rgb).save(tmp_path / "b.png")
  (tmp_path / "sub").mkdir()
  Image.fromarray(rgb[..., 0]).save(tmp_path / "sub" / "a.bmp")
  (tmp_path / "notes.txt").write_text("not an image")
  items = list(image_folder.iterate_folder(str(tmp_path)))
  assert [name for name, _ in items] == ["b.png", os.path.join("sub", "a.bmp")]
  np.testing.assert_array_equal(items[0][1], rgb)
  assert items[1][1].shape == (20, 30, 3)  # Gray replicated to RGB.
  np.testing.assert_array_equal(items[1][1][..., 2], rgb[..., 0])

  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tfrnncomp import datasets  # pylint: disable=g-import-not-at-top
  examples = list(tfds.as_numpy(datasets.load_folder(str(tmp_path))))
  assert [e["filename"].decode() for e in examples] == [n for n, _ in items]
  np.testing.assert_array_equal(examples[0]["image"], rgb)


def test_image_folder_errors(tmp_path):
  with pytest.raises(errors.InputError, match="not a folder"):
    image_folder.list_folder(str(tmp_path / "missing"))
  with pytest.raises(errors.InputError, match="no images"):
    image_folder.list_folder(str(tmp_path))
