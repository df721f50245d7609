"""The Kodak Lossless True Color Image Suite as a TFDS dataset, built offline.

The 24 images of the Kodak PhotoCD PCD0992 (768x512 or 512x768 RGB PNGs,
``kodim01.png`` .. ``kodim24.png``), the usual test set of learned image
compression since Toderici et al. 2017 and Balle et al. 2017. Kodak released
them "for unrestricted usage" (http://r0k.us/graphics/kodak/).

Nothing is downloaded: the builder reads the PNGs from a folder and checks
each against the SHA-256 in :data:`SHA256` (a different file is an error, so
that every result in this project is on the same pixels). The folder is the
first of

1. TFDS' manual directory, if it holds ``kodim*.png`` files
   (``download_config=tfds.download.DownloadConfig(manual_dir=...)``);
2. the folder named by the ``TFRNNCOMP_KODAK_DIR`` environment variable;
3. ``../shared/data/kodak`` beside a source checkout of this repository
   (:data:`DEFAULT_DIR`).

Usage::

    import tensorflow_datasets as tfds
    import tfrnncomp.datasets  # Registers "kodak".
    config = tfds.download.DownloadConfig(manual_dir="path/to/kodak")
    ds = tfds.load("kodak", split="test", data_dir="/tmp/tfds",
                   download_and_prepare_kwargs={"download_config": config})

Each example is ``{"image": uint8 [H, W, 3], "filename": "kodim01.png"}``,
in file-name order.
"""

import hashlib
import os

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from tfrnncomp import errors

__all__ = ["Kodak", "SHA256", "DEFAULT_DIR", "ENV_VAR", "find_source",
           "verify"]

ENV_VAR = "TFRNNCOMP_KODAK_DIR"
"""Environment variable naming a folder of the 24 Kodak PNGs."""

DEFAULT_DIR = os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
    "data", "kodak"))
"""``../shared/data/kodak`` relative to the repository root."""

_SHA256SUMS = """
a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd  kodim01.png
4f4b74a79237e311d72cad958237b5f7088d8bce1c82305ebefe1a70e3022dfd  kodim02.png
e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db  kodim03.png
e3b946107c5d3441c022f678d0c3caf1e224d81b1604ba840a4f88e562de61aa  kodim04.png
10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53  kodim05.png
363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18  kodim06.png
b77d3f006f42414bb242222e0482e750c0fb9e5ee8d4bed2f6f11c5605fe54a4  kodim07.png
ba23983c76b4832ee0e8af0592664756841a16779acd69f792e268fb6d13d6e7  kodim08.png
6a4361c2fc194feb4edaa9f9a4a0620fb9943e460ac7fdf037fb0f6dd6607a7d  kodim09.png
9dfb70f5867c29ff9ed6313683f19b3d867849e40fbc0c4c54a4a89df341cf23  kodim10.png
7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6  kodim11.png
d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980  kodim12.png
bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08  kodim13.png
55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e  kodim14.png
7538cbb80cb9103606c48b806eae57d56c885c7f90b9b3be70a41160f9cbb683  kodim15.png
a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54  kodim16.png
37afcc89fbdcb76d9518e04b2fc011027e2f4cd14b3b2f83cefd721641a47c5b  kodim17.png
1a9258c365988961d87a0598725b609139c303ad48a5aad6c503c3b1a87849aa  kodim18.png
b7450b264b1b0a411390d8931b112c27905a992520fc90569dc4b920aa32bbdc  kodim19.png
3b46c71e3b92a563820ba32936be8330c586c41f938efd94be938386aae4328a  kodim20.png
ac958597c82073f6bb65129c68f72b651db5b9efd82e11547d07350214bc268b  kodim21.png
1cee58eb1f2d9c7ebb254d208a03c783ce6cf2c4d8c2cf45e235dd23b4ce1b29  kodim22.png
e3111a2fd4da24af15d6459ef9eacfe54106b38e27b4a21821b75c3f5d2d5baf  kodim23.png
1071c68372cc5a01435c2c225a5cf7d4bb803846ec08bb6b3d6721b156d7cb96  kodim24.png
"""

SHA256 = dict(reversed(line.split()) for line in _SHA256SUMS.split("\n")
              if line)
"""SHA-256 (hex) of each Kodak PNG, by file name."""

_CITATION = """\
@misc{kodak,
  title = {Kodak Lossless True Color Image Suite (PhotoCD PCD0992)},
  author = {{Eastman Kodak Company}},
  howpublished = {\\url{http://r0k.us/graphics/kodak/}},
}
"""


def _has_kodak_files(folder):
  return bool(folder) and os.path.isdir(folder) and any(
      name in SHA256 for name in os.listdir(folder))


def find_source(manual_dir=None):
  """The folder to read the Kodak PNGs from (see the module docstring).

  Raises:
    InputError: if no candidate folder holds them.
  """
  candidates = [manual_dir, os.environ.get(ENV_VAR), DEFAULT_DIR]
  for folder in candidates:
    if folder and _has_kodak_files(os.fspath(folder)):
      return os.fspath(folder)
  tried = ", ".join(str(c) for c in candidates if c)
  raise errors.InputError(f"Kodak: no kodim*.png files in {tried}; set "
                          f"{ENV_VAR} or pass a manual_dir")


def verify(folder):
  """Checks that ``folder`` holds the 24 files with the expected SHA-256.

  Returns:
    The paths of the 24 files, in name order.

  Raises:
    InputError: if a file is missing.
    FormatError: if a file's SHA-256 differs from :data:`SHA256`.
  """
  paths = []
  for name in sorted(SHA256):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
      raise errors.InputError(f"Kodak: {path} is missing")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
      for chunk in iter(lambda: f.read(1 << 20), b""):
        digest.update(chunk)
    if digest.hexdigest() != SHA256[name]:
      raise errors.FormatError(f"Kodak: {path} has SHA-256 "
                               f"{digest.hexdigest()}, expected "
                               f"{SHA256[name]}")
    paths.append(path)
  return paths


class Kodak(tfds.core.GeneratorBasedBuilder):
  """The 24 Kodak images, read from a local folder and checksummed."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "The 24 PNGs, checked against SHA-256."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
  Put kodim01.png .. kodim24.png (the lossless PNGs of
  http://r0k.us/graphics/kodak/) in the manual directory, or in a folder named
  by the {ENV_VAR} environment variable. Their SHA-256 must match
  tfrnncomp.datasets.kodak.SHA256.
  """

  # TFDS' own lookup of this file goes through `importlib_resources`, which
  # tensorflow-datasets 4.9 uses without declaring it; name the file directly.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls):  # pylint: disable=invalid-overridden-method
    return epath.Path(os.path.abspath(__file__))

  def _info(self):
    return self.dataset_info_from_configs(
        description="Kodak Lossless True Color Image Suite (24 images).",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3),
                                         dtype=np.uint8),
            "filename": tfds.features.Text(),
        }),
        homepage="http://r0k.us/graphics/kodak/",
        citation=_CITATION,
        disable_shuffling=True,  # Keep the file-name order.
    )

  def _split_generators(self, dl_manager):
    try:
      manual_dir = dl_manager.manual_dir
    except AssertionError:  # No manual directory, or an empty one.
      manual_dir = None
    paths = verify(find_source(manual_dir))
    return {"test": self._generate_examples(paths)}

  def _generate_examples(self, paths):
    for path in paths:
      name = os.path.basename(path)
      yield name, {"image": path, "filename": name}
