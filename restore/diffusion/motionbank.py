"""Training material for `MotionRefiner`: triplets with their DIS motion and an oracle's, cut once.

For every chosen triplet (frame i, the true frame at t, frame i + n) the classical estimate is
computed on the whole frame, as at inference (DIS both ways, projected to t, the occlusion-aware
blend weight), and so is the teacher: DIS from the true frame at t to each endpoint, which
blends to about 5 dB above the classical estimate on the validation triplets. The refiner learns
from both: the photometric error of its blend and, where the teacher's warp matches the true
frame, the distance to the teacher's flows (RIFE's privileged distillation, with DIS as the
privileged teacher). Crops are kept, not frames, to bound memory: about 1.7 MB per 256 px crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..ops.flow import INTERP_PRESET, blend_weights, dis_flow, intermediate_flows, warp


@dataclass
class MotionSample:
    """One triplet's motion on the whole frame (float32 flows (H, W, 2), frames (H, W, 3) in [0, 1])."""
    f0: np.ndarray
    f1: np.ndarray
    mid: np.ndarray
    t: float
    flow_t0: np.ndarray
    flow_t1: np.ndarray
    weight0: np.ndarray     # (H, W): the classical blend's weight of f0
    teacher_t0: np.ndarray
    teacher_t1: np.ndarray
    trust0: np.ndarray      # (H, W) bool: the teacher's warp of f0 matches the true frame
    trust1: np.ndarray


TRUST_ERROR = 0.04  # mean absolute RGB error (0-1) below which the teacher's warp is trusted


def motion_sample(f0: np.ndarray, mid: np.ndarray, f1: np.ndarray, t: float,
                  preset: str = INTERP_PRESET) -> MotionSample:
    """f0, mid, f1: uint8 or float (H, W, 3) frames; t: the time of `mid` between them."""
    a, m, b = (x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32) for x in (f0, mid, f1))
    f01, f10 = dis_flow(a, b, preset), dis_flow(b, a, preset)
    ft0, ft1 = intermediate_flows(a, b, t, f01, f10)
    w0, _ = blend_weights(t, f01, f10, ft0, ft1, edge_margin=None)  # as flow_hints gives a refiner
    o0, o1 = dis_flow(m, a, preset), dis_flow(m, b, preset)
    trust0 = np.abs(warp(a, o0) - m).mean(-1) < TRUST_ERROR
    trust1 = np.abs(warp(b, o1) - m).mean(-1) < TRUST_ERROR
    return MotionSample(a, b, m, t, ft0, ft1, w0.astype(np.float32), o0, o1, trust0, trust1)


def crop_arrays(s: MotionSample, y: int, x: int, size: int) -> dict:
    """A crop as compact arrays: frames uint8, flows float16, weight and trust uint8."""
    sl = (slice(y, y + size), slice(x, x + size))
    u8 = lambda v: np.round(np.clip(v[sl], 0, 1) * 255).astype(np.uint8)
    return dict(frames=np.stack([u8(s.f0), u8(s.mid), u8(s.f1)]),                      # (3, P, P, 3)
                flows=np.stack([s.flow_t0[sl], s.flow_t1[sl], s.teacher_t0[sl], s.teacher_t1[sl]]).astype(np.float16),
                weight0=u8(s.weight0), trust=np.stack([s.trust0[sl], s.trust1[sl]]).astype(np.uint8),
                t=np.float32(s.t))


class MotionBank:
    """Crops stacked into tensors; `batch` draws augmented (flipped, transposed, time-reversed) ones."""

    def __init__(self, crops: list[dict]):
        self.frames = torch.from_numpy(np.stack([c["frames"] for c in crops]))    # (N, 3, P, P, 3) u8
        self.flows = torch.from_numpy(np.stack([c["flows"] for c in crops]))      # (N, 4, P, P, 2) f16
        self.weight0 = torch.from_numpy(np.stack([c["weight0"] for c in crops]))  # (N, P, P) u8
        self.trust = torch.from_numpy(np.stack([c["trust"] for c in crops]))      # (N, 2, P, P) u8
        self.t = torch.tensor([float(c["t"]) for c in crops])

    def __len__(self) -> int:
        return len(self.t)

    def to(self, device) -> "MotionBank":
        """Move the bank (a few GB) to `device`, so batches are cut and augmented there: on a GPU the
        host, one thread per process, cut 3 batches of 32 a second and the network waited."""
        for key in ("frames", "flows", "weight0", "trust", "t"):
            setattr(self, key, getattr(self, key).to(device))
        return self

    def batch(self, n: int, rng: np.random.Generator) -> dict:
        dev = self.t.device
        idx = torch.from_numpy(rng.integers(0, len(self), n)).to(dev)
        frames = self.frames[idx].permute(0, 1, 4, 2, 3).float() / 255         # (B, 3, 3, P, P)
        flows = self.flows[idx].permute(0, 1, 4, 2, 3).float()                  # (B, 4, 2, P, P)
        w0 = self.weight0[idx].float().unsqueeze(1) / 255                        # (B, 1, P, P)
        trust = self.trust[idx].float()                                         # (B, 2, P, P)
        t = self.t[idx].clone()
        rev = torch.from_numpy(rng.random(n) < 0.5).to(dev)  # time reversal: endpoints swap, t -> 1 - t
        if rev.any():
            frames[rev] = frames[rev][:, [2, 1, 0]]
            flows[rev] = flows[rev][:, [1, 0, 3, 2]]
            trust[rev] = trust[rev][:, [1, 0]]
            w0[rev] = 1 - w0[rev]
            t[rev] = 1 - t[rev]
        # one geometric augmentation per batch (flows change sign or swap components with it)
        if rng.random() < 0.5:
            frames, flows, w0, trust = (v.flip(-1) for v in (frames, flows, w0, trust))
            flows[:, :, 0] = -flows[:, :, 0]
        if rng.random() < 0.5:
            frames, flows, w0, trust = (v.flip(-2) for v in (frames, flows, w0, trust))
            flows[:, :, 1] = -flows[:, :, 1]
        if rng.random() < 0.5:
            frames, flows, w0, trust = (v.transpose(-1, -2) for v in (frames, flows, w0, trust))
            flows = flows[:, :, [1, 0]]
        return dict(f0=frames[:, 0].contiguous(), mid=frames[:, 1].contiguous(), f1=frames[:, 2].contiguous(),
                    flow_t0=flows[:, 0].contiguous(), flow_t1=flows[:, 1].contiguous(),
                    teacher_t0=flows[:, 2].contiguous(), teacher_t1=flows[:, 3].contiguous(),
                    weight0=w0.contiguous(), trust=trust.contiguous(), t=t)
