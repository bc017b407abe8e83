"""Interpolation training material with its flow hints computed once, on whole frames.

`interp_pair` computes DIS flow on every random patch, which is slow (flow dominates a CPU
training step) and unlike inference, where flow sees the whole frame and its large motions. A
bank computes, for every frame pair (i, i + n) of every sequence, the two warps and the blend for
each in-between time k/n on the full frame, in a process pool, keeps them as uint8 next to the
frames (on the training device), and cuts training chunks from them with random crops, flips,
transposes and time reversal: a batch costs a few tensor slices instead of 2 flows per sample.

Memory: about 1 + 3 * sum_n (n - 1) frame-sized uint8 images per source frame (10 for strides
2 and 3); our 1,781-frame corpus at full and half size took 15.9 GB, built in 94-116 s by 16
processes: meant for a GPU or a large host, or for a smaller corpus of one's own.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..errors import ConfigError
from ..ops.flow import INTERP_PRESET, dis_flow
from .data import Sequence
from .tasks import flow_hints, with_anchors


def _hints_job(args) -> np.ndarray:
    """(n-1, 3, H, W, 3) uint8: warp0, warp1, blend for each k of one pair."""
    f0, f1, n = args
    cv2.setNumThreads(1)
    torch.set_num_threads(1)  # one process per core already; the motion projection uses torch
    a, b = f0.astype(np.float32) / 255, f1.astype(np.float32) / 255
    flows = dis_flow(a, b, INTERP_PRESET), dis_flow(b, a, INTERP_PRESET)
    out = []
    for k in range(1, n):
        w0, w1, blend, _ = flow_hints(a, b, k / n, flows)
        out.append(np.stack([w0, w1, blend]))
    return np.round(np.clip(np.stack(out), 0, 1) * 255).astype(np.uint8)


class _InProcess:
    def map(self, fn, jobs, chunksize=1):
        return map(fn, jobs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@dataclass
class _Entry:
    frames: torch.Tensor           # (N, H, W, 3) uint8
    hints: dict                    # n -> (N - n, n - 1, 3, H, W, 3) uint8


class TripletBank:
    def __init__(self, seqs: list[Sequence], strides=(2, 3), scales=(1.0,), min_size: int = 64,
                 workers: int = 0, device: str | torch.device = "cpu", log=print):
        """seqs: moving sequences (stills are skipped); each is also used at every scale < 1
        whose short side stays >= min_size, since motion in pixels shrinks with the frame."""
        self.device = torch.device(device)
        self.strides = tuple(int(n) for n in strides)
        workers = workers or os.cpu_count() or 1
        self.entries: list[_Entry] = []
        # Spawned, not forked: a fork of a process whose OpenMP / OpenCV thread pools have run
        # can deadlock in the child. One worker runs in-process.
        pool = (ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
                if workers > 1 else _InProcess())
        with pool:
            for seq in seqs:
                if seq.still or len(seq.frames) < 2 * min(self.strides) + 1:
                    continue
                for s in scales:
                    frames = seq.frames
                    if s != 1.0:
                        h, w = frames.shape[1:3]
                        size = (round(w * s), round(h * s))
                        if min(size) < min_size:
                            continue
                        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
                    hints = {}
                    for n in self.strides:
                        if len(frames) > 2 * n:
                            jobs = [(frames[i], frames[i + n], n) for i in range(len(frames) - n)]
                            hints[n] = torch.from_numpy(np.stack(list(pool.map(_hints_job, jobs, chunksize=4))))
                    self.entries.append(_Entry(torch.from_numpy(frames), hints))
                log(f"bank: {seq.name} {len(seq.frames)} frames, {len(self.entries)} entries")
        # Moved to the device only now: no CUDA context while the pool is being fed.
        for e in self.entries:
            e.frames = e.frames.to(self.device)
            e.hints = {n: v.to(self.device) for n, v in e.hints.items()}
        if not self.entries:
            raise ConfigError(f"key 'interp_bank': no frame sequence or video of at least "
                              f"{2 * min(self.strides) + 1} frames (and {min_size} px) in the sources; "
                              "still images have no motion to learn from")
        self.weights = np.array([np.sqrt(len(e.frames)) * (e.frames.shape[1] * e.frames.shape[2]) ** 0.25
                                 for e in self.entries])
        self.weights /= self.weights.sum()

    def nbytes(self) -> int:
        return sum(e.frames.numel() + sum(h.numel() for h in e.hints.values()) for e in self.entries)

    def chunk(self, frames: int, patch: int, rng: np.random.Generator, p_stride=None):
        """One training chunk: cond (T, 13, P, P), estimate (T, 3, P, P), x0 (T, 3, P, P) in [-1, 1]."""
        while True:
            e = self.entries[rng.choice(len(self.entries), p=self.weights)]
            ns = [n for n in self.strides if n in e.hints and len(e.frames) > frames * n]
            h, w = e.frames.shape[1:3]
            if ns and min(h, w) >= patch:
                break
        p = None if p_stride is None else np.array([p_stride[self.strides.index(n)] for n in ns])
        n = int(rng.choice(ns, p=None if p is None else p / p.sum()))
        k = int(rng.integers(1, n))
        i = int(rng.integers(0, len(e.frames) - frames * n))
        y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        sy, sx = slice(y, y + patch), slice(x, x + patch)
        span = slice(i, i + frames * n, n)  # slot j: pair (i + j n, i + (j + 1) n), middle i + j n + k
        f0 = e.frames[span, sy, sx]
        f1 = e.frames[i + n:i + (frames + 1) * n:n, sy, sx]
        mid = e.frames[i + k:i + k + frames * n:n, sy, sx]
        w0, w1, blend = e.hints[n][span, k - 1, :, sy, sx].unbind(1)
        t = k / n
        if rng.random() < 0.5:  # time reversal: the same triplet seen backwards, at 1 - t
            f0, f1, w0, w1, t = f1, f0, w1, w0, 1 - t
            f0, f1, w0, w1, blend, mid = (v.flip(0) for v in (f0, f1, w0, w1, blend, mid))
        imgs = torch.stack([f0, f1, w0, w1, blend, mid])          # (6, T, P, P, 3) uint8
        if rng.random() < 0.5:
            imgs = imgs.flip(3)
        if rng.random() < 0.5:
            imgs = imgs.flip(2)
        if rng.random() < 0.5:
            imgs = imgs.transpose(2, 3)
        imgs = imgs.permute(0, 1, 4, 2, 3).float() / 127.5 - 1   # (6, T, 3, P, P)
        tmap = imgs.new_full((frames, 1, patch, patch), 2 * t - 1)
        cond = torch.cat([imgs[0], imgs[1], imgs[2], imgs[3], tmap], dim=1)
        return cond, imgs[4], imgs[5]


def bank_batch(bank: TripletBank, cfg, rng: np.random.Generator) -> dict:
    """The same batch dict as pairs.make_batch, cut from the bank on its device."""
    from .pairs import anchor_count, loss_mask, start_noise, start_sigma, stack_items

    items = []
    for _ in range(cfg.batch):
        cond_task, est, x0 = bank.chunk(cfg.frames, cfg.patch, rng, cfg.bank_stride_p)
        sigma_s = start_sigma(rng, cfg.start_sigma_min, cfg.start_sigma_max)
        a = anchor_count(rng, cfg.frames, cfg.p_anchor)
        items.append(dict(x0=x0, cond=with_anchors(cond_task, x0[:a] if a else None),
                          start=est + sigma_s * start_noise(rng, est), estimate=est, sigma_s=sigma_s,
                          loss_mask=loss_mask(cfg.frames, a, est.device)))
    return stack_items(items)
