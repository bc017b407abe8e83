"""Quick validation during training: one fixed degraded chunk, model vs the classical baseline.

The degradations are the benchmark's protocols (seeded 8-bit noise at sigma 25, MATLAB 'BI'
downscaling) and PSNR is restore.metrics'; the full table is `restore bench` (restore.eval), this
is the cheap curve that shows training progress.
"""
from __future__ import annotations

import functools

import numpy as np

from ..metrics.psnr import psnr_rgb
from ..ops.resize import imresize_hwc
from .data import load_sources
from .degrade import add_noise, bi_downscale


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """RGB PSNR of float [0, 1] frames after rounding to 8 bits, as the benchmark scores outputs."""
    return psnr_rgb(_u8(b), _u8(a))


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(a) * 255), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _val_frames(path: str, kind: str, n: int, size: int) -> np.ndarray:
    seq = load_sources([{"path": path, "kind": kind}], max_frames=n)[0].frames[:n]
    h, w = seq.shape[1:3]
    size = min(size, h, w) // 16 * 16  # a multiple of the network's and the x4 scale's stride
    y, x = (h - size) // 2, (w - size) // 2
    return seq[:, y:y + size, x:x + size].astype(np.float32) / 255


def quick_validation(model, cfg, device) -> dict:
    from .restorers import DiffusionDenoiser, DiffusionInterpolator, DiffusionUpscaler

    from .checkpoint import inference_of

    meta = {"scale": cfg.scale, "inference": inference_of(cfg)}
    was_training = model.training
    model.eval()
    n = cfg.frames * 2 + 1
    frames = _val_frames(cfg.val_source["path"], cfg.val_source.get("kind", "frames"), n, 192)
    size = frames.shape[1]
    try:
        if cfg.task == "denoise":
            noisy = add_noise(_u8(frames), 25).astype(np.float32) / 255
            out = DiffusionDenoiser(model, meta, sigma255=25.0, tile=None)(noisy)
            base = noisy
            ref = frames
        elif cfg.task == "sr":
            s = cfg.scale
            lr = bi_downscale(_u8(frames), s).astype(np.float32) / 255
            out = DiffusionUpscaler(model, meta, tile=None)(lr)
            base = imresize_hwc(lr, (size, size))
            ref = frames
        else:
            f0, f1, mid = frames[0:-2:2], frames[2::2], frames[1:-1:2]
            out = DiffusionInterpolator(model, meta, tile=None)(f0, f1, 0.5)
            base = (f0 + f1) / 2
            ref = mid
    finally:
        model.train(was_training)
    return {"psnr": round(float(_psnr(out, ref)), 3), "baseline_psnr": round(float(_psnr(base, ref)), 3),
            "lpips": round(_lpips(out, ref, device), 4)}


@functools.lru_cache(maxsize=2)
def _lpips_fn(device: str):
    from ..metrics.lpips_metric import load_lpips

    return load_lpips(device)


def _lpips(out: np.ndarray, ref: np.ndarray, device) -> float:
    import torch

    fn = _lpips_fn(str(device))
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).to(device) * 2 - 1  # noqa: E731
    with torch.no_grad():
        return float(fn(to_t(np.clip(out, 0, 1)), to_t(ref)).mean())


