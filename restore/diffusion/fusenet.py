"""A learned last stage for the chunk-joint denoiser: each restored frame averaged with its
motion-aligned restored neighbours, the weights predicted by a small network.

`centred.fuse_restored` weighs a neighbour by a fixed function of how far it is from the centre
frame (exp(-(d / tau)^2)). That cannot tell a flow error from left-over noise of the same size,
nor use two neighbours on a side: the hand rule lost on some clips at radius 2. Here three 3x3
convolutions see the centre frame, every neighbour's difference from it (in units of the noise
level) and which neighbours exist, and give each neighbour a weight per pixel. The output stays a
weighted mean of restored frames (the centre's weight is 1), so the stage can only average, never
invent. Measurements: docs/diffusion.md, "A learned fusion of the restored frames".
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.flow import warp
from .centred import CentredWindows
from .modulefile import load_module, save_module


WARPS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def _offsets(radius: int) -> list[int]:
    """The neighbours' frame offsets within `radius`, in the order of the network's weight channels."""
    return [o for o in range(-radius, radius + 1) if o != 0]


class FuseNet(nn.Module):
    """The weights are predicted at half size (the inputs averaged 2x2) and resized up: they vary
    slowly, and a quarter of the pixels is what keeps this stage inside the denoiser's time."""

    def __init__(self, radius: int = 2, channels: int = 24, level: float | None = None, warp: str = "linear"):
        super().__init__()
        self.radius, self.channels = int(radius), int(channels)
        if warp not in WARPS:
            raise ValueError(f"warp must be one of {', '.join(WARPS)}, got {warp!r}")
        # how the neighbours are resampled onto the frame: cubic keeps more of the fine detail
        # that a bilinear warp blurs (the deblock fusion: LPIPS), at a little more time
        self.warp = warp
        # a fixed level (0-255 scale) to give the network in place of the input's noise level,
        # for a blind model that has none to pass (deblock); None: the caller passes the level
        self.level = None if level is None else float(level)
        k = 2 * self.radius
        self.body = nn.Sequential(nn.Conv2d(4 * k + 4, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, k, 3, padding=1))

    @property
    def config(self) -> dict:
        return {"radius": self.radius, "channels": self.channels, **({} if self.level is None else {"level": self.level}),
                **({} if self.warp == "linear" else {"warp": self.warp})}

    def small_weights(self, small_c: torch.Tensor, small_o: torch.Tensor, mask: torch.Tensor,
                      noise: torch.Tensor) -> torch.Tensor:
        """The neighbours' weights at half size (B, K, h, w), softplus of the network's output,
        from the centre (B, 3, h, w) and the neighbours (B, K, 3, h, w) averaged 2x2."""
        b, k = small_o.shape[:2]
        dtype = next(self.parameters()).dtype
        d = (small_o - small_c.unsqueeze(1)) / noise.view(-1, 1, 1, 1, 1)
        box = F.avg_pool2d(d.abs().mean(2), 3, 1, 1, count_include_pad=False)
        m = mask[..., None, None]
        hh, ww = small_c.shape[-2:]
        x = torch.cat([small_c * 2 - 1,
                       d.clamp(-4, 4).flatten(1, 2) * mask.repeat_interleave(3, 1)[..., None, None] / 4,
                       box.clamp(max=4) * m / 4,
                       (noise * 255 / 50).view(-1, 1, 1, 1).expand(b, 1, hh, ww)], 1)
        return F.softplus(self.body(x.to(dtype).contiguous(memory_format=torch.channels_last)).float())

    def weights(self, centre: torch.Tensor, others: torch.Tensor, mask: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        """The neighbours' weights (B, K, H, W), 0 where mask (B, K) says a neighbour is missing."""
        b, k, _, h, w = others.shape
        small_c = F.avg_pool2d(centre, 2, ceil_mode=True)
        small_o = F.avg_pool2d(others.flatten(0, 1), 2, ceil_mode=True).unflatten(0, (b, k))
        small = self.small_weights(small_c, small_o, mask, noise)
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False) * mask[..., None, None]

    def forward(self, centre: torch.Tensor, others: torch.Tensor, mask: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        """centre (B, 3, H, W) in [0, 1]; others (B, K, 3, H, W) warped onto it; mask (B, K), 0
        where a neighbour is missing (past the chunk's ends); noise (B,) the input's noise std on
        the [0, 1] scale -> the fused centre (B, 3, H, W), in float32."""
        wts = self.weights(centre, others, mask, noise)
        return (centre + (wts.unsqueeze(2) * others).sum(1)) / (1 + wts.sum(1, keepdim=True))


def neighbours(frames: np.ndarray, radius: int, interpolation: int = cv2.INTER_LINEAR):
    """frames (T, H, W, 3) float32 -> for each i: (i, others (2r, H, W, 3) warped onto frame i in
    the order of the network's weight channels, present (2r,) booleans). The flows to the next frames are DIS
    (`CentredWindows`: on the frames averaged 2x2); farther ones are chained from them (flow(i ->
    i+2) = flow(i -> i+1) + flow(i+1 -> i+2) read where the first one lands), which costs a resample
    where another DIS would cost a tenth of the denoiser's time per frame. The array yielded is
    reused for the next frame."""
    t = len(frames)
    windows = CentredWindows(frames, 1, cv2.INTER_LINEAR)
    offsets = _offsets(radius)
    chained: dict[tuple[int, int], np.ndarray] = {}

    def flow(i: int, j: int) -> np.ndarray:
        if abs(j - i) == 1:
            return windows.flow(i, j)
        if (i, j) not in chained:
            step = 1 if j > i else -1
            first = windows.flow(i, i + step)
            chained[i, j] = first + warp(flow(i + step, j), first, cv2.INTER_LINEAR)
        return chained[i, j]

    others = np.empty((len(offsets),) + frames.shape[1:], np.float32)
    for i in range(t):
        present = [0 <= i + o < t for o in offsets]
        for k, (o, ok) in enumerate(zip(offsets, present)):
            if ok:
                warp(frames[i + o], flow(i, i + o), interpolation, out=others[k])
            else:
                others[k] = frames[i]
        yield i, others, present


def _half(img: np.ndarray) -> np.ndarray:
    """(H, W, C) -> the 2x2 means (ceil(H/2), ceil(W/2), C), as avg_pool2d(2, ceil_mode=True) for even sizes."""
    h, w = img.shape[:2]
    return cv2.resize(img, ((w + 1) // 2, (h + 1) // 2), interpolation=cv2.INTER_AREA)


def fuse_learned(frames: np.ndarray, noise: float, net: FuseNet) -> np.ndarray:
    """Restored frames (T, H, W, 3) in [0, 1] -> each fused with its neighbours within the
    network's radius, warped onto it. Below a noise std of 1/255 there is nothing to average out,
    as in `fuse_restored`. The same arithmetic as FuseNet.forward, with the halving, the resize of
    the weights and the average done on the host's (H, W, C) arrays, which spares the copies into
    torch's layout (a third of this stage's time)."""
    if noise < 1 / 255 or len(frames) < 2:
        return frames
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    h, w = frames.shape[1:3]
    device = next(net.parameters()).device
    out = np.empty_like(frames)
    level = torch.tensor([float(noise)], device=device)
    for i, others, present in neighbours(frames, net.radius, WARPS[net.warp]):
        mask = torch.tensor([present], dtype=torch.float32, device=device)
        small_c = torch.from_numpy(_half(frames[i])).permute(2, 0, 1)[None].to(device)
        small_o = torch.from_numpy(np.stack([_half(o) for o in others])).permute(0, 3, 1, 2)[None].to(device)
        with torch.no_grad():
            small = (net.small_weights(small_c, small_o, mask, level)[0] * mask[0, :, None, None])
        small = small.permute(1, 2, 0).cpu().numpy()  # (h/2, w/2, K)
        wts = torch.from_numpy(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, -1))
        acc = torch.einsum("hwk,khwc->hwc", wts, torch.from_numpy(others)).add_(torch.from_numpy(frames[i]))
        torch.div(acc, wts.sum(-1, keepdim=True).add_(1), out=torch.from_numpy(out[i]))
    return out


def save_fusenet(path_stem: str | Path, net: FuseNet, meta: dict) -> None:
    """OUT.safetensors (float32 weights) and OUT.yaml (radius, channels and what `meta` adds)."""
    save_module(path_stem, net, {**net.config, **meta})


def load_fusenet(path_stem: str | Path, device: str = "cpu", precision: str = "fp32") -> FuseNet:
    return load_module(path_stem, lambda meta: FuseNet(int(meta["radius"]), int(meta["channels"]), meta.get("level"),
                                                        meta.get("warp", "linear")), device, precision)
