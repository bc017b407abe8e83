"""A small learned coarse-to-fine refinement of the interpolator's motion at time t.

DIS flow between the two endpoints, projected to t (`ops.flow.intermediate_flows`), is a good
start but loses fast, thin and non-rigid motion: on the 15 DAVIS validation triplets, flows from
the true middle frame to each endpoint (an oracle) blend to 31.9 dB where the projected DIS flows
give 27.0. `MotionRefiner` corrects the two flows from t and the blend weight, as RIFE's IFNet
blocks do, but starting from the classical estimate (zero-initialised heads: untrained, it returns
DIS unchanged). Each level looks at both endpoints warped by the current flows on a frame shrunk
by its factor, works one stride further down, and adds a correction upsampled to the full frame.

Flows are (B, 2, H, W) in pixels of the full frame, (dx, dy), backward: out(x) = img(x + flow(x)).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .modulefile import load_module, save_module


def backward_warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """img (B, C, H, W) sampled at x + flow(x), bilinear, border replicated (as `ops.flow.warp`)."""
    b, _, h, w = flow.shape
    ys = torch.arange(h, device=flow.device, dtype=flow.dtype)
    xs = torch.arange(w, device=flow.device, dtype=flow.dtype)
    # normalised coordinates with align_corners=True: -1 and 1 are the centres of the edge pixels
    gx = (xs.view(1, 1, w) + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys.view(1, h, 1) + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(img, grid.to(img.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def symmetric_cost(s0: torch.Tensor, s1: torch.Tensor, g0: torch.Tensor, g1: torch.Tensor, t: torch.Tensor,
                   radius: int, step: float) -> torch.Tensor:
    """(B, (2 radius + 1)^2, h, w): how well the endpoints match at time t if the motion between them
    changed by d (a grid of +-radius * step pixels): mean absolute RGB difference of s0 sampled at
    x + g0 - t d and s1 at x + g1 + (1 - t) d (linear motion through x at t, as a bilateral cost
    volume). The network reads the minimum instead of having to learn matching from scratch."""
    b, c, h, w = s0.shape
    r = torch.arange(-radius, radius + 1, device=s0.device, dtype=s0.dtype) * step
    d = torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1).flip(-1).reshape(-1, 2)  # (K, (dx, dy))
    k = d.shape[0]
    tt = t.view(b, 1, 1, 1, 1).to(s0.dtype)
    dd = d.view(1, k, 2, 1, 1)
    f0 = (g0.unsqueeze(1) - tt * dd).reshape(b * k, 2, h, w)
    f1 = (g1.unsqueeze(1) + (1 - tt) * dd).reshape(b * k, 2, h, w)
    rep = lambda x: x.unsqueeze(1).expand(b, k, c, h, w).reshape(b * k, c, h, w)
    diff = (backward_warp(rep(s0), f0) - backward_warp(rep(s1), f1)).abs().mean(1)
    return diff.view(b, k, h, w)


class _Level(nn.Module):
    """One scale: inputs at 1/factor of the frame (with a cost volume around the current motion),
    features one stride lower, (dflow0, dflow1, dlogit) back at 1/factor."""

    def __init__(self, factor: int, channels: int, convs: int, radius: int = 0, step: float = 2.0):
        super().__init__()
        self.factor, self.radius, self.step = factor, radius, step
        c = channels
        cin = 6 + 6 + 4 + 2 + (2 * radius + 1) ** 2 * (radius > 0)  # endpoints, warped, flows, logit + t, costs
        self.down = nn.Sequential(nn.Conv2d(cin, c, 3, 2, 1), nn.PReLU(c))
        self.body = nn.Sequential(*[m for _ in range(convs) for m in (nn.Conv2d(c, c, 3, 1, 1), nn.PReLU(c))])
        self.head = nn.Conv2d(c, 5 * 4, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.down(x)
        return F.pixel_shuffle(self.head(f + self.body(f)), 2)


class MotionRefiner(nn.Module):
    def __init__(self, levels=((8, 64, 4, 0), (4, 48, 4, 0), (2, 32, 3, 0))):
        """levels: (factor, channels, convs[, cost radius]) from coarse to fine; a level computes at
        2 x factor; radius 0 leaves out the cost volume."""
        super().__init__()
        self.levels = nn.ModuleList(_Level(*lv) for lv in levels)
        self.config = {"levels": [list(lv) for lv in levels]}

    @property
    def granularity(self) -> int:
        """Frame sides are padded to a multiple of this before the network sees them."""
        return 2 * max(lv.factor for lv in self.levels)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor, flow_t0: torch.Tensor, flow_t1: torch.Tensor,
                logit: torch.Tensor, t: torch.Tensor):
        """f0, f1 (B, 3, H, W) in [0, 1]; flow_t0, flow_t1 (B, 2, H, W) from time t to each endpoint;
        logit (B, 1, H, W): the blend's weight of f0 as a logit; t (B,). H and W multiples of
        `granularity`. Returns the refined (flow_t0, flow_t1, logit)."""
        h, w = f0.shape[-2:]
        tmap = t.view(-1, 1, 1, 1).to(f0.dtype)
        for lv in self.levels:
            size = (h // lv.factor, w // lv.factor)
            s0, s1 = _resize(f0, size), _resize(f1, size)
            g0, g1 = _resize(flow_t0, size) / lv.factor, _resize(flow_t1, size) / lv.factor
            parts = [s0, s1, backward_warp(s0, g0), backward_warp(s1, g1),
                     g0 / 8.0, g1 / 8.0, _resize(logit, size), tmap.expand(-1, 1, *size)]
            if lv.radius:
                with torch.no_grad():  # the costs steer the correction; gradients flow through the warps
                    parts.append(symmetric_cost(s0, s1, g0.detach(), g1.detach(), t, lv.radius, lv.step))
            # the levels may run in bf16; flows and their corrections stay in the inputs' float32,
            # whose sub-pixel precision bf16 (8 bits of mantissa) would lose beyond a few pixels
            x = torch.cat(parts, dim=1).to(lv.head.weight.dtype)
            d = _resize(lv(x).to(f0.dtype), (h, w))
            flow_t0 = flow_t0 + d[:, 0:2] * lv.factor
            flow_t1 = flow_t1 + d[:, 2:4] * lv.factor
            logit = logit + d[:, 4:5]
        return flow_t0, flow_t1, logit

    def blend(self, f0, f1, flow_t0, flow_t1, logit):
        """The frame at t from refined motion: both endpoints warped there, mixed by sigmoid(logit)."""
        w0, w1 = backward_warp(f0, flow_t0), backward_warp(f1, flow_t1)
        a = torch.sigmoid(logit)
        return a * w0 + (1 - a) * w1, w0, w1


def save_refiner(path_stem: str | Path, net: MotionRefiner, meta: dict) -> None:
    """OUT.safetensors (float32 weights) and OUT.yaml (`levels` and what `meta` adds)."""
    save_module(path_stem, net, {**net.config, **meta})


def load_refiner(path_stem: str | Path, device: str = "cpu", precision: str = "fp32") -> MotionRefiner:
    return load_module(path_stem, lambda meta: MotionRefiner(tuple(tuple(int(v) for v in lv) for lv in meta["levels"])),
                       device, precision)


def weight_logit(weight0: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The blend's weight of f0 (0-1) as the logit the refiner corrects, clamped off 0 and 1."""
    w = weight0.clamp(eps, 1 - eps)
    return torch.log(w / (1 - w))


