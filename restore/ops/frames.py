"""Conversions between stored frames (uint8 / uint16 RGB) and working frames (float32 [0, 1]).

uint8 maps 0..255 and uint16 maps the full 0..65535 (rgb48le) scale onto [0, 1]. Works on one
image (H, W, 3) or a stack (T, H, W, 3) alike.
"""
from __future__ import annotations

import numpy as np

__all__ = ["to_float", "from_float", "dtype_for_bit_depth"]

_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16 -> float32 in [0, 1]; float input is returned as float32 unchanged."""
    arr = np.asarray(img)
    if arr.dtype in _SCALE:
        return arr.astype(np.float32) * np.float32(1.0 / _SCALE[arr.dtype])
    if arr.dtype.kind == "f":
        return arr.astype(np.float32, copy=False)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    raise TypeError(f"to_float: unsupported dtype {arr.dtype} (expected uint8, uint16 or float)")


def from_float(arr: np.ndarray, dtype=np.uint8) -> np.ndarray:
    """float in [0, 1] -> uint8 / uint16: clipped to [0, 1], NaN -> 0, rounded to nearest."""
    dt = np.dtype(dtype)
    if dt not in _SCALE:
        raise TypeError(f"from_float: unsupported dtype {dt} (expected uint8 or uint16)")
    a = np.asarray(arr)
    if a.dtype == dt:
        return a
    if a.dtype in _SCALE:  # integer -> integer: rescale exactly via float
        a = to_float(a)
    a = np.nan_to_num(a.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)
    out = np.clip(a, 0.0, 1.0) * np.float32(_SCALE[dt])
    return np.rint(out).astype(dt)


def dtype_for_bit_depth(bit_depth: int | None):
    """numpy dtype that decode() uses for a source of this bit depth."""
    return np.uint16 if (bit_depth or 8) > 8 else np.uint8
