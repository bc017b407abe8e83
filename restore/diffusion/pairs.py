"""Synthesise (clean, degraded) training chunks on the fly for each task.

Returns tensors in [-1, 1]:
  x0     (T,3,H,W) clean target
  cond   (T,Cc,H,W) conditioning incl. anchors + mask
  start  (T,3,H,W) noisy degraded start y_s (already includes the start noise)
  estimate (T,3,H,W) the degraded estimate itself (the preconditioning's skip branch)
  sigma_s  scalar starting noise level
  loss_mask (T,) 1 for slots that count in the loss (non-anchor slots)
"""
from __future__ import annotations

import numpy as np
import torch

from .data import Sequence, random_clip, random_clip_encoded
from .degradations import Chain, build_chain, randn_like
from ..ops.resize import imresize
from .centred import align_to_centre
from .tasks import interp_task_cond, with_anchors


def v1_degradations(cfg) -> list[dict]:
    """The chain the v1 configs describe with flat keys (max_noise, p_jpeg, ...)."""
    if cfg.task == "denoise":
        return [{"name": "jpeg", "p": cfg.p_jpeg, "quality": [55, 95]},
                {"name": "gaussian_noise", "sigma255": [0.0, cfg.max_noise], "power": cfg.noise_power,
                 "p_clean": 0.05},
                {"name": "quantize", "p": cfg.p_quantize}]
    if cfg.task == "sr":
        return [{"name": "bicubic_down", "scale": cfg.scale}, {"name": "quantize"}]
    return []


def chain_for(cfg) -> Chain:
    return build_chain(cfg.degradations or v1_degradations(cfg))


def _to_t(a: np.ndarray) -> torch.Tensor:
    """(T,H,W,3) float [0,1] -> (T,3,H,W) [-1,1]."""
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))) * 2 - 1


def unit_frames(frames_u8) -> torch.Tensor:
    """(T,H,W,3) uint8 (numpy or torch, on any device) -> (T,3,H,W) float [0,1]."""
    if isinstance(frames_u8, np.ndarray):
        frames_u8 = torch.from_numpy(np.ascontiguousarray(frames_u8))
    return frames_u8.permute(0, 3, 1, 2).float() / 255


