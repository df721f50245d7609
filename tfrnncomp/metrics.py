"""Image quality metrics on decoded 8-bit RGB images: PSNR, MS-SSIM, PSNR-HVS.

All functions take two uint8 (or integer-valued) arrays of the same shape,
``[H, W, 3]`` RGB or ``[H, W]`` grayscale, and return a Python float. They use
NumPy only, so results do not depend on TensorFlow's float32 kernels.

PSNR (``psnr``) is computed over the RGB channels jointly, as CompressAI's
``psnr-rgb`` and the tensorflow/compression result files ("PSNR/sRGB/R'G'B'"):

    PSNR = 10 log10(255^2 / MSE),  MSE = mean over all pixels and channels.

MS-SSIM (``ms_ssim``) follows the original release of Toderici et al. 2017,
``research/compression/image_encoder/msssim.py`` in tensorflow/models, which
is Z. Wang, E. P. Simoncelli, A. C. Bovik, "Multi-scale structural similarity
for image quality assessment", Asilomar 2003, as in Wang's MATLAB code:

- an 11x11 Gaussian window, sigma = 1.5, reduced to ``size = min(11, H, W)``
  at small scales with sigma scaled to ``1.5 * size / 11``; "valid" filtering
  (no padding), each channel separately;
- C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2;
- at each of 5 scales, ``ssim`` and ``cs`` are the means of the SSIM and
  contrast-structure maps over all positions *and channels jointly*;
- between scales a 2x2 box filter (edge samples repeated, i.e. SciPy's
  ``mode='reflect'``) then keeping every second row and column;
- MS-SSIM = prod_{j<5} cs_j^w_j * ssim_5^w_5, with the paper's weights
  w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) (they do not sum to 1).

It differs from ``tf.image.ssim_multiscale`` in two ways: TensorFlow computes
MS-SSIM per channel and averages the per-channel products (here the scales'
means are taken over the channels first), and it clips negative ``cs``/``ssim``
to 0 (here, as in the original, a negative value -- only for anti-correlated
images -- gives NaN). On one channel the two agree to float32 precision.
``ms_ssim_db`` maps a value to decibels, ``-10 log10(1 - MS-SSIM)``, as the
tensorflow/compression results recommend for plotting.

PSNR-HVS (``psnr_hvs``) and PSNR-HVS-M (``psnr_hvs_m``) are those of
K. Egiazarian, J. Astola, N. Ponomarenko, V. Lukin, F. Battisti, M. Carli,
"New full-reference quality metrics based on HVS", VPQM 2006, and
N. Ponomarenko, F. Silvestri, K. Egiazarian, M. Carli, J. Astola, V. Lukin,
"On between-coefficient contrast masking of DCT basis functions", VPQM 2007,
following the authors' ``psnrhvsm.m``: the luma (BT.601 weights, unrounded)
is cut into non-overlapping 8x8 blocks from the top-left corner (a partial
block at the right or bottom edge is ignored), each block is transformed by
the orthonormal 2-D DCT-II, the coefficient differences are weighted by the
CSF table ``CSF_COF`` and

    PSNR-HVS = 10 log10(255^2 / mean_{blocks, k, l}((dX_kl * CSF_kl)^2)).

PSNR-HVS-M first lowers each AC difference by the block's masking threshold
``E / MASK_COF_kl`` (E from the larger of the two blocks' masking energies,
Eq. 3 of the 2007 paper) and clips it at 0.

Values for identical images are capped at :data:`CAP_DB` (100 dB) instead of
infinity, so they can be averaged and written to JSON.
"""

import numpy as np

from tfrnncomp import errors

__all__ = ["CAP_DB", "MS_SSIM_WEIGHTS", "CSF_COF", "MASK_COF", "mse", "psnr",
           "ms_ssim", "ms_ssim_db", "luma", "psnr_hvs", "psnr_hvs_m"]

