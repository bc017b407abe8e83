"""Grey thumbnails: small area-averaged copies of frames, compared to find cuts (restore.chunks)
and the offset between two videos (restore.metrics.align).

Area averaging makes noise mostly cancel, so two thumbnails differ where the content does.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["grey255", "fit_width", "thumbnail"]


def grey255(image: np.ndarray) -> np.ndarray:
    """float32 grey image on the 0-255 scale from an RGB (H, W, 3) or grey (H, W) frame:
    uint8 / uint16 use their full range, floats are taken as [0, 1]."""
    img = np.asarray(image)
    if np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)
    else:
        img = img.astype(np.float32) * 255.0
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img


def fit_width(height: int, width: int, max_width: int) -> tuple[int, int]:
    """(w, h) of a thumbnail at most `max_width` wide that keeps the frame's aspect ratio."""
    tw = min(max_width, width)
    return tw, max(1, round(height * tw / width))


def thumbnail(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A grey image shrunk to `size` = (w, h) by area averaging, as float32 on the scale it came
    in (see grey255 to make one from a frame). One already that size is returned as float32."""
    g = np.asarray(grey, np.float32)
    if g.shape[1::-1] == tuple(size):
        return g
    return cv2.resize(g, tuple(size), interpolation=cv2.INTER_AREA)