def refined_hints(net: MotionRefiner, f0: np.ndarray, f1: np.ndarray, t: float, flow_t0: np.ndarray,
                  flow_t1: np.ndarray, weight0: np.ndarray):
    """(warp0, warp1, blend) float32 (H, W, 3) from the classical motion at t refined by `net`:
    frames (H, W, 3) in [0, 1], flows (H, W, 2), weight0 (H, W) the classical blend's weight of f0.
    Runs on the network's device (its convolutions in its number format, the rest in float32);
    the frame is edge-padded to its granularity."""
    p = next(net.parameters())
    g = net.granularity
    h, w = f0.shape[:2]
    pad = (0, -w % g, 0, -h % g)

    def to_t(a: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        x = x[..., None] if x.ndim == 2 else x
        return F.pad(x.permute(2, 0, 1)[None].to(p.device), pad, mode="replicate")

    a, b = to_t(f0), to_t(f1)
    with torch.no_grad():
        ft0, ft1, logit = net(a, b, to_t(flow_t0), to_t(flow_t1), weight_logit(to_t(weight0)),
                              torch.tensor([float(t)], device=p.device))
        out, w0, w1 = net.blend(a, b, ft0, ft1, logit)
    back = lambda x: x[0, :, :h, :w].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return back(w0), back(w1), back(out)
