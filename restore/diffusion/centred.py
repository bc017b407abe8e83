"""Windows centred on each output frame, with the neighbours motion-aligned onto it.

A window of raw neighbours lets a network fuse only where the scene holds still; warping each
neighbour onto the output frame first turns moving content into still content, which is how the
flow-based video denoisers (DVDnet, TOFlow) get their lead. Measurements: docs/diffusion.md.

Flow is DIS on the noisy frames averaged 2x2 (the average halves the noise; full-size flow on
blurred frames scored the same). Neighbours are warped with nearest sampling: an integer shift
keeps the noise white at its level, where bilinear sampling would smooth it and tell the network
a lower level than the one it is conditioned on. Restored frames (`fuse_restored`) carry little
noise, and there bilinear sampling, which keeps sub-pixel motion, serves better.

The network restores every slot of a window, and each restored neighbour is a second estimate of
the centre frame wherever the flow was right. `fuse_slots` averages them into the centre frame,
weighted by how closely each agrees with it, so occlusions and flow errors drop out.
"""
from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np
import torch

from ..ops.flow import dis_flow, warp

FLOW_PRESET = "medium"
# Agreement scale of fuse_slots, in units of the noise level: tuned on two training clips
# (davis-libby, davis-car-shadow; 0.15-0.25 within 0.04 dB), +0.1 to +0.3 dB at sigma 15-50.
FUSE_SCALE = 0.2
# fuse_restored's agreement scale, in units of the input's noise std: tuned on davis-libby (0.3 to
# 0.5 within 0.1 dB at sigma 15-50; radius 2 was worse).
RESTORED_FUSE_SCALE = 0.4


class CentredWindows:
    """frames (T, H, W, 3) float32 in [0, 1] -> for each frame i, the 2r+1 frames of the chunk
    nearest to it (fewer when the chunk is shorter; shifted inward at its ends), each neighbour
    warped onto frame i, and i's position in that window. Each flow is computed once.
    interpolation: nearest for the network's windows (what the aligned models trained on: the
    noise stays white), bilinear where restored frames are averaged (fuse_restored: +0.02 to
    +0.06 dB over nearest on two training clips at sigma 15-50)."""

    def __init__(self, frames: np.ndarray, radius: int, interpolation: int = cv2.INTER_NEAREST):
        self.frames, self.radius, self.interpolation = frames, int(radius), interpolation
        t, h, w = frames.shape[:3]
        self.size = (w, h)
        small = (max(1, w // 2), max(1, h // 2))
        self.small = [cv2.resize(f, small, interpolation=cv2.INTER_AREA) for f in frames]
        self.ratio = np.array([w / small[0], h / small[1]], np.float32)
        self._flows: dict[tuple[int, int], np.ndarray] = {}

    def flow(self, i: int, j: int) -> np.ndarray:
        """flow(i -> j) at full size: frame i(x) ~ frame j(x + flow(x))."""
        if (i, j) not in self._flows:
            f = dis_flow(self.small[i], self.small[j], FLOW_PRESET)
            self._flows[i, j] = cv2.resize(f, self.size, interpolation=cv2.INTER_LINEAR) * self.ratio
        return self._flows[i, j]

    def onto(self, i: int, j: int, img: np.ndarray) -> np.ndarray:
        """`img` (frame j, or anything on its pixel grid) warped onto frame i."""
        return img if i == j else warp(img, self.flow(i, j), self.interpolation)

    def span(self, i: int) -> range:
        t = len(self.frames)
        k = min(t, 2 * self.radius + 1)
        lo = min(max(0, i - self.radius), t - k)
        return range(lo, lo + k)

    def __iter__(self) -> Iterator[tuple[int, np.ndarray, int]]:
        for i in range(len(self.frames)):
            idx = self.span(i)
            win = np.stack([self.onto(i, j, self.frames[j]) for j in idx])
            yield i, win, i - idx.start


def fuse_slots(slots: torch.Tensor, pos: int, sigma: float, scale: float = FUSE_SCALE) -> torch.Tensor:
    """Restored window (K, 3, H, W), all slots on the centre frame's grid, the centre at `pos` ->
    the centre frame (3, H, W): each other slot is averaged in with weight exp(-(d / tau)^2), d its
    3x3-mean absolute difference from the centre, tau = scale * sigma (the noise level, in the
    slots' units); the centre's own weight is 1. scale 0 returns the centre unchanged."""
    centre = slots[pos]
    if scale <= 0 or len(slots) == 1:
        return centre
    tau = max(scale * float(sigma), 1e-6)
    others = torch.cat([slots[:pos], slots[pos + 1:]]).float()
    d = (others - centre.float()).abs().mean(1, keepdim=True)
    d = torch.nn.functional.avg_pool2d(d, 3, stride=1, padding=1, count_include_pad=False)
    w = torch.exp(-(d / tau) ** 2)
    fused = centre.float() + (w * others).sum(0)
    return fused.div_(1 + w.sum(0)).to(centre.dtype)


def fuse_restored(frames: np.ndarray, noise: float, scale: float = RESTORED_FUSE_SCALE) -> np.ndarray:
    """Restored frames (T, H, W, 3) in [0, 1] -> each averaged with its two nearest neighbours of
    the chunk warped onto it (flow of the restored frames, which is far steadier than the noisy
    frames'), weighted by agreement as `fuse_slots` with tau = scale * noise (the input's noise
    std, same units). What a chunk-joint restorer leaves of the noise differs from frame to frame,
    so averaging along the motion removes more of it. Below a noise std of 1/255 (a clean input,
    or the blind deblock model at the floor) there is nothing to average out."""
    if scale <= 0 or noise < 1 / 255 or len(frames) < 2:
        return frames
    out = np.empty_like(frames)
    for i, win, pos in CentredWindows(frames, 1, cv2.INTER_LINEAR):
        slots = torch.from_numpy(win).permute(0, 3, 1, 2)
        out[i] = fuse_slots(slots, pos, noise, scale).permute(1, 2, 0).numpy()
    return out


def align_to_centre(clean: torch.Tensor, degraded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A training window as `CentredWindows` builds one at inference: every frame of the
    (T, 3, H, W) clips in [0, 1] warped onto the centre frame by the flow of the degraded frames.
    The clean clip is warped by the same flow, so each slot keeps its own exact target."""
    t = clean.shape[0]
    centre = t // 2
    host = [v.detach().permute(0, 2, 3, 1).float().cpu().numpy() for v in (clean, degraded)]
    windows = CentredWindows(host[1], centre)
    outs = [np.stack([windows.onto(centre, j, h[j]) for j in range(t)]) for h in host]
    return tuple(torch.from_numpy(o).permute(0, 3, 1, 2).contiguous().to(v.device, v.dtype)
                 for o, v in zip(outs, (clean, degraded)))
