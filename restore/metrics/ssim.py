"""SSIM as Wang et al. 2004 define it: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03,
population (not sample) covariance, explicit data range.

`ssim_skimage` is the reference: scikit-image's structural_similarity with exactly those
arguments (its defaults, a 7x7 uniform window and sample covariance, give different numbers).
`ssim` computes the same quantity with OpenCV's separable Gaussian filter in float32 on data
scaled to [0, 1], several times faster on large frames; scikit-image filters with scipy in
'reflect' mode and then drops a 5-pixel border, so border handling cannot differ, and the
tests check the two agree to 1e-4. Both take single-channel images (Y by default in `score`).
"""
from __future__ import annotations

import numpy as np

SIGMA = 1.5
K1, K2 = 0.01, 0.03
WIN = 11  # scikit-image: 2 * int(3.5 * sigma + 0.5) + 1
_PAD = (WIN - 1) // 2


def ssim_skimage(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(
        np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=float(data_range),
        gaussian_weights=True, sigma=SIGMA, use_sample_covariance=False, K1=K1, K2=K2,
        channel_axis=None))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean SSIM of two 2-D arrays (Wang 2004 settings); data_range is the peak-to-peak of the data."""
    import cv2

    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim expects two equal 2-D arrays, got {a.shape} and {b.shape}")
    if min(a.shape) < WIN:
        raise ValueError(f"ssim needs frames of at least {WIN}x{WIN} pixels, got {a.shape[1]}x{a.shape[0]}")
    s = np.float32(1.0 / float(data_range))
    x = a.astype(np.float32)
    x *= s
    y = b.astype(np.float32)
    y *= s

    def blur(img, dst=None):
        return cv2.GaussianBlur(img, (WIN, WIN), SIGMA, dst=dst, borderType=cv2.BORDER_REFLECT)

    # in-place arithmetic: at 1080p every temporary costs about as much as a blur
    mx, my = blur(x), blur(y)
    xy = x * y
    blur(xy, xy)
    x *= x
    blur(x, x)                       # E[x^2]
    y *= y
    blur(y, y)                       # E[y^2]
    x += y                           # E[x^2] + E[y^2]
    mxy = mx * my
    mx *= mx
    my *= my
    mx += my                         # mx^2 + my^2
    x -= mx                          # sigma_x^2 + sigma_y^2
    x += K2 * K2
    mx += K1 * K1
    x *= mx                          # denominator
    xy -= mxy                        # sigma_xy
    xy *= 2
    xy += K2 * K2
    mxy *= 2
    mxy += K1 * K1
    xy *= mxy                        # numerator
    xy /= x
    return float(xy[_PAD:-_PAD, _PAD:-_PAD].mean(dtype=np.float64))
