"""Tests of the image quality metrics."""

import numpy as np
import pytest

from tfrnncomp import errors
from tfrnncomp import metrics


def _image(height, width, seed=0, channels=3):
  """A smooth random 'photo' with texture, uint8."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / 17.
  base = np.stack([np.sin(x * (c + 1) * 0.7 + y * 0.3 + c) for c in
                   range(channels)], -1)
  image = 128 + 80 * base + rng.normal(0, 12, [height, width, channels])
  return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _noisy(image, sigma, seed=1):
  rng = np.random.default_rng(seed)
  noise = rng.normal(0, sigma, image.shape)
  return np.clip(np.round(image + noise), 0, 255).astype(np.uint8)


def _original_msssim(img1, img2):
  """The original release's definition, written with SciPy's primitives.

  An independent oracle: the MATLAB-style 2-D window, SciPy's 'valid' FFT
  convolution over [1, H, W, C] and ``scipy.ndimage.convolve`` with a 2x2 box
  in 'reflect' mode, as msssim.py uses them.
  """
  signal = pytest.importorskip("scipy.signal")
  ndimage = pytest.importorskip("scipy.ndimage")
  weights = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
  im1, im2 = img1[None].astype(np.float64), img2[None].astype(np.float64)
  ssims, css = [], []
  for _ in range(5):
    size = min(11, im1.shape[1], im1.shape[2])
    sigma = size * 1.5 / 11
    radius = size // 2
    offset, stop = (0.5, radius) if size % 2 == 0 else (0., radius + 1)
    yy, xx = np.mgrid[offset - radius:stop, offset - radius:stop]
    window = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    window = (window / window.sum()).reshape(1, size, size, 1)
    f = lambda a, w=window: signal.fftconvolve(a, w, mode="valid")
    mu1, mu2 = f(im1), f(im2)
    s11 = f(im1 * im1) - mu1 ** 2
    s22 = f(im2 * im2) - mu2 ** 2
    s12 = f(im1 * im2) - mu1 * mu2
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    v1, v2 = 2 * s12 + c2, s11 + s22 + c2
    ssims.append(np.mean((2 * mu1 * mu2 + c1) * v1 /
                         ((mu1 ** 2 + mu2 ** 2 + c1) * v2)))
    css.append(np.mean(v1 / v2))
    box = np.ones((1, 2, 2, 1)) / 4
    im1, im2 = [ndimage.convolve(a, box, mode="reflect")[:, ::2, ::2]
                for a in (im1, im2)]
  return np.prod(np.array(css[:-1]) ** weights[:-1]) * ssims[-1] ** weights[-1]


def test_identical_images_give_one_and_the_cap():
  x = _image(64, 80)
  assert metrics.ms_ssim(x, x) == pytest.approx(1.0, abs=1e-12)
  assert metrics.psnr(x, x) == metrics.CAP_DB == 100.
  assert metrics.psnr_hvs(x, x) == metrics.CAP_DB
  assert metrics.psnr_hvs_m(x, x) == metrics.CAP_DB
  assert metrics.ms_ssim_db(1.0) == metrics.CAP_DB
  assert metrics.ms_ssim_db(metrics.ms_ssim(x, x)) == metrics.CAP_DB


def test_psnr_of_a_known_error():
  x = np.full([10, 10, 3], 100, np.uint8)
  y = x.copy()
  y[..., 0] += 3  # MSE = 9 / 3 = 3 over the channels jointly.
  assert metrics.psnr(x, y) == pytest.approx(10 * np.log10(255 ** 2 / 3.))
  assert metrics.ms_ssim_db(0.9) == pytest.approx(10.)


@pytest.mark.parametrize("shape", [(96, 128), (77, 61), (40, 52), (24, 19)])
def test_ms_ssim_is_the_original_release_definition(shape):
  """Odd sizes (reflect downsampling) and small ones (a reduced window)."""
  x = _image(*shape, seed=2)
  y = _noisy(x, 15.)
  assert metrics.ms_ssim(x, y) == pytest.approx(_original_msssim(x, y),
                                                abs=1e-12)


def test_ms_ssim_against_tensorflow():
  """tf.image.ssim_multiscale with the same settings on 256x256.

  On one channel the definitions are the same; on RGB TensorFlow averages
  per-channel MS-SSIMs where the original pools channels within each scale,
  which moves the value by well under 1e-3.
  """
  tf = pytest.importorskip("tensorflow")
  x = _image(256, 256, seed=3)
  for sigma in (4., 20.):
    y = _noisy(x, sigma)
    expected = tf.image.ssim_multiscale(
        tf.constant(x), tf.constant(y), max_val=255., filter_size=11,
        filter_sigma=1.5, k1=0.01, k2=0.03).numpy()
    assert metrics.ms_ssim(x, y) == pytest.approx(float(expected), abs=1e-3)
    gray = tf.image.ssim_multiscale(tf.constant(x[..., :1]),
                                    tf.constant(y[..., :1]), 255.).numpy()
    assert metrics.ms_ssim(x[..., 0], y[..., 0]) == pytest.approx(
        float(gray), abs=2e-5)


def test_metrics_fall_as_noise_grows():
  x = _image(96, 96, seed=4)
  noisy = [_noisy(x, sigma) for sigma in (2., 5., 10., 20., 40.)]
  for metric in (metrics.psnr, metrics.ms_ssim, metrics.psnr_hvs,
                 metrics.psnr_hvs_m):
    values = [metric(x, y) for y in noisy]
    assert all(a > b for a, b in zip(values, values[1:])), (metric, values)


def _psnrhvsm_loops(img1, img2):
  """``psnrhvsm.m``'s loops, block by block, with SciPy's ``dct2``."""
  fft = pytest.importorskip("scipy.fft")
  dct2 = lambda a: fft.dctn(a, norm="ortho")

  def vari(a):
    return np.var(a, ddof=1) * a.size

  def maskeff(z, zdct):
    m = sum(zdct[k, l] ** 2 * metrics.MASK_COF[k, l]
            for k in range(8) for l in range(8) if k or l)
    pop = vari(z)
    if pop != 0:
      pop = (vari(z[:4, :4]) + vari(z[:4, 4:]) + vari(z[4:, 4:]) +
             vari(z[4:, :4])) / pop
    return np.sqrt(m * pop) / 32

  s1 = s2 = num = 0.
  for y in range(0, img1.shape[0] - 7, 8):
    for x in range(0, img1.shape[1] - 7, 8):
      a, b = img1[y:y + 8, x:x + 8], img2[y:y + 8, x:x + 8]
      a_dct, b_dct = dct2(a), dct2(b)
      mask = max(maskeff(a, a_dct), maskeff(b, b_dct))
      for k in range(8):
        for l in range(8):
          u = abs(a_dct[k, l] - b_dct[k, l])
          s2 += (u * metrics.CSF_COF[k, l]) ** 2
          if k or l:
            u = max(u - mask / metrics.MASK_COF[k, l], 0.)
          s1 += (u * metrics.CSF_COF[k, l]) ** 2
          num += 1
  return (10 * np.log10(255 ** 2 / (s1 / num)),
          10 * np.log10(255 ** 2 / (s2 / num)))


def test_psnr_hvs_is_the_authors_algorithm():
  x = _image(35, 42, seed=7)
  y = _noisy(x, 9.)
  hvs_m, hvs = _psnrhvsm_loops(metrics.luma(x), metrics.luma(y))
  assert metrics.psnr_hvs(x, y) == pytest.approx(hvs, abs=1e-9)
  assert metrics.psnr_hvs_m(x, y) == pytest.approx(hvs_m, abs=1e-9)
  # A flat block (zero variance) has no masking.
  flat = np.full([16, 16, 3], 90, np.uint8)
  hvs_m, _ = _psnrhvsm_loops(metrics.luma(flat), metrics.luma(_noisy(flat, 3)))
  assert metrics.psnr_hvs_m(flat, _noisy(flat, 3)) == pytest.approx(hvs_m)


def test_psnr_hvs_with_flat_weights_is_the_luma_psnr():
  """The orthonormal DCT keeps the error energy (Parseval)."""
  x = _image(40, 56, seed=5)
  y = _noisy(x, 8.)
  lx, ly = metrics.luma(x), metrics.luma(y)
  # pylint: disable-next=protected-access
  flat = metrics._psnr_hvs(lx, ly, csf=np.ones([8, 8]))
  mse = np.mean((lx - ly) ** 2)
  assert flat == pytest.approx(10 * np.log10(255 ** 2 / mse), abs=1e-9)
  # Masking only removes error: PSNR-HVS-M >= PSNR-HVS.
  assert metrics.psnr_hvs_m(x, y) >= metrics.psnr_hvs(x, y)


def test_psnr_hvs_ignores_partial_edge_blocks():
  x = _image(20, 21, seed=6)
  y = x.copy()
  y[16:, :] = 0  # Only rows outside the 2x2 whole 8x8 blocks change.
  y[:, 16:] = 0
  assert metrics.psnr_hvs(x, y) == metrics.CAP_DB


def test_bad_inputs_are_input_errors():
  with pytest.raises(errors.InputError, match="shape"):
    metrics.psnr(np.zeros([4, 4, 3]), np.zeros([4, 5, 3]))
  with pytest.raises(errors.InputError):
    metrics.ms_ssim(np.zeros([4]), np.zeros([4]))
  with pytest.raises(errors.InputError, match="8x8"):
    metrics.psnr_hvs(np.zeros([4, 9, 3]), np.zeros([4, 9, 3]))
