"""Degradations used to synthesise training pairs and to build model inputs.

`imresize` reproduces MATLAB's imresize(..., 'bicubic') (Keys cubic with a = -0.5, antialiased
when shrinking, symmetric borders): it is the 'BI' protocol SR papers and our validation use,
and differs from OpenCV/PyTorch bicubic (a = -0.75, no antialias).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


@functools.lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int) -> np.ndarray:
    """(out_len, in_len) weights of MATLAB's bicubic resize along one axis."""
    scale = out_len / in_len
    width = 4.0
    if scale < 1:
        kernel = lambda v: scale * _cubic(scale * v)  # noqa: E731 - antialiasing widens the kernel
        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based source indices
    weights = kernel(u[:, None] - idx)
    weights /= weights.sum(axis=1, keepdims=True)
    # symmetric (mirror) padding like MATLAB
    idx0 = idx - 1
    period = 2 * in_len
    idx0 = np.mod(idx0, period)
    idx0 = np.where(idx0 >= in_len, period - 1 - idx0, idx0).astype(np.int64)
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), idx0.ravel()), weights.ravel())
    return mat.astype(np.float32)


def imresize(x, out_hw: tuple[int, int]):
    """MATLAB-style bicubic resize of (..., H, W) float data (numpy or torch) to out_hw."""
    h, w = x.shape[-2], x.shape[-1]
    mh, mw = resize_matrix(h, out_hw[0]), resize_matrix(w, out_hw[1])
    if isinstance(x, torch.Tensor):
        mh_t = torch.from_numpy(mh).to(x.device, x.dtype)
        mw_t = torch.from_numpy(mw).to(x.device, x.dtype)
        return torch.matmul(torch.matmul(mh_t, x), mw_t.T)
    return np.matmul(np.matmul(mh, x), mw.T)


def imresize_hwc(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """imresize for (..., H, W, C) arrays."""
    moved = np.moveaxis(np.asarray(img, dtype=np.float32), -1, -3)
    return np.moveaxis(imresize(moved, out_hw), -3, -1)


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
