"""Scores of one method's outputs against the references, with restore.metrics doing the arithmetic
(one PSNR implementation everywhere).

- PSNR on RGB ([0, 1], peak 1) and on BT.601 Y (MATLAB rgb2ycbcr, peak 255), both with `crop`
  border pixels removed (the SR convention: `scale` pixels; 0 for the other tasks). The same crop
  applies to every metric.
- SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5) on BT.601 Y, data range 255.
- LPIPS (AlexNet v0.1, shipped backbone), mean over frames.
- E_warp (restore.metrics.temporal, Lai et al. 2018) of an output sequence, flow from the reference.

Aggregation: a clip ("sequence") reports the PSNR of the mean MSE over its frames (ffmpeg's
convention, restore.metrics.psnr); an image set ("images": Set14, interpolation triplets) reports the
mean of per-image PSNR, as SR and interpolation papers do. SSIM and LPIPS are plain means. Outputs
are scored as the 8-bit frames a user would get.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from restore.metrics.psnr import capped, crop as crop_border, psnr_from_mse, rgb_mse, rgb_to_y601, y601_mse
from restore.metrics.ssim import ssim as ssim_fn


class LPIPSMeter:
    """Lazily built LPIPS model: loading AlexNet costs a second that runs without LPIPS never pay."""

    def __init__(self, device: str = "cpu", batch: int = 4):
        self.device = device
        self.batch = batch
        self._model = None

    def _get(self):
        if self._model is None:
            from restore.metrics.lpips_metric import LPIPS

            self._model = LPIPS(device=self.device, batch_size=self.batch)
        return self._model

    def many(self, refs: list[np.ndarray], outs: list[np.ndarray]) -> list[float]:
        """LPIPS of each pair; runs of equally sized frames go through the network in batches."""
        vals: list[float] = []
        i = 0
        while i < len(refs):
            j = i + 1
            while j < len(refs) and j - i < self.batch and refs[j].shape == refs[i].shape:
                j += 1
            vals.extend(float(v) for v in self._get()(np.stack(refs[i:j]), np.stack(outs[i:j])))
            i = j
        return vals


def frame_metrics(ref_u8: np.ndarray, out_u8: np.ndarray, *, crop: int = 0) -> dict:
    """MSE (RGB and Y) and SSIM of one (H, W, 3) uint8 pair."""
    if ref_u8.shape != out_u8.shape:
        raise ValueError(f"output shape {out_u8.shape} differs from reference {ref_u8.shape}")
    if ref_u8.dtype != np.uint8 or out_u8.dtype != np.uint8:
        raise TypeError("score uint8 frames (outputs are quantised like the video a user gets)")
    ry = crop_border(rgb_to_y601(ref_u8, np.float32), crop)
    oy = crop_border(rgb_to_y601(out_u8, np.float32), crop)
    return {"mse_rgb": rgb_mse(ref_u8, out_u8, crop), "mse_y": y601_mse(ref_u8, out_u8, crop),
            "ssim": ssim_fn(ry, oy, 255.0)}


def aggregate(rows: list[dict], mode: str = "sequence") -> dict:
    """Summary of per-frame rows (module docstring: the two modes)."""
    if mode not in ("sequence", "images"):
        raise ValueError(f"unknown aggregation {mode!r}")
    if not rows:
        raise ValueError("nothing to aggregate")
    out: dict = {"n": len(rows), "aggregation": mode}
    for key, peak, name in (("mse_rgb", 1.0, "psnr_rgb"), ("mse_y", 255.0, "psnr_y")):
        m = np.array([r[key] for r in rows], np.float64)
        out[name] = (float(psnr_from_mse(m.mean(), peak)) if mode == "sequence"
                     else float(capped(psnr_from_mse(m, peak)).mean()))
    for key in ("ssim", "lpips"):
        if key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


def score_pairs(pairs: Iterable[tuple[np.ndarray, np.ndarray]], *, mode: str = "sequence", crop: int = 0,
                lpips: LPIPSMeter | None = None, keep_frames: bool = False) -> dict:
    """Score (reference, output) uint8 frame pairs: the summary, plus per-frame rows if asked."""
    pairs = list(pairs)
    rows = [frame_metrics(r, o, crop=crop) for r, o in pairs]
    if lpips is not None:
        vals = lpips.many([crop_border(r, crop) for r, _ in pairs], [crop_border(o, crop) for _, o in pairs])
        for row, v in zip(rows, vals):
            row["lpips"] = v
    summary = aggregate(rows, mode)
    if keep_frames:
        summary["frames"] = [{k: round(float(v), 8) for k, v in r.items()} for r in rows]
    return summary


def ewarp(ref_u8: np.ndarray, out_u8: np.ndarray) -> float:
    """Mean E_warp over consecutive output pairs, flow from the reference (restore.metrics.temporal);
    nan for fewer than two frames."""
    from restore.metrics.temporal import TemporalMeter

    if len(ref_u8) < 2:
        return float("nan")
    meter = TemporalMeter(tof=False)  # E_warp only: the TecoGAN flow pair would double the cost
    vals = [meter.add(r, o) for r, o in zip(ref_u8, out_u8)]
    vals = [v["ewarp"] for v in vals if v is not None]
    return float(np.nanmean(vals)) if vals else float("nan")
