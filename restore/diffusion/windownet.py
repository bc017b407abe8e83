"""Sliding-window video network in a reduced-resolution space (the v2 models).

The whole chunk is pixel-unshuffled by `factor` (2 for denoising, the scale for super-resolution:
SR then runs at the low input resolution, never at the output's), so every layer works on
factor^2 fewer pixels. Each frame is encoded once; each output frame then fuses the encodings of
its 2 * radius + 1 neighbours (FastDVDnet's lesson: a wide window with a noise-level map buys
more than explicit alignment) and runs one small U-Net, without normalisation layers, whose head
pixel-shuffles back to the output resolution.

With `align`, each neighbour's encoding is first warped onto the output frame by DIS optical flow
computed between the two frames' degraded estimates at the network's own (reduced) resolution,
where DIS is cheap: fusion then sees the same scene point in every slot even under motion, which
a 5-frame window without alignment cannot exploit (TOFlow's and EDVR's lesson for SR). Flow is an
input to the layers, not learned, so it needs no gradient and no pretrained flow network.

With `propagate` (P channels; needs `align`), a state of P channels also runs through the window
in both directions before the U-Net, as BasicVSR's propagation: backward from the last frame,
then forward from the first, each step warping the previous state onto the frame by the same
consecutive DIS flows the alignment uses. A frame then draws on every frame of its window (34 at
x4 inference, the first two restored anchors of the previous window among them) instead of its
2 * radius + 1 neighbours. The states enter the fused features through a 1x1 conv that starts at
zero, so a network trained without propagation loads and starts exactly where it was.

Noise levels enter as constant input planes (the current and the start level), which is cheaper
than embedding-modulated blocks and is the noise-level map FastDVDnet found essential.

Same call signature as VideoUNet, so EDMPrecond, the samplers and tiling are shared:
F(x (B,T,3,H,W), cond (B,T,Cc,H,W), scalars (B,2)) -> (B,T,3,H,W).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..ops.flow import dis_flow, warp

ALIGN_PRESET = "fast"  # DIS preset for aligning neighbours (at the reduced resolution)
PROPAGATION_MODULES = ("back", "forth", "inject")  # what `propagate` adds to a trained network


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1, inplace=True)


class Res(nn.Module):
    """conv-act-conv with an identity skip; the second conv starts at zero (block = identity)."""

    def __init__(self, c: int):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=1)
        nn.init.zeros_(self.b.weight)
        nn.init.zeros_(self.b.bias)

    def forward(self, x):
        return x + self.b(_act(self.a(x)))


def _stage(c: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[Res(c) for _ in range(n)])


class _FlowChain:
    """Flows between the frames of one window, composed from consecutive DIS flows: a neighbour two
    frames away moves twice as far, and DIS on small frames loses large motions that it follows
    step by step. Each consecutive flow is computed once, whichever frames ask for it."""

    def __init__(self, grey: np.ndarray):
        self.grey, self.steps = grey, {}

    def step(self, a: int, b: int) -> np.ndarray:
        if (a, b) not in self.steps:
            self.steps[a, b] = dis_flow(self.grey[a], self.grey[b], ALIGN_PRESET)
        return self.steps[a, b]

    def __call__(self, i: int, j: int) -> np.ndarray:
        """flow(i -> j): grey[i](x) ~ grey[j](x + flow(x)); zero for i == j."""
        flow = np.zeros(self.grey.shape[1:] + (2,), np.float32)
        d = 1 if j > i else -1
        for m in range(i, j, d):
            # follow the path: from x + flow (in frame m), one more step to frame m + d
            flow += warp(self.step(m, m + d), flow) if m != i else self.step(m, m + d)
        return flow


class _Propagator(nn.Module):
    """One step of a propagation pass: (features, carried state) -> the new state."""

    def __init__(self, cin: int, p: int, blocks: int = 2):
        super().__init__()
        self.inp = nn.Conv2d(cin, p, 3, padding=1)
        self.body = _stage(p, blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(_act(self.inp(x)))


def _grid(flows: np.ndarray, device) -> torch.Tensor:
    """Flows (..., h, w, 2) in pixels -> grid_sample positions x + flow in [-1, 1]."""
    hh, ww = flows.shape[-3:-1]
    ys, xs = torch.meshgrid(torch.arange(hh, dtype=torch.float32), torch.arange(ww, dtype=torch.float32),
                            indexing="ij")
    to_unit = torch.tensor([2 / max(ww - 1, 1), 2 / max(hh - 1, 1)])
    grid = torch.from_numpy(np.ascontiguousarray(flows, np.float32)).add_(torch.stack([xs, ys], -1))
    return grid.mul_(to_unit).sub_(1).to(device)


def _warp(state: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample a (B, C, h, w) state at the grid's positions, in float32 (see _aligned)."""
    return F.grid_sample(state.float(), grid, mode="bilinear", padding_mode="border",
                         align_corners=True).to(state.dtype)


