"""Temporal consistency: warping error E_warp (Lai et al., ECCV 2018) and a flicker measure.

E_warp(t) = sum_x M(x) ||O_t(x) - W(O_{t-1})(x)||^2 / (3 sum_x M(x)), RGB in [0, 1], where W warps
the *output* frame t-1 onto frame t with optical flow computed on the *reference* (OpenCV DIS),
and M masks pixels that fail a forward-backward consistency check (occlusions, flow errors):
|F_b(x) + F_f(x + F_b(x))|^2 < 0.01 (|F_b|^2 + |F_f(x + F_b)|^2) + 0.5  (Sundaram et al. 2010).
A temporally stable output that follows the reference's motion scores close to the reference's
own E_warp; flicker raises it.

tOF(t) (TecoGAN, Chu et al. 2020): mean over pixels of |OF_ref(t) - OF_out(t)|_2, OF the Farneback
flow from frame t-1 to t (OpenCV, TecoGAN's parameters 0.5, 3, 15, 3, 5, 1.2, 0) on 8-bit grey
(cv2 RGB2GRAY), both fields cropped as TecoGAN's crop_8x8 does (to a multiple of 32, at least 8
pixels in from every edge, centred). In pixels: motion the output has and the reference does not.
tLP (the LPIPS half of TecoGAN's pair) needs the LPIPS network and is computed in score.py.

Flicker(t) = mean over 8x8-pixel blocks of |dL_out(t) - dL_ref(t)|, where dL(t) = L(t) - L(t-1)
and L is the block-average BT.601 luma in [0, 1] (a low-pass brightness map): brightness changes
the reference does not have. 0 for an output that changes exactly as the reference does.
"""
from __future__ import annotations

import numpy as np

from ..ops.flow import occlusion_mask, to_grey_u8, warp
from .psnr import to_unit_rgb

FLICKER_BLOCK = 8


def _luma_lowpass(rgb: np.ndarray) -> np.ndarray:
    import cv2

    x = to_unit_rgb(rgb)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    h, w = y.shape
    bh, bw = max(1, h // FLICKER_BLOCK), max(1, w // FLICKER_BLOCK)
    return cv2.resize(y, (bw, bh), interpolation=cv2.INTER_AREA)


# TecoGAN's calcOpticalFlowFarneback arguments: pyr_scale, levels, winsize, iterations, poly_n,
# poly_sigma, flags
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)


def teco_crop(h: int, w: int) -> tuple[slice, slice]:
    """TecoGAN's crop_8x8: the largest multiple of 32 that leaves at least 16 pixels in each
    dimension, centred; frames too small for that (under 48 pixels) are used whole."""
    def one(n):
        k = (n // 32) * 32
        while k > n - 16:
            k -= 32
        if k <= 0:
            return slice(0, n)
        o = (n - k) // 2
        return slice(o, o + k)
    return one(h), one(w)


def grey_u8(rgb: np.ndarray) -> np.ndarray:
    """8-bit grey as TecoGAN computes it (cv2 RGB2GRAY: 0.299 R + 0.587 G + 0.114 B, rounded)."""
    import cv2

    if rgb.dtype != np.uint8:
        rgb = to_grey_ready(rgb)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def to_grey_ready(rgb: np.ndarray) -> np.ndarray:
    """Deeper or float RGB -> uint8 RGB (rounded), since Farneback takes 8-bit images only."""
    x = to_unit_rgb(rgb)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


class TemporalMeter:
    """Feed aligned (reference, output) RGB frames in order; `add` returns that frame's values
    (None for the first frame, which has no predecessor)."""

    def __init__(self, tof: bool = False):
        """tof: also TecoGAN's tOF (two Farneback flows per frame: off unless asked, so callers
        that want E_warp alone do not pay for it)."""
        import cv2

        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self._tof = tof
        self._prev = None  # (ref_grey, out_unit, ref_L, out_L, ref_teco_grey, out_teco_grey)

    def add(self, ref: np.ndarray, out: np.ndarray) -> dict | None:
        ref_g = to_grey_u8(to_unit_rgb(ref))
        out_u = to_unit_rgb(out)
        ref_l, out_l = _luma_lowpass(ref), _luma_lowpass(out)
        ref_t = grey_u8(ref) if self._tof else None
        out_t = grey_u8(out) if self._tof else None
        prev, self._prev = self._prev, (ref_g, out_u, ref_l, out_l, ref_t, out_t)
        if prev is None:
            return None
        p_ref_g, p_out_u, p_ref_l, p_out_l, p_ref_t, p_out_t = prev
        # backward flow: for each pixel of frame t, where it was in t-1
        fb = self._dis.calc(ref_g, p_ref_g, None)
        ff = self._dis.calc(p_ref_g, ref_g, None)
        mask = occlusion_mask(fb, ff) == 0
        warped = warp(p_out_u, fb)
        err = ((out_u - warped) ** 2).mean(-1)
        n = int(mask.sum())
        ewarp = float(err[mask].mean(dtype=np.float64)) if n else float("nan")
        flicker = float(np.abs((out_l - p_out_l) - (ref_l - p_ref_l)).mean(dtype=np.float64))
        out_d = {"ewarp": ewarp, "flicker": flicker, "ewarp_mask": n / mask.size}
        if self._tof:
            out_d["tof"] = tof(p_ref_t, ref_t, p_out_t, out_t)
        return out_d


def tof(prev_ref_grey, ref_grey, prev_out_grey, out_grey) -> float:
    """TecoGAN's tOF of one frame pair from 8-bit grey frames (see the module doc)."""
    import cv2

    f_ref = cv2.calcOpticalFlowFarneback(prev_ref_grey, ref_grey, None, *FARNEBACK)
    f_out = cv2.calcOpticalFlowFarneback(prev_out_grey, out_grey, None, *FARNEBACK)
    ys, xs = teco_crop(*f_ref.shape[:2])
    d = f_ref[ys, xs] - f_out[ys, xs]
    return float(np.sqrt((d * d).sum(-1)).mean(dtype=np.float64))
