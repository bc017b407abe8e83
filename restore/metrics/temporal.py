"""Temporal consistency: warping error E_warp (Lai et al., ECCV 2018) and a flicker measure.

E_warp(t) = sum_x M(x) ||O_t(x) - W(O_{t-1})(x)||^2 / (3 sum_x M(x)), RGB in [0, 1], where W warps
the *output* frame t-1 onto frame t with optical flow computed on the *reference* (OpenCV DIS),
and M masks pixels that fail a forward-backward consistency check (occlusions, flow errors):
|F_b(x) + F_f(x + F_b(x))|^2 < 0.01 (|F_b|^2 + |F_f(x + F_b)|^2) + 0.5  (Sundaram et al. 2010).
A temporally stable output that follows the reference's motion scores close to the reference's
own E_warp; flicker raises it.

Flicker(t) = mean over 8x8-pixel blocks of |dL_out(t) - dL_ref(t)|, where dL(t) = L(t) - L(t-1)
and L is the block-average BT.601 luma in [0, 1] (a low-pass brightness map): brightness changes
the reference does not have. 0 for an output that changes exactly as the reference does.
"""
from __future__ import annotations

import numpy as np

from ..methods.flow import occlusion_mask, to_grey_u8, warp
from .psnr import to_unit_rgb

FLICKER_BLOCK = 8


def _luma_lowpass(rgb: np.ndarray) -> np.ndarray:
    import cv2

    x = to_unit_rgb(rgb)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    h, w = y.shape
    bh, bw = max(1, h // FLICKER_BLOCK), max(1, w // FLICKER_BLOCK)
    return cv2.resize(y, (bw, bh), interpolation=cv2.INTER_AREA)


class TemporalMeter:
    """Feed aligned (reference, output) RGB frames in order; `add` returns that frame's values
    (None for the first frame, which has no predecessor)."""

    def __init__(self):
        import cv2

        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._prev = None  # (ref_grey, out_unit, ref_L, out_L)

    def add(self, ref: np.ndarray, out: np.ndarray) -> dict | None:
        ref_g = to_grey_u8(to_unit_rgb(ref))
        out_u = to_unit_rgb(out)
        ref_l, out_l = _luma_lowpass(ref), _luma_lowpass(out)
        prev, self._prev = self._prev, (ref_g, out_u, ref_l, out_l)
        if prev is None:
            return None
        p_ref_g, p_out_u, p_ref_l, p_out_l = prev
        # backward flow: for each pixel of frame t, where it was in t-1
        fb = self._dis.calc(ref_g, p_ref_g, None)
        ff = self._dis.calc(p_ref_g, ref_g, None)
        mask = occlusion_mask(fb, ff) == 0
        warped = warp(p_out_u, fb)
        err = ((out_u - warped) ** 2).mean(-1)
        n = int(mask.sum())
        ewarp = float(err[mask].mean(dtype=np.float64)) if n else float("nan")
        flicker = float(np.abs((out_l - p_out_l) - (ref_l - p_ref_l)).mean(dtype=np.float64))
        return {"ewarp": ewarp, "flicker": flicker, "ewarp_mask": n / mask.size}
