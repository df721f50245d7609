"""The package's error types.

Everything a user can cause (a bad image, a corrupt or foreign code file, an
impossible request) raises a subclass of :class:`TfrnncompError` with a
one-line message; the command-line tools print it and exit non-zero, never a
traceback.
"""

__all__ = ["TfrnncompError", "InputError", "FormatError", "ModelError"]


class TfrnncompError(Exception):
  """Base class of the errors a user can cause."""


class InputError(TfrnncompError, ValueError):
  """An input image or argument that cannot be used."""


class FormatError(TfrnncompError, ValueError):
  """A code file or bitstream that is malformed, corrupt or unsupported."""


class ModelError(TfrnncompError):
  """A model that is missing, unreadable, or not the one a stream needs."""