class WindowNet(nn.Module):
    group = 2  # output frames per pass at inference (see forward)

    def __init__(self, in_channels: int = 3, cond_channels: int = 7, out_channels: int = 3,
                 factor: int = 2, radius: int = 2, enc: int = 32,
                 channels: tuple[int, ...] = (48, 96, 128), blocks: tuple[int, ...] = (1, 1, 2),
                 scalars: int = 2, align: bool = False, propagate: int = 0):
        super().__init__()
        if propagate and not align:
            raise ValueError("propagate needs align: the states follow the alignment's flows")
        self.align, self.propagate = bool(align), int(propagate)
        self.in_channels, self.cond_channels, self.out_channels = in_channels, cond_channels, out_channels
        self.factor, self.radius, self.enc_width = factor, radius, enc
        self.channels, self.blocks, self.scalars = tuple(channels), tuple(blocks), scalars
        self.multiple = factor * 2 ** (len(channels) - 1)
        cin = (in_channels + cond_channels) * factor * factor + scalars
        self.enc1 = nn.Conv2d(cin, enc, 3, padding=1)
        self.enc2 = nn.Conv2d(enc, enc, 3, padding=1)
        self.fuse = nn.Conv2d((2 * radius + 1) * enc, channels[0], 1)
        self.down_stages = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, c in enumerate(channels):
            self.down_stages.append(_stage(c, blocks[i]))
            if i + 1 < len(channels):
                self.downs.append(nn.Conv2d(c, channels[i + 1], 3, stride=2, padding=1))
        self.ups = nn.ModuleList()
        self.up_stages = nn.ModuleList()
        for i in reversed(range(len(channels) - 1)):
            self.ups.append(nn.Conv2d(channels[i + 1], channels[i] * 4, 1))
            self.up_stages.append(_stage(channels[i], 1))
        self.head = nn.Conv2d(channels[0], out_channels * factor * factor, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if self.propagate:
            p = self.propagate
            self.back = _Propagator(channels[0] + p, p)
            self.forth = _Propagator(channels[0] + 2 * p, p)
            self.inject = nn.Conv2d(2 * p, channels[0], 1)
            nn.init.zeros_(self.inject.weight)
            nn.init.zeros_(self.inject.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = x.shape
        # each output frame sees its 2r+1 neighbours; the chunk's ends repeat the edge frame
        offs = torch.arange(-self.radius, self.radius + 1, device=x.device)
        idx = (torch.arange(t, device=x.device)[:, None] + offs[None]).clamp(0, t - 1)
        chains = [_FlowChain(g) for g in self._grey(cond)] if self.align else None
        if torch.is_grad_enabled() or b > 1 or t <= self.group:
            return self._restore(self._encode(x, cond, scalars), idx, h, w, chains)
        if self.propagate:
            return self._restore_propagated(x, cond, scalars, idx, h, w, chains)
        outs = [self._shuffled(self._unet(_act(self.fuse(win))))
                for win in self._groups(x, cond, scalars, idx, chains)]
        return torch.cat(outs).reshape(1, t, self.out_channels, h, w)

    def _groups(self, x, cond, scalars, idx, chains):
        """Inference windows `group` frames at a time: yields each group's aligned windows,
        encoding each frame once and keeping the last ones' encodings for the next group's
        neighbours, so the working set of a tile stays in the CPU's cache whatever the window's
        length."""
        t = x.shape[1]
        e, e_lo, e_hi = None, 0, 0
        for i in range(0, t, self.group):
            lo, hi = max(0, i - self.radius), min(t, i + self.group + self.radius)
            kept = [] if e is None else [e[:, lo - e_lo:]]
            if hi > e_hi:  # (a group narrower than the radius may need no new frame)
                kept.append(self._encode(x[:, e_hi:hi], cond[:, e_hi:hi], scalars))
            e = torch.cat(kept, dim=1) if len(kept) > 1 else kept[0]
            e_lo, e_hi = lo, hi
            win = self._gather(e, idx[i:i + self.group] - lo)
            if chains is not None:
                win = self._aligned(win, chains, idx[i:i + self.group])
            yield win

    def _restore_propagated(self, x, cond, scalars, idx, h, w, chains) -> torch.Tensor:
        """Inference with propagation (B = 1): every frame's fused features first, group by group,
        then the states through the window, then the U-Net group by group."""
        fused = torch.cat([_act(self.fuse(win)) for win in self._groups(x, cond, scalars, idx, chains)])
        fused = self._propagated(fused[None], chains)[0]
        outs = [self._shuffled(self._unet(fused[i:i + self.group])) for i in range(0, len(fused), self.group)]
        return torch.cat(outs).reshape(1, len(fused), self.out_channels, h, w)

    def _propagated(self, f: torch.Tensor, chains: list) -> torch.Tensor:
        """Fused features (B, T, C, h, w) plus what the states carried from the whole window."""
        b, t, _, hh, ww = f.shape
        # consecutive flows, already computed by the alignment: towards t + 1 (backward pass)
        # and towards t - 1 (forward pass), as grid_sample positions
        if t > 1:
            nxt = _grid(np.stack([[c.step(i, i + 1) for i in range(t - 1)] for c in chains]), f.device)
            prv = _grid(np.stack([[c.step(i + 1, i) for i in range(t - 1)] for c in chains]), f.device)
        back, state = [None] * t, None
        for i in reversed(range(t)):
            prev = f.new_zeros(b, self.propagate, hh, ww) if state is None else _warp(state, nxt[:, i])
            state = back[i] = self.back(torch.cat([f[:, i], prev], 1))
        out, state = [], None
        for i in range(t):
            prev = f.new_zeros(b, self.propagate, hh, ww) if state is None else _warp(state, prv[:, i - 1])
            state = self.forth(torch.cat([f[:, i], back[i], prev], 1))
            out.append(f[:, i] + self.inject(torch.cat([back[i], state], 1)))
        return torch.stack(out, 1)

    def _encode(self, x: torch.Tensor, cond: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """x, cond (B, T, C, H, W) -> per-frame encodings (B, T, H/r, W/r, enc), channels-last."""
        b, t, _, h, w = x.shape
        r = self.factor
        hh, ww = h // r, w // r
        # pixel_unshuffle numbers channels c * r^2 + offset, so unshuffling x and cond apart and
        # joining them equals unshuffling their join, without the full-resolution copy
        parts = [F.pixel_unshuffle(v.reshape(b * t, -1, h, w), r) if r > 1 else v.reshape(b * t, -1, h, w)
                 for v in (x, cond)]
        planes = scalars.to(x.dtype).repeat_interleave(t, dim=0)[:, :, None, None].expand(-1, -1, hh, ww)
        inp = torch.cat([*parts, planes], dim=1).contiguous(memory_format=torch.channels_last)
        e = _act(self.enc2(_act(self.enc1(inp))))
        return e.permute(0, 2, 3, 1).reshape(b, t, hh, ww, self.enc_width)  # a view

    def _restore(self, e: torch.Tensor, idx: torch.Tensor, h: int, w: int,
                 chains: list | None = None) -> torch.Tensor:
        """Encodings (B, T, ...) of a whole chunk and each output frame's neighbours idx (T, 2r+1)
        -> (B, T, out, H, W); with each chunk's flows (`chains`), aligned."""
        b, t = e.shape[:2]
        win = self._gather(e, idx)
        if chains is not None:
            win = self._aligned(win, chains, idx)
        f = _act(self.fuse(win))
        if self.propagate:
            f = self._propagated(f.unflatten(0, (b, t)), chains).flatten(0, 1)
        return self._shuffled(self._unet(f)).reshape(b, t, self.out_channels, h, w)

    def _shuffled(self, out: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(out, self.factor) if self.factor > 1 else out

    @staticmethod
    def _gather(e: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(b, t, hh, ww, enc) encodings, (n, 2r+1) frame indices -> (b*n, (2r+1)*enc, hh, ww)
        windows, channels-last: each pixel's neighbour encodings side by side."""
        b, _, hh, ww, c = e.shape
        n, k = idx.shape
        win = e.index_select(1, idx.reshape(-1)).view(b, n, k, hh, ww, c)
        win = win.permute(0, 1, 3, 4, 2, 5).reshape(b * n, hh, ww, k * c)
        return win.permute(0, 3, 1, 2)

    def _grey(self, cond: torch.Tensor) -> np.ndarray:
        """The degraded estimates (cond's first 3 channels, in [-1, 1]) as (B, T, H/r, W/r) uint8
        luma at the network's resolution, on the host, where DIS runs."""
        b, t, _, h, w = cond.shape
        est = cond[:, :, :3].reshape(b * t, 3, h, w).float()
        if self.factor > 1:
            est = F.avg_pool2d(est, self.factor)
        luma = torch.tensordot(torch.tensor([0.299, 0.587, 0.114], device=est.device), est, dims=([0], [1]))
        u8 = ((luma + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return u8.reshape(b, t, *u8.shape[1:]).cpu().numpy()

    def _aligned(self, win: torch.Tensor, chains: list, idx: torch.Tensor) -> torch.Tensor:
        """Warp each neighbour slot of the windows (b*n, k*c, hh, ww) onto its output frame:
        slot j of frame i samples its encoding at x + flow(i -> j)(x); idx counts from the
        chunk's first frame, as the chains do. The centre slot is the frame itself."""
        b, (hh, ww) = len(chains), win.shape[-2:]
        n, k = idx.shape
        c, r = win.shape[1] // k, self.radius
        pairs = idx.cpu().numpy()
        moved = [s for s in range(k) if s != r]
        flows = np.zeros((b, n, k - 1, hh, ww, 2), np.float32)

        def fill(bi: int) -> None:
            for i in range(n):
                for m, s in enumerate(moved):
                    flows[bi, i, m] = chains[bi](pairs[i, r], pairs[i, s])

        # A training batch's clips are flowed side by side: OpenCV releases the GIL, and on a GPU
        # machine DIS on the host would otherwise take longer than the step itself (64 clips of
        # 7 frames at 64 px: 0.6 s here, one clip after another).
        workers = min(b, os.cpu_count() or 1)
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(fill, range(b)))
        else:
            fill(0)
        # sampling positions x + flow in grid_sample's [-1, 1] (contiguous torch passes: numpy's
        # strided ones over the (x, y) pairs took a quarter of the alignment's time)
        grid = _grid(flows, win.device).view(b * n, k - 1, hh, ww, 2)
        slots = win.unflatten(1, (k, c))  # (b*n, k, c, hh, ww), a view of the channels-last windows
        out = torch.empty_like(win, memory_format=torch.channels_last)
        out_slots = out.unflatten(1, (k, c))
        out_slots[:, r] = slots[:, r]
        # Each moved slot is sampled straight from its channels-last view, in float32 whatever the
        # network's format: a bf16 grid is off by up to a pixel on a 256-px tile, and CPU
        # grid_sample in bf16 gave NaN on some inputs. (Gathering the slots into one contiguous
        # batch first cost 2.4x more on the CPU, in the copies.) The result is cast back to the
        # network's format before it is scattered into the channels-last slots: the transposing
        # copy then moves half the bytes (5.2 -> 4.5 ms per 2-frame group of 196 px tiles).
        for m, s in enumerate(moved):
            out_slots[:, s] = F.grid_sample(slots[:, s].float(), grid[:, m], mode="bilinear",
                                            padding_mode="border", align_corners=True).to(win.dtype)
        return out

    def _unet(self, hcur: torch.Tensor) -> torch.Tensor:
        """Fused features of each output frame -> its output at the reduced resolution."""
        skips = []
        for i, stage in enumerate(self.down_stages):
            hcur = stage(hcur)
            if i < len(self.downs):
                skips.append(hcur)
                hcur = _act(self.downs[i](hcur))
        for up, stage in zip(self.ups, self.up_stages):
            hcur = F.pixel_shuffle(up(hcur), 2) + skips.pop()
            hcur = stage(hcur)
        return self.head(hcur)

    def config(self) -> dict:
        return dict(type="window", in_channels=self.in_channels, cond_channels=self.cond_channels,
                    out_channels=self.out_channels, factor=self.factor, radius=self.radius,
                    enc=self.enc_width, channels=list(self.channels),
                    blocks=list(self.blocks), scalars=self.scalars,
                    **({"align": True} if self.align else {}),
                    **({"propagate": self.propagate} if self.propagate else {}))
