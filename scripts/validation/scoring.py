"""Metrics of one method on one data set, with restore.metrics doing the arithmetic.

- PSNR (RGB, [0, 1], peak 1) and, for super-resolution, PSNR on BT.601 Y (MATLAB rgb2ycbcr, peak
  255) with `crop` border pixels removed (SR convention; the same crop applies to every metric).
- SSIM (Wang 2004 settings) on BT.601 Y, data range 255, as restore.score does.
- LPIPS (AlexNet v0.1, shipped backbone), mean over frames.

Aggregation: a video clip ("sequence") reports the PSNR of the mean MSE over its frames
(ffmpeg's convention, restore.metrics.psnr); an image set ("images": Set14, interpolation
triplets) reports the mean of per-image PSNR, as SR and interpolation papers do. SSIM and LPIPS
are plain means either way. Outputs are scored as the 8-bit frames a user would get.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from restore.metrics.psnr import capped, crop as crop_border, psnr_from_mse, rgb_mse, rgb_to_y601, y601_mse
from restore.metrics.ssim import ssim as ssim_fn


class LPIPSMeter:
    """Lazily built LPIPS model (loading AlexNet costs a second; sections that skip LPIPS never pay)."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._model = None

    def _get(self):
        if self._model is None:
            from restore.metrics.lpips_metric import LPIPS

            self._model = LPIPS(device=self.device, batch_size=4)
        return self._model

    def __call__(self, ref_u8: np.ndarray, out_u8: np.ndarray) -> float:
        return float(self._get()(ref_u8, out_u8)[0])

    def many(self, refs: list[np.ndarray], outs: list[np.ndarray]) -> list[float]:
        """LPIPS of each pair; runs of equally sized frames go through the network in batches."""
        vals: list[float] = []
        i = 0
        while i < len(refs):
            j = i + 1
            while j < len(refs) and j - i < 4 and refs[j].shape == refs[i].shape:
                j += 1
            vals.extend(float(v) for v in self._get()(np.stack(refs[i:j]), np.stack(outs[i:j])))
            i = j
        return vals


def frame_metrics(ref_u8: np.ndarray, out_u8: np.ndarray, *, crop: int = 0, y_psnr: bool = False,
                  lpips: LPIPSMeter | None = None) -> dict:
    """Per-frame numbers for one (H, W, 3) uint8 pair."""
    if ref_u8.shape != out_u8.shape:
        raise ValueError(f"output shape {out_u8.shape} differs from reference {ref_u8.shape}")
    if ref_u8.dtype != np.uint8 or out_u8.dtype != np.uint8:
        raise TypeError("score uint8 frames (outputs are quantised like the video a user gets)")
    row = {"mse_rgb": rgb_mse(ref_u8, out_u8, crop)}
    if y_psnr:
        row["mse_y"] = y601_mse(ref_u8, out_u8, crop)
    ry = crop_border(rgb_to_y601(ref_u8, np.float32), crop)
    oy = crop_border(rgb_to_y601(out_u8, np.float32), crop)
    row["ssim"] = ssim_fn(ry, oy, 255.0)
    if lpips is not None:
        row["lpips"] = lpips(crop_border(ref_u8, crop), crop_border(out_u8, crop))
    return row


def aggregate(rows: list[dict], mode: str = "sequence") -> dict:
    """Summary of per-frame rows: see the module docstring for the two modes."""
    if mode not in ("sequence", "images"):
        raise ValueError(f"unknown aggregation {mode!r}")
    if not rows:
        raise ValueError("nothing to aggregate")
    out: dict = {"n": len(rows), "aggregation": mode}
    for key, peak, name in (("mse_rgb", 1.0, "psnr"), ("mse_y", 255.0, "psnr_y")):
        if key not in rows[0]:
            continue
        m = np.array([r[key] for r in rows], np.float64)
        per = psnr_from_mse(m, peak)
        out[name] = float(psnr_from_mse(m.mean(), peak)) if mode == "sequence" else float(capped(per).mean())
    for key in ("ssim", "lpips"):
        if key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


def score_pairs(pairs: Iterable[tuple[np.ndarray, np.ndarray]], *, mode: str = "sequence", crop: int = 0,
                y_psnr: bool = False, lpips: LPIPSMeter | None = None, keep_frames: bool = True) -> dict:
    """Score (reference, output) uint8 frame pairs; returns the summary plus per-frame rows."""
    pairs = list(pairs)
    rows = [frame_metrics(r, o, crop=crop, y_psnr=y_psnr) for r, o in pairs]
    if lpips is not None:
        vals = lpips.many([crop_border(r, crop) for r, _ in pairs], [crop_border(o, crop) for _, o in pairs])
        for row, v in zip(rows, vals):
            row["lpips"] = v
    summary = aggregate(rows, mode)
    if keep_frames:
        summary["frames"] = [{k: round(float(v), 8) for k, v in r.items()} for r in rows]
    return summary
