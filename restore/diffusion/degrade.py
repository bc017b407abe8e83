"""Degradations used to synthesise training pairs and to build model inputs.

The MATLAB bicubic resize is `restore.ops.resize` (bi_downscale below uses it).
"""
from __future__ import annotations

import numpy as np

from ..ops.resize import imresize_hwc


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip a float [0,1] (H,W,3) RGB image through JPEG at `quality`."""
    import cv2

    u8 = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255


def gaussian_noise(img: np.ndarray, sigma255: float, rng: np.random.Generator) -> np.ndarray:
    return img + rng.standard_normal(img.shape, dtype=np.float32) * (sigma255 / 255.0)


# ---- evaluation protocols (restore.eval re-exports them; the quick validation uses them) --------

NOISE_SEED = 20240415  # evaluation noise (the value the earlier validation tables used)


def add_noise(frames_u8: np.ndarray, sigma: float, seed: int = NOISE_SEED) -> np.ndarray:
    """Gaussian noise of std `sigma` (0-255) on uint8 (T, H, W, 3) frames, clipped and rounded to uint8.

    One generator per (seed, sigma), drawn frame by frame in float32, so the first N frames get the
    same noise whether 4 or 60 frames are processed: a quick run scores a prefix of the full run."""
    frames_u8 = np.asarray(frames_u8)
    if frames_u8.dtype != np.uint8:
        raise TypeError(f"add_noise takes uint8 frames, got {frames_u8.dtype}")
    rng = np.random.default_rng([int(seed), int(round(float(sigma) * 100))])
    out = np.empty_like(frames_u8)
    for i, f in enumerate(frames_u8):
        noisy = f.astype(np.float32) + rng.standard_normal(f.shape, dtype=np.float32) * np.float32(sigma)
        out[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


def bi_downscale(hr_u8: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic (antialiased) downscale of uint8 (..., H, W, 3) by `scale`, rounded to uint8.
    H and W must be multiples of `scale` (crop to a multiple first)."""
    h, w = hr_u8.shape[-3], hr_u8.shape[-2]
    if h % scale or w % scale:
        raise ValueError(f"{w}x{h} is not a multiple of {scale}: crop_to_multiple first")
    if hr_u8.ndim == 4:  # frame by frame: bounded memory on long clips
        return np.stack([bi_downscale(f, scale) for f in hr_u8])
    lr = imresize_hwc(hr_u8.astype(np.float32) / 255.0, (h // scale, w // scale))
    return np.clip(np.rint(lr * 255.0), 0, 255).astype(np.uint8)