CAP_DB = 100.
"""Value of the dB metrics for identical images (and their upper bound)."""

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Per-scale exponents of Wang et al. 2003 (finest scale first)."""

CSF_COF = np.array("""
1.608443 2.339554 2.573509 1.608443 1.072295 0.643377 0.504610 0.421887
2.144591 2.144591 1.838221 1.354478 0.989811 0.443708 0.428918 0.467911
1.838221 1.979622 1.608443 1.072295 0.643377 0.451493 0.372972 0.459555
1.838221 1.513829 1.169777 0.887417 0.504610 0.295806 0.321689 0.415082
1.429727 1.169777 0.695543 0.459555 0.378457 0.236102 0.249855 0.334222
1.072295 0.735288 0.467911 0.402111 0.317717 0.247453 0.227744 0.279729
0.525206 0.402111 0.329937 0.295806 0.249855 0.212687 0.214459 0.254803
0.357432 0.279729 0.270896 0.262603 0.229778 0.257351 0.249855 0.259950
""".split(), np.float64).reshape(8, 8)
"""CSF weights of the 8x8 DCT coefficients (Egiazarian et al. 2006), [k, l]."""

MASK_COF = np.array("""
0.390625 0.826446 1.000000 0.390625 0.173611 0.062500 0.038447 0.026874
0.694444 0.694444 0.510204 0.277008 0.147929 0.029727 0.027778 0.033058
0.510204 0.591716 0.390625 0.173611 0.062500 0.030779 0.021004 0.031888
0.510204 0.346021 0.206612 0.118906 0.038447 0.013212 0.015625 0.026015
0.308642 0.206612 0.073046 0.031888 0.021626 0.008417 0.009426 0.016866
0.173611 0.081633 0.033058 0.024414 0.015242 0.009246 0.007831 0.011815
0.041649 0.024414 0.016437 0.013212 0.009426 0.006830 0.006944 0.009803
0.019290 0.011815 0.011080 0.010412 0.007972 0.010000 0.009426 0.010203
""".split(), np.float64).reshape(8, 8)
"""Contrast-masking weights of the DCT coefficients (Ponomarenko 2007)."""

_BT601 = np.array([0.299, 0.587, 0.114])


def _pair(x, x_hat):
  """Validates two images and returns them as float64 [H, W, C] arrays."""
  x, x_hat = np.asarray(x), np.asarray(x_hat)
  if x.shape != x_hat.shape:
    raise errors.InputError(f"images differ in shape: {x.shape} vs "
                            f"{x_hat.shape}")
  if x.ndim == 2:
    x, x_hat = x[..., None], x_hat[..., None]
  if x.ndim != 3 or 0 in x.shape:
    raise errors.InputError(f"expected [H, W, C] or [H, W] images, got shape "
                            f"{x.shape}")
  return x.astype(np.float64), x_hat.astype(np.float64)


def _to_db(mean_squared_error, peak=255.):
  if mean_squared_error <= 0:
    return CAP_DB
  return float(min(CAP_DB, 10. * np.log10(peak ** 2 / mean_squared_error)))


def mse(x, x_hat):
  """Mean squared error over all pixels and channels."""
  x, x_hat = _pair(x, x_hat)
  return float(np.mean(np.square(x - x_hat)))


def psnr(x, x_hat, max_val=255.):
  """PSNR in dB over the channels jointly; :data:`CAP_DB` if equal."""
  return _to_db(mse(x, x_hat), max_val)


def _gaussian(size, sigma):
  """Normalized 1-D Gaussian of ``size`` taps centred between the ends.

  Its outer product with itself is MATLAB's ``fspecial('gaussian')``, for even
  sizes too (taps at half-integer offsets).
  """
  t = np.arange(size) - (size - 1) / 2.
  g = np.exp(-t ** 2 / (2. * sigma ** 2))
  return g / g.sum()


def _filter_valid(a, taps):
  """Separable 'valid' filtering of [..., H, W, C] along H and W."""
  window = np.lib.stride_tricks.sliding_window_view
  rows = window(a, len(taps), axis=-3) @ taps
  return window(rows, len(taps), axis=-2) @ taps


def _ssim_and_cs(x, y, max_val, filter_size, filter_sigma, k1, k2):
  """Mean SSIM and contrast-structure of one scale (channels jointly)."""
  height, width = x.shape[:2]
  size = min(filter_size, height, width)
  sigma = size * filter_sigma / filter_size
  moments = _filter_valid(np.stack([x, y, x * x, y * y, x * y]),
                          _gaussian(size, sigma))
  mu1, mu2, e11, e22, e12 = moments
  mu11, mu22, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
  sigma11, sigma22, sigma12 = e11 - mu11, e22 - mu22, e12 - mu12
  c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
  v1 = 2. * sigma12 + c2
  v2 = sigma11 + sigma22 + c2
  ssim = np.mean((2. * mu12 + c1) * v1 / ((mu11 + mu22 + c1) * v2))
  cs = np.mean(v1 / v2)
  return ssim, cs


def _downsample(a):
  """2x2 box filter with the last row/column repeated, then [::2, ::2]."""
  a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2), (0, 0)),
             mode="edge")
  return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def ms_ssim(x, x_hat, max_val=255., filter_size=11, filter_sigma=1.5,
            k1=0.01, k2=0.03, weights=MS_SSIM_WEIGHTS):
  """MS-SSIM of Wang et al. 2003 as in the original release's ``msssim.py``.

  Args:
    x: the original, uint8 [H, W, 3] (or [H, W]).
    x_hat: the reconstruction, same shape.
    max_val: the dynamic range (255 for 8-bit images).
    filter_size: Gaussian window size (reduced to the image size if larger).
    filter_sigma: Gaussian standard deviation (scaled with the size).
    k1: SSIM luminance constant.
    k2: SSIM contrast constant.
    weights: exponents per scale, finest first; their number is the number of
      scales.

  Returns:
    MS-SSIM as a float, 1.0 for identical images.
  """
  x, y = _pair(x, x_hat)
  weights = np.asarray(weights, np.float64)
  ssims, css = [], []
  for level in range(weights.size):
    if level:
      x, y = _downsample(x), _downsample(y)
    ssim, cs = _ssim_and_cs(x, y, max_val, filter_size, filter_sigma, k1, k2)
    ssims.append(ssim)
    css.append(cs)
  with np.errstate(invalid="ignore"):
    value = (np.prod(np.power(css[:-1], weights[:-1])) *
             ssims[-1] ** weights[-1])
  return float(value)


def ms_ssim_db(value):
  """MS-SSIM in dB, ``-10 log10(1 - value)``, capped at :data:`CAP_DB`."""
  value = float(value)
  if value >= 1.:
    return CAP_DB
  return float(min(CAP_DB, -10. * np.log10(1. - value)))


def luma(image):
  """BT.601 luma Y' = 0.299 R' + 0.587 G' + 0.114 B' (float, unrounded).

  A single-channel image is returned as it is (as float).
  """
  image = np.asarray(image, np.float64)
  if image.ndim == 2:
    return image
  if image.ndim == 3 and image.shape[-1] == 1:
    return image[..., 0]
  if image.ndim != 3 or image.shape[-1] != 3:
    raise errors.InputError(f"expected an RGB [H, W, 3] or grayscale image, "
                            f"got shape {image.shape}")
  return image @ _BT601


def _dct_matrix(n=8):
  """Orthonormal DCT-II matrix: D @ block @ D.T is MATLAB's ``dct2``."""
  k = np.arange(n)[:, None]
  m = np.arange(n)[None, :]
  d = np.cos(np.pi * (2 * m + 1) * k / (2 * n)) * np.sqrt(2. / n)
  d[0] /= np.sqrt(2.)
  return d


