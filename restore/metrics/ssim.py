"""SSIM as Wang et al. 2004 define it: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03,
population (not sample) covariance, explicit data range.

`ssim_skimage` is the reference: scikit-image's structural_similarity with exactly those
arguments (its defaults, a 7x7 uniform window and sample covariance, give different numbers).
`ssim` computes the same quantity with OpenCV's separable Gaussian filter in float32 on data
scaled to [0, 1], several times faster on large frames; scikit-image filters with scipy in
'reflect' mode and then drops a 5-pixel border, so only windows inside the image count and
border handling cannot differ; the tests check the two agree to 1e-4. Both take single-channel images (Y by default in `score`).
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


STRIP = 96   # output rows per strip: the strip's float32 temporaries stay in the CPU caches


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean SSIM of two 2-D arrays (Wang 2004 settings); data_range is the peak-to-peak of the data.

    scikit-image averages the SSIM map without a 5-pixel border, i.e. over exactly the windows
    that lie inside the image, so only those are computed, in horizontal strips (each with the
    5 rows above and below it that its windows reach): border handling never enters, and the
    strips' temporaries stay in cache (a quarter less CPU than whole frames at 1080p)."""
    import cv2

    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim expects two equal 2-D arrays, got {a.shape} and {b.shape}")
    if min(a.shape) < WIN:
        raise ValueError(f"ssim needs frames of at least {WIN}x{WIN} pixels, got {a.shape[1]}x{a.shape[0]}")
    scale = np.float32(1.0 / float(data_range))
    c1, c2 = np.float32(K1 * K1), np.float32(K2 * K2)
    h = a.shape[0]
    total, count = 0.0, 0

    def blur(img):
        out = cv2.GaussianBlur(img, (WIN, WIN), SIGMA, borderType=cv2.BORDER_REFLECT)
        return out[_PAD:-_PAD, _PAD:-_PAD]   # the windows entirely inside the strip

    for r0 in range(_PAD, h - _PAD, STRIP):
        r1 = min(r0 + STRIP, h - _PAD)
        x = np.multiply(a[r0 - _PAD:r1 + _PAD], scale, dtype=np.float32)
        y = np.multiply(b[r0 - _PAD:r1 + _PAD], scale, dtype=np.float32)
        # in-place arithmetic: every temporary costs about as much as a blur
        mx, my = blur(x), blur(y)
        sxy = blur(x * y)                # E[xy]
        x *= x
        y *= y
        x += y
        # SSIM needs sigma_x^2 and sigma_y^2 only as their sum, and the blur is linear:
        # one blur of x^2 + y^2 instead of two (four blurs per frame, not five)
        sxx = blur(x)                    # E[x^2] + E[y^2]
        mxy = mx * my
        mx *= mx
        my *= my
        mx += my                         # mx^2 + my^2
        sxx -= mx                        # sigma_x^2 + sigma_y^2
        sxx += c2
        mx += c1
        sxx *= mx                        # denominator
        sxy -= mxy                       # sigma_xy
        sxy *= 2
        sxy += c2
        mxy *= 2
        mxy += c1
        sxy *= mxy                       # numerator
        sxy /= sxx
        total += float(sxy.sum(dtype=np.float64))
        count += sxy.size
    return total / count


# ---- ffmpeg's ssim filter (x264's approximation) ----------------------------------------------------
#
# ffmpeg (libavfilter/vf_ssim.c, from x264) replaces the Gaussian window by 8x8 windows on a
# 4-pixel grid: per plane, integer sums of a, b, a^2 + b^2 and a*b over 4x4 blocks, then every
# 2x2 group of blocks is one window, SSIM per window from the sums with
# C1 = round(0.01^2 max^2 64), C2 = round(0.03^2 max^2 64 63) (max = 2^bits - 1), the plane's
# value the mean over its (w/4 - 1)(h/4 - 1) windows, a frame's "All" the planes weighted by
# their share of samples, the sequence value the mean over frames. Far cheaper than Gaussian
# windows, and the number engineers cross-check with ffmpeg, so `ssim_mode="ffmpeg"` gives it.
# The block sums are exact: float32 holds every 4x4 sum of 8-bit data exactly (at most
# 16 * 2 * 255^2 < 2^24), float64 those of deeper data; cv2.resize with INTER_AREA at an exact
# factor of 4 is a SIMD block mean, times 16 a block sum.


def _block_sums(a: np.ndarray, b: np.ndarray, deep: bool) -> np.ndarray:
    import cv2

    h4, w4 = a.shape[0] >> 2, a.shape[1] >> 2
    a = a[:h4 * 4, :w4 * 4]
    b = b[:h4 * 4, :w4 * 4]
    ft = np.float64 if deep else np.float32
    fa, fb = a.astype(ft), b.astype(ft)
    ss = cv2.multiply(fa, fa)
    ss += cv2.multiply(fb, fb)
    ab = cv2.multiply(fa, fb)
    size = (w4, h4)
    out = np.empty((4, h4, w4), np.float64)
    for k, m in enumerate((fa, fb, ss, ab)):
        out[k] = cv2.resize(m, size, interpolation=cv2.INTER_AREA)
    out *= 16.0
    return out


def ssim_ffmpeg_plane(a: np.ndarray, b: np.ndarray, bits: int = 8) -> float:
    """ffmpeg's SSIM of one plane (integer code values of `bits` bits); see the note above."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim expects two equal 2-D arrays, got {a.shape} and {b.shape}")
    if min(a.shape) < 8:
        raise ValueError(f"ffmpeg's SSIM needs planes of at least 8x8 pixels, got {a.shape[1]}x{a.shape[0]}")
    mx = float(2 ** int(bits) - 1)
    blk = _block_sums(a, b, int(bits) > 8)
    win = blk[:, :-1, :-1] + blk[:, 1:, :-1] + blk[:, :-1, 1:] + blk[:, 1:, 1:]
    s1, s2, ss, s12 = win
    c1 = float(int(0.01 * 0.01 * mx * mx * 64 + 0.5))
    c2 = float(int(0.03 * 0.03 * mx * mx * 64 * 63 + 0.5))
    s1s2 = s1 * s2
    sq = s1 * s1
    sq += s2 * s2                               # s1^2 + s2^2
    var = ss * 64 - sq
    cov = s12 * 64 - s1s2
    num = (2 * s1s2 + c1) * (2 * cov + c2)
    den = (sq + c1) * (var + c2)
    return float((num / den).mean())


def ssim_ffmpeg(ref_planes, dist_planes, bits: int = 8) -> tuple[float, list[float]]:
    """(All, [per plane]) as ffmpeg's ssim filter reports a frame: planes weighted by sample count."""
    per = [ssim_ffmpeg_plane(a, b, bits) for a, b in zip(ref_planes, dist_planes)]
    sizes = np.array([p.size for p in ref_planes], np.float64)
    return float(np.dot(per, sizes / sizes.sum())), per
