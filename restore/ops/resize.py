"""MATLAB's bicubic resize: imresize(..., 'bicubic').

Keys cubic with a = -0.5, antialiased when shrinking, symmetric (mirror) borders. It is the 'BI'
protocol that SR papers and our validation use, and it differs from OpenCV / PyTorch bicubic
(a = -0.75, no antialiasing), so those cannot stand in for it.

The resize is separable: one (out, in) weight matrix per axis, applied by matrix products, on
numpy arrays or torch tensors alike (torch is only touched when a tensor is passed in).
"""
from __future__ import annotations

import functools
import math
import sys

import numpy as np

__all__ = ["resize_matrix", "imresize", "imresize_hwc"]


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


def _is_tensor(x) -> bool:
    # a tensor can only exist once torch is imported: no need to import it for numpy input
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def imresize(x, out_hw: tuple[int, int]):
    """MATLAB-style bicubic resize of (..., H, W) float data (numpy or torch) to out_hw."""
    h, w = x.shape[-2], x.shape[-1]
    (oh, ow) = out_hw
    mh, mw = resize_matrix(h, oh), resize_matrix(w, ow)
    # the cheaper order of the two products (rows first costs oh*h*w + oh*w*ow multiply-adds)
    rows_first = oh * h * w + oh * w * ow <= h * w * ow + oh * h * ow
    if _is_tensor(x):
        import torch

        mh_t = torch.from_numpy(mh).to(x.device, x.dtype)
        mw_t = torch.from_numpy(mw).to(x.device, x.dtype)
        if rows_first:
            return torch.matmul(torch.matmul(mh_t, x), mw_t.T)
        return torch.matmul(mh_t, torch.matmul(x, mw_t.T))
    if rows_first:
        return np.matmul(np.matmul(mh, x), mw.T)
    return np.matmul(mh, np.matmul(x, mw.T))


def imresize_hwc(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """imresize for (..., H, W, C) arrays."""
    moved = np.moveaxis(np.asarray(img, dtype=np.float32), -1, -3)
    return np.moveaxis(imresize(moved, out_hw), -3, -1)
