"""Reading any image file as 8-bit RGB, and writing PNGs.

The codec takes uint8 ``[H, W, 3]`` RGB. :func:`read_image` converts every
file Pillow can open to that, by one fixed rule, so that what is coded (and
what bpp and PSNR are measured on) is well defined:

1. EXIF orientation is applied (``PIL.ImageOps.exif_transpose``): the image is
   coded as it is displayed. Multi-frame files (GIF, TIFF) give their first
   frame.
2. Grayscale is replicated to R = G = B, after scaling to 8 bits:
   ``1`` and ``L`` as they are; 16-bit ``I;16*`` and 32-bit ``I`` (Pillow's
   mode for some 16-bit PNGs and TIFFs) from [0, 65535] by ``round(v / 257)``;
   float ``F`` from [0, 1] by ``round(255 v)``; values out of range are
   clipped.
   16-bit *color* (48- and 64-bit PNGs) Pillow itself reads as 8-bit
   ``RGB``/``RGBA``, keeping the high byte of each sample (``v // 256``).
3. Palette images (``P``) are expanded to RGB, or to RGBA first if the palette
   has a transparent entry (``transparency`` in ``info``).
4. Alpha (``RGBA``, ``LA``, ``PA``, premultiplied ``RGBa``/``La``, transparent
   palette entries, and the transparent color of color-keyed ``L``/``RGB``
   images, i.e. a PNG ``tRNS`` chunk) is composited over white:
   ``round((c * a + 255 * (255 - a)) / 255)``.
5. Every other mode (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX``) is
   converted by Pillow's ``convert("RGB")``. Embedded ICC profiles are not
   applied.

Anything that is not a readable image raises
:class:`~tfrnncomp.errors.InputError` with a one-line message naming the file:
a missing path, a directory, an empty, corrupt, truncated or foreign file, a
decompression bomb (Pillow's ``DecompressionBombWarning`` is an error here,
i.e. more than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels), or more than
:data:`MAX_PIXELS` pixels. Sizes are checked from the file's header, before
any pixel is decoded, so huge declared dimensions cost nothing. A file cut
short of its pixel data is an error (Pillow's ``LOAD_TRUNCATED_IMAGES`` is
left off): a JPEG even if only its end marker is missing, while a PNG whose
pixel data are complete reads without its final ``IEND`` chunk.

:func:`write_png` writes a uint8 ``[H, W, 3]`` array as an 8-bit RGB PNG,
atomically (a temporary file renamed into place).
"""

import io
import os
import warnings

import numpy as np
from PIL import Image
from PIL import ImageOps

from tfrnncomp import errors

__all__ = ["MAX_PIXELS", "read_image", "to_rgb", "encode_png", "write_png"]

MAX_PIXELS = 2 ** 28
"""Most pixels :func:`read_image` accepts (the code files' limit)."""

_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _composite_over_white(rgba):
  """uint8 [H, W, 4] -> uint8 [H, W, 3] over a white background."""
  rgba = rgba.astype(np.uint32)
  color, alpha = rgba[..., :3], rgba[..., 3:]
  out = (color * alpha + 255 * (255 - alpha) + 127) // 255
  return out.astype(np.uint8)


def _gray_to_uint8(image):
  """A one-channel Pillow image -> uint8 [H, W] by the documented scaling."""
  if image.mode in ("1", "L"):
    return np.asarray(image.convert("L"), np.uint8)
  values = np.asarray(image)
  if image.mode == "F":
    values = values.astype(np.float64) * 255.
  else:  # I;16, I;16B, I;16L, I;16N, I: 16-bit data.
    values = values.astype(np.float64) / 257.
  return np.clip(np.round(values), 0, 255).astype(np.uint8)


def to_rgb(image):
  """A Pillow image (already oriented) -> uint8 [H, W, 3] by the rules above."""
  mode = image.mode
  if mode == "P":
    mode = "PA" if "transparency" in image.info else "RGB"
    image = image.convert("RGBA" if mode == "PA" else "RGB")
  elif mode in ("L", "RGB") and "transparency" in image.info:
    mode = "RGBA"  # A color key (PNG tRNS): that color is transparent.
  if mode in _ALPHA_MODES:
    return _composite_over_white(np.asarray(image.convert("RGBA")))
  if mode == "RGB":
    return np.asarray(image, np.uint8)
  if mode in ("1", "L", "F", "I") or mode.startswith("I;16"):
    gray = _gray_to_uint8(image)
    return np.repeat(gray[..., None], 3, axis=-1)
  return np.asarray(image.convert("RGB"), np.uint8)


def read_image(path):
  """Reads an image file as uint8 [H, W, 3] RGB (see the module docstring).

  Raises:
    InputError: if ``path`` is not a readable image of at most
      :data:`MAX_PIXELS` pixels.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory, not an image")
  if not os.path.exists(path):
    raise errors.InputError(f"{path}: no such file")
  if os.path.getsize(path) == 0:
    raise errors.InputError(f"{path} is empty")
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      with Image.open(path) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
          raise errors.InputError(f"{path} has {width}x{height} pixels, more "
                                  f"than the maximum of {MAX_PIXELS}")
        image.load()
        image = ImageOps.exif_transpose(image)
        rgb = to_rgb(image)
  except errors.InputError:
    raise
  except PermissionError as e:
    raise errors.InputError(f"{path}: {e.strerror}") from None
  except Image.UnidentifiedImageError:
    raise errors.InputError(f"{path} is not an image file Pillow can read"
                            ) from None
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    raise errors.InputError(f"{path} is too large (decompression bomb "
                            f"check): {_one_line(e)}") from None
  except Exception as e:  # pylint: disable=broad-except
    # Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError,
    # struct.error, zlib.error, ... on corrupt or truncated data.
    raise errors.InputError(f"{path} is corrupt or truncated: "
                            f"{_one_line(e)}") from None
  if rgb.ndim != 3 or rgb.shape[-1] != 3 or min(rgb.shape[:2]) < 1:
    raise errors.InputError(f"{path}: cannot convert to RGB (got an array of "
                            f"shape {rgb.shape})")
  return np.ascontiguousarray(rgb)


def _one_line(error):
  text = " ".join(str(error).split()) or type(error).__name__
  return text[:200]


def encode_png(image):
  """uint8 [H, W, 3] -> PNG bytes."""
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise errors.InputError(f"expected a uint8 [H, W, 3] image, got "
                            f"{image.dtype} of shape {image.shape}")
  buffer = io.BytesIO()
  Image.fromarray(image, "RGB").save(buffer, format="PNG")
  return buffer.getvalue()


def write_png(path, image, overwrite=False):
  """Writes uint8 [H, W, 3] ``image`` to ``path`` as a PNG, atomically.

  Raises:
    InputError: if ``image`` is not uint8 [H, W, 3], or ``path`` exists and
      ``overwrite`` is false.
  """
  from tfrnncomp.export import write_atomic  # pylint: disable=g-import-not-at-top
  data = encode_png(image)
  if os.path.isdir(path):
    raise errors.InputError(f"{path} is a directory")
  if os.path.exists(path) and not overwrite:
    raise errors.InputError(f"{path} exists (use --overwrite to replace it)")
  write_atomic(path, data)