def _blocks(y):
  """Non-overlapping 8x8 blocks of a 2-D array, [N, 8, 8]; edges ignored."""
  h, w = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
  return (y[:h, :w].reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)
          .reshape(-1, 8, 8))


def _masking_energy(blocks, dct):
  """Masking threshold E of each block (``maskeff`` of ``psnrhvsm.m``)."""
  weights = MASK_COF.copy()
  weights[0, 0] = 0.  # The DC coefficient does not mask.
  energy = np.einsum("nkl,kl->n", dct ** 2, weights)

  def spread(a):  # var(a(:)) * numel(a(:)), MATLAB's var: N - 1 normalized.
    a = a.reshape(a.shape[0], -1)
    return np.var(a, axis=1, ddof=1) * a.shape[1]

  total = spread(blocks)
  quadrants = (spread(blocks[:, :4, :4]) + spread(blocks[:, :4, 4:]) +
               spread(blocks[:, 4:, 4:]) + spread(blocks[:, 4:, :4]))
  ratio = np.divide(quadrants, total, out=np.zeros_like(total),
                    where=total != 0)
  return np.sqrt(energy * ratio) / 32.


def _psnr_hvs(y, y_hat, csf=CSF_COF, masking=False):
  """PSNR-HVS(-M) of two 2-D luma arrays; see the module docstring."""
  if min(y.shape) < 8:
    raise errors.InputError(f"PSNR-HVS needs at least 8x8 pixels, got "
                            f"{y.shape[0]}x{y.shape[1]}")
  d = _dct_matrix()
  a, b = _blocks(y), _blocks(y_hat)
  a_dct, b_dct = d @ a @ d.T, d @ b @ d.T
  u = np.abs(a_dct - b_dct)
  if masking:
    mask = np.maximum(_masking_energy(a, a_dct), _masking_energy(b, b_dct))
    threshold = mask[:, None, None] / MASK_COF
    threshold[:, 0, 0] = 0.  # No masking of the DC coefficient.
    u = np.maximum(u - threshold, 0.)
  return _to_db(float(np.mean(np.square(u * csf))))


def psnr_hvs(x, x_hat):
  """PSNR-HVS (Egiazarian et al. 2006) on the BT.601 luma, in dB."""
  x, x_hat = _pair(x, x_hat)
  return _psnr_hvs(luma(x), luma(x_hat))


def psnr_hvs_m(x, x_hat):
  """PSNR-HVS-M (Ponomarenko et al. 2007) on the BT.601 luma, in dB."""
  x, x_hat = _pair(x, x_hat)
  return _psnr_hvs(luma(x), luma(x_hat), masking=True)
