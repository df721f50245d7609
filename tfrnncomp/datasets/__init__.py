"""Test-set datasets: the Kodak TFDS builder and any folder of images.

Importing this package registers the ``kodak`` builder with TFDS.
"""

from tfrnncomp.datasets.image_folder import iterate_folder
from tfrnncomp.datasets.image_folder import list_folder
from tfrnncomp.datasets.image_folder import load_folder
from tfrnncomp.datasets.kodak import Kodak

__all__ = ["Kodak", "iterate_folder", "list_folder", "load_folder"]