class HostClips:
    """Clean training clips cut on the host from in-memory sequences: clips(length, size, rng) ->
    ((T,3,size,size) float [0,1], state), where state carries the same cut of a precomputed encode
    for the `encoded` degradation. device_clips.DeviceClips is the same on a GPU."""

    def __init__(self, seqs: list[Sequence]):
        self.seqs = seqs

    def __call__(self, length: int, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        clean, enc = random_clip_encoded(self.seqs, length, size, rng)
        state = {"encoded_label": enc[0], "encoded": unit_frames(enc[1])} if enc else {}
        return unit_frames(clean), state


def anchor_count(rng: np.random.Generator, frames: int, p_anchor: float) -> int:
    if frames < 2 or rng.random() >= p_anchor:
        return 0
    return int(rng.integers(1, min(2, frames - 1) + 1))


def start_sigma(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


SHARED_NOISE_P = 0.8  # share of chunks with one start-noise draw for all frames, as at inference


def start_noise(rng: np.random.Generator, like: torch.Tensor, shared_p: float = SHARED_NOISE_P) -> torch.Tensor:
    if rng.random() < shared_p:  # matches inference: one noise draw for every frame of a chunk
        return randn_like(like, rng, (1,) + tuple(like.shape[1:])).expand_as(like)
    return randn_like(like, rng)


def denoise_pair(clips, cfg, rng: np.random.Generator, chain: Chain) -> dict:
    clean, state = clips(cfg.frames, cfg.patch, rng)
    noisy, state = chain(clean, rng, state)
    if cfg.align_windows:
        clean, noisy = align_to_centre(clean, noisy)
    x0, y = clean * 2 - 1, noisy * 2 - 1
    # the model is conditioned on the white-noise level; compression damage alone sits at the floor
    sigma_s = max(2 * state.get("sigma255", 0.0) / 255, cfg.sigma_floor)
    a = anchor_count(rng, cfg.frames, cfg.p_anchor)
    cond = with_anchors(y, x0[:a] if a else None)
    return dict(x0=x0, cond=cond, start=y, estimate=y, sigma_s=sigma_s,
                loss_mask=loss_mask(cfg.frames, a, x0.device))


def sr_pair(clips, cfg, rng: np.random.Generator, chain: Chain) -> dict:
    clean, state = clips(cfg.frames, cfg.patch, rng)
    lr, _ = chain(clean, rng, state)  # the config loader checked that the chain downscales by cfg.scale
    upt = imresize(lr, (cfg.patch, cfg.patch)).clamp(0, 1) * 2 - 1
    x0 = clean * 2 - 1
    sigma_s = start_sigma(rng, cfg.start_sigma_min, cfg.start_sigma_max)
    start = upt + sigma_s * start_noise(rng, upt)
    a = anchor_count(rng, cfg.frames, cfg.p_anchor)
    cond = with_anchors(upt, x0[:a] if a else None)
    return dict(x0=x0, cond=cond, start=start, estimate=upt, sigma_s=sigma_s,
                loss_mask=loss_mask(cfg.frames, a, x0.device))


def interp_pair(clips, cfg, rng: np.random.Generator, chain: Chain) -> dict:
    n = int(rng.choice([2, 3, 4], p=[0.7, 0.2, 0.1]))
    k = int(rng.integers(1, n))
    t = k / n
    length = cfg.frames * n + 1
    margin = cfg.patch // 4  # flow sees some context beyond the patch, as on full frames
    clip = random_clip(clips.seqs, length, cfg.patch, rng, max_stride=cfg.interp_max_stride,
                       margin=margin).astype(np.float32) / 255
    conds, starts, targets = [], [], []
    p, m = cfg.patch, margin
    for j in range(cfg.frames):
        f0, f1, mid = clip[j * n], clip[(j + 1) * n], clip[j * n + k]
        c, s0 = interp_task_cond(f0, f1, t)
        conds.append(c[:, m:m + p, m:m + p])
        starts.append(s0[:, m:m + p, m:m + p])
        targets.append(mid[m:m + p, m:m + p])
    cond_task = torch.from_numpy(np.stack(conds))
    est = torch.from_numpy(np.stack(starts))
    x0 = _to_t(np.stack(targets))
    sigma_s = start_sigma(rng, cfg.start_sigma_min, cfg.start_sigma_max)
    start = est + sigma_s * start_noise(rng, est)
    a = anchor_count(rng, cfg.frames, cfg.p_anchor)
    cond = with_anchors(cond_task, x0[:a] if a else None)
    return dict(x0=x0, cond=cond, start=start, estimate=est, sigma_s=sigma_s, loss_mask=loss_mask(cfg.frames, a))


def loss_mask(frames: int, anchors: int, device=None) -> torch.Tensor:
    m = torch.ones(frames, device=device)
    m[:anchors] = 0
    return m


PAIRS = {"denoise": denoise_pair, "sr": sr_pair, "interp": interp_pair}


def stack_items(items: list[dict]) -> dict:
    """Per-chunk dicts -> one batch dict (shared with bank.bank_batch)."""
    out = {k: torch.stack([it[k] for it in items]) for k in ("x0", "cond", "start", "estimate", "loss_mask")}
    out["sigma_s"] = torch.tensor([it["sigma_s"] for it in items], dtype=torch.float32,
                                  device=items[0]["x0"].device)
    return out


def make_batch(task: str, clips, cfg, rng: np.random.Generator) -> dict:
    """One batch; `clips` is a clip source (HostClips, device_clips.DeviceClips) or a list of
    sequences (cut on the host)."""
    if isinstance(clips, list):
        clips = HostClips(clips)
    chain = chain_for(cfg)
    return stack_items([PAIRS[task](clips, cfg, rng, chain) for _ in range(cfg.batch)])
