"""Noise level estimation, shared by the classical and diffusion denoisers."""
from __future__ import annotations

import numpy as np

# median(|N(0, 1)|): turns the median absolute deviation into a Gaussian sigma.
_MAD_TO_SIGMA = 0.6744897501960817


def _frame_sigma(img: np.ndarray) -> float:
    """Donoho's robust estimator: MAD of the finest diagonal Haar wavelet sub-band / 0.6745.

    This is what skimage.restoration.estimate_sigma computes (with a Daubechies wavelet), written
    out because that function needs PyWavelets, which is not among our dependencies. The diagonal
    band of an orthonormal Haar transform, (a - b - c + d) / 2 over 2x2 blocks, keeps white noise at
    its sigma while smooth content and straight edges cancel; the median ignores the rest.
    """
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    x = img[:h, :w]
    hh = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) * 0.5
    per_channel = np.median(np.abs(hh.reshape(-1, img.shape[2])), axis=0) / _MAD_TO_SIGMA
    return float(np.mean(per_channel))


def estimate_noise_sigma(frames, max_frames: int = 5) -> float:
    """Gaussian noise sigma on the 0-255 scale, estimated from up to `max_frames` frames.

    frames: (T, H, W, C) or (H, W, C), float in [0, 1] or uint8/uint16 integers.
    Takes the median of per-frame estimates over evenly spaced frames, so one odd frame (a flash,
    a fade) cannot skew it.
    """
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ValueError(f"expected frames shaped (T, H, W, C), got {arr.shape}")
    scale = 255.0 / np.iinfo(arr.dtype).max if np.issubdtype(arr.dtype, np.integer) else 255.0
    if min(arr.shape[1], arr.shape[2]) < 2:
        return 0.0  # a 1-pixel-wide frame carries no usable noise statistics
    picks = np.unique(np.linspace(0, arr.shape[0] - 1, num=min(max_frames, arr.shape[0])).round().astype(int))
    sigmas = [_frame_sigma(arr[i].astype(np.float32) * scale) for i in picks]
    return float(np.median(sigmas))
