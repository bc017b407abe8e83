"""Quick validation during training: one fixed degraded chunk, model vs the classical baseline.

The full validation table (all sigmas, scales, peers and LPIPS) is scripts/validate_models.py;
this is the cheap curve that shows training progress.
"""
from __future__ import annotations

import functools

import numpy as np

from .data import load_sources
from .degrade import imresize_hwc


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - b) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-12))


@functools.lru_cache(maxsize=4)
def _val_frames(path: str, kind: str, n: int, size: int) -> np.ndarray:
    seq = load_sources([{"path": path, "kind": kind}], max_frames=n)[0].frames[:n]
    h, w = seq.shape[1:3]
    size = min(size, h, w) // 16 * 16  # a multiple of the network's and the x4 scale's stride
    y, x = (h - size) // 2, (w - size) // 2
    return seq[:, y:y + size, x:x + size].astype(np.float32) / 255


def quick_validation(model, cfg, device) -> dict:
    from .restorers import DiffusionDenoiser, DiffusionInterpolator, DiffusionUpscaler

    from .train import inference_of

    meta = {"scale": cfg.scale, "inference": inference_of(cfg)}
    was_training = model.training
    model.eval()
    n = cfg.frames * 2 + 1
    frames = _val_frames(cfg.val_source["path"], cfg.val_source.get("kind", "frames"), n, 192)
    size = frames.shape[1]
    rng = np.random.default_rng(1234)
    try:
        if cfg.task == "denoise":
            noisy = frames + rng.standard_normal(frames.shape, dtype=np.float32) * (25 / 255)
            out = DiffusionDenoiser(model, meta, strength=25.0, tile=None)(noisy)
            base = noisy
            ref = frames
        elif cfg.task == "sr":
            s = cfg.scale
            lr = np.round(np.clip(imresize_hwc(frames, (size // s, size // s)), 0, 1) * 255) / 255
            out = DiffusionUpscaler(model, meta, tile=None)(lr.astype(np.float32))
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


