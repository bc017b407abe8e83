"""Sliding-window video network in a reduced-resolution space (the v2 models).

The whole chunk is pixel-unshuffled by `factor` (2 for denoising, the scale for super-resolution:
SR then runs at the low input resolution, never at the output's), so every layer works on
factor^2 fewer pixels. Each frame is encoded once; each output frame then fuses the encodings of
its 2 * radius + 1 neighbours (FastDVDnet's lesson: a wide window with a noise-level map buys
more than explicit alignment) and runs one small U-Net, without normalisation layers, whose head
pixel-shuffles back to the output resolution.

Noise levels enter as constant input planes (the current and the start level), which is cheaper
than embedding-modulated blocks and is the noise-level map FastDVDnet found essential.

Same call signature as VideoUNet, so EDMPrecond, the samplers and tiling are shared:
F(x (B,T,3,H,W), cond (B,T,Cc,H,W), scalars (B,2)) -> (B,T,3,H,W).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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


class WindowNet(nn.Module):
    group = 8  # frames per pass of the per-frame stage at inference

    def __init__(self, in_channels: int = 3, cond_channels: int = 7, out_channels: int = 3,
                 factor: int = 2, radius: int = 2, enc: int = 32,
                 channels: tuple[int, ...] = (48, 96, 128), blocks: tuple[int, ...] = (1, 1, 2),
                 scalars: int = 2):
        super().__init__()
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

    def forward(self, x: torch.Tensor, cond: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        b, t, _, h, w = x.shape
        r = self.factor
        inp = torch.cat([x, cond], dim=2).reshape(b * t, -1, h, w)
        if r > 1:
            inp = F.pixel_unshuffle(inp, r)
        hh, ww = h // r, w // r
        planes = scalars.to(inp.dtype).repeat_interleave(t, dim=0)[:, :, None, None].expand(-1, -1, hh, ww)
        inp = torch.cat([inp, planes], dim=1).contiguous(memory_format=torch.channels_last)
        e = self.enc2(_act(self.enc1(inp)))                       # one encoding per frame
        e = _act(e).reshape(b, t, self.enc_width, hh, ww)
        # each output frame sees its 2r+1 neighbours; the chunk's ends repeat the edge frame
        offs = torch.arange(-self.radius, self.radius + 1, device=x.device)
        idx = (torch.arange(t, device=x.device)[:, None] + offs[None]).clamp(0, t - 1)
        if torch.is_grad_enabled() or b > 1 or t <= self.group:
            out = self._per_frame(e.index_select(1, idx.reshape(-1)).reshape(b * t, -1, hh, ww))
        else:  # inference on long windows: bound memory by gathering and running frames in groups
            out = torch.cat([self._per_frame(e[0].index_select(0, idx[i:i + self.group].reshape(-1))
                                             .reshape(-1, (2 * self.radius + 1) * self.enc_width, hh, ww))
                             for i in range(0, t, self.group)])
        if r > 1:
            out = F.pixel_shuffle(out, r)
        return out.reshape(b, t, self.out_channels, h, w)

    def _per_frame(self, win: torch.Tensor) -> torch.Tensor:
        hcur = _act(self.fuse(win.contiguous(memory_format=torch.channels_last)))
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
                    blocks=list(self.blocks), scalars=self.scalars)
