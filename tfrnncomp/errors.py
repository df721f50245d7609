"""The package's error types.

Everything a user can cause (a bad image, a corrupt or foreign code file, an
impossible request) raises a subclass of :class:`TfrnncompError` with a
one-line message; the command-line tools print it and exit non-zero, never a
traceback.
"""

__all__ = ["TfrnncompError", "InputError", "FormatError", "ModelError",
           "op_error_message"]

_MAX_OP_MESSAGE = 300


class TfrnncompError(Exception):
  """Base class of the errors a user can cause."""


class InputError(TfrnncompError, ValueError):
  """An input image or argument that cannot be used."""


class FormatError(TfrnncompError, ValueError):
  """A code file or bitstream that is malformed, corrupt or unsupported."""


class ModelError(TfrnncompError):
  """A model that is missing, unreadable, or not the one a stream needs."""


def op_error_message(message):
  """The line that says what went wrong in a TensorFlow op error's message.

  A failing graph (e.g. a SavedModel signature) reports ``Graph execution
  error:``, then where the node was defined, then the cause, then the node
  definition; only the cause tells a user anything. A bfloat16 kernel
  missing on this CPU (a SavedModel exported with bfloat16 convolutions
  before they avoided AVX512-only kernels) gets a hint to re-export.

  Args:
    message: ``tf.errors.OpError.message``.

  Returns:
    One line of at most about 300 characters.
  """
  lines = [line.strip() for line in (message or "").splitlines()]
  causes = [line for line in lines
            if line and line != "Graph execution error:"
            and not line.startswith(("Detected at node", "<stack traces",
                                     "File ", "[[", ";"))]
  text = causes[0] if causes else (lines[0] if lines else "unknown error")
  text = text.split("; NodeDef:")[0].strip()
  if len(text) > _MAX_OP_MESSAGE:
    text = text[:_MAX_OP_MESSAGE - 3] + "..."
  if "bfloat16" in text:
    text += (" (this CPU lacks a bfloat16 kernel the model was exported with:"
             " re-export it with tools/export.py --savedmodel DIR --output NEW"
             ")")
  return text
