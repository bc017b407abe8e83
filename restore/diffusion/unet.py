"""Small pixel-space video U-Net.

Frames of a chunk are folded into the batch for the spatial layers, and mixed across time by
(a) a 3-tap temporal convolution inside every residual block, zero-initialised so the block
starts as the identity in time, and (b) self-attention over frames at the lowest resolution.
Pixel-unshuffle at the input makes every layer 4x cheaper than full resolution; no VAE.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def fourier_embedding(values: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, k) scalars -> (B, k*dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=values.device, dtype=torch.float32) * (-math.log(1000.0) / half))
    args = values.float()[..., None] * freqs * 100.0 / 10.0
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    return emb.flatten(1)


def conv1x1(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """A 1x1 Conv2d as a matmul over channels: on channels_last tensors this is a free view and
    MKL's GEMM, where PyTorch's CPU conv would fall back to a slow path plus layout copies."""
    w = conv.weight.view(conv.out_channels, conv.in_channels)
    return F.linear(x.permute(0, 2, 3, 1), w, conv.bias).permute(0, 3, 1, 2)


class TemporalConv(nn.Module):
    """3-tap convolution over time: out[t] = x[t] + P x[t-1] + Q x[t] + R x[t+1] (replicated ends).

    The three taps are one 1x1 convolution's weight (C, 3C) over [x(t-1), x(t), x(t+1)]. Each tap
    is a (C x C) matrix product accumulated in place (baddbmm_) into the rows of the frames it
    feeds: frames are the outer axis of a channels-last chunk, so a time shift is a contiguous row
    range and nothing is concatenated, shifted or added elementwise (on the CPU that form took a
    quarter of the interpolator's time, and 4x this one's). Zero-initialised: identity in time at
    the start of training.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.proj = nn.Conv2d(3 * channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bt, c, h, w = x.shape
        b, p = bt // frames, h * w
        # in x's dtype: in-place products are not autocast (bf16 training on the CPU)
        taps = self.proj.weight.to(x.dtype).view(c, 3, c).permute(2, 0, 1)  # taps[:, :, k]: tap k, (in, out)
        prev, same, nxt = (taps[:, :, k].expand(b, c, c) for k in range(3))
        xs = x.permute(0, 2, 3, 1).reshape(b, frames * p, c)  # (B, T*H*W, C), free for channels_last
        out = xs + self.proj.bias.to(x.dtype)
        out.baddbmm_(xs, same)
        out[:, p:].baddbmm_(xs[:, :-p], prev)   # frame t gets P x[t-1] ...
        out[:, :p].baddbmm_(xs[:, :p], prev)    # ... and the first frame P x[0]
        out[:, :-p].baddbmm_(xs[:, p:], nxt)
        out[:, -p:].baddbmm_(xs[:, -p:], nxt)
        return out.view(bt, h, w, c).permute(0, 3, 1, 2)


def _silu(x: torch.Tensor) -> torch.Tensor:
    """SiLU, in place where no gradient is recorded (x is then a fresh normalised tensor)."""
    return F.silu(x, inplace=not torch.is_grad_enabled())


def _norm_film_silu(h: torch.Tensor, norm: nn.GroupNorm, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """silu(norm(h) * (1 + scale) + shift) for (N or 1, C) scale and shift.

    A call whose samples share one noise level (inference) has one row of them, which folds into
    the norm's own per-channel affine: the two elementwise passes over h go, about a third of the
    time of this norm-and-activation on the CPU."""
    if len(scale) == 1 and not torch.is_grad_enabled():
        gain = 1 + scale[0].float()
        weight = (norm.weight.float() * gain).to(h.dtype)
        bias = (norm.bias.float() * gain + shift[0].float()).to(h.dtype)
        return _silu(F.group_norm(h, norm.num_groups, weight, bias, norm.eps))
    return F.silu(norm(h) * (1 + scale[:, :, None, None]) + shift[:, :, None, None])


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, temporal: bool):
        super().__init__()
        self.norm1 = nn.GroupNorm(8, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.temporal = TemporalConv(cout) if temporal else None

    def forward(self, x, emb, frames):
        h = self.conv1(_silu(self.norm1(x)))
        scale, shift = self.emb(emb).chunk(2, dim=1)
        h = self.conv2(_norm_film_silu(h, self.norm2, scale, shift))
        h = (conv1x1(x, self.skip) if isinstance(self.skip, nn.Conv2d) else x) + h
        if self.temporal is not None:
            h = self.temporal(h, frames)
        return h


class TemporalAttention(nn.Module):
    """Attention across the frames of a chunk at each spatial position (lowest resolution only)."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, frames):
        if frames == 1:
            return x
        bt, c, h, w = x.shape
        b = bt // frames
        if frames <= self.short:
            return x + self._short(self.norm(x), frames)
        seq = self.norm(x).reshape(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
        y, _ = self.attn(seq, seq, seq, need_weights=False)
        y = self.out(y).reshape(b, h * w, frames, c).permute(0, 2, 3, 1).reshape(bt, c, h, w)
        return x + y

    short = 8  # up to this many frames the attention runs as elementwise products (below)

    def _short(self, xn: torch.Tensor, frames: int) -> torch.Tensor:
        """The same attention (self.attn's weights) for a few frames: nn.MultiheadAttention runs
        one tiny matrix product per pixel and head (with bf16, 20x slower than this); here each of
        the frames^2 query-key pairs is one elementwise product over all pixels at once."""
        bt, c, h, w = xn.shape
        heads = self.attn.num_heads
        seq = xn.permute(0, 2, 3, 1).reshape(bt // frames, frames, h * w, c)  # free for channels_last
        q, k, v = (t.unflatten(-1, (heads, c // heads))
                   for t in F.linear(seq, self.attn.in_proj_weight, self.attn.in_proj_bias).split(c, dim=-1))
        q = q * (c // heads) ** -0.5
        scores = torch.stack([torch.stack([(q[:, i] * k[:, j]).sum(-1) for j in range(frames)], -1)
                              for i in range(frames)], 1)                      # (B, Tq, P, heads, Tk)
        att = scores.softmax(-1)
        y = sum(att[..., j, None] * v[:, j, None] for j in range(frames))     # (B, Tq, P, heads, d)
        y = self.out(F.linear(y.flatten(-2), self.attn.out_proj.weight, self.attn.out_proj.bias))
        return y.reshape(bt, h, w, c).permute(0, 3, 1, 2)


class VideoUNet(nn.Module):
    """F(x_in, cond, scalars) for chunks (B, T, C, H, W); H and W must be multiples of `multiple`."""

    def __init__(self, in_channels: int = 3, cond_channels: int = 7, out_channels: int = 3,
                 channels: tuple[int, ...] = (32, 64, 128), blocks: int = 2, scalars: int = 2,
                 emb_dim: int = 128, attention: bool = True):
        super().__init__()
        self.in_channels, self.cond_channels, self.out_channels = in_channels, cond_channels, out_channels
        self.channels, self.blocks, self.scalars = tuple(channels), blocks, scalars
        self.multiple = 2 * 2 ** (len(channels) - 1)
        self.emb_dim = emb_dim
        self.emb_mlp = nn.Sequential(nn.Linear(scalars * 64, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.stem = nn.Conv2d(4 * (in_channels + cond_channels), channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips = []
        c = channels[0]
        for level, width in enumerate(channels):
            blocks_here = nn.ModuleList()
            for _ in range(blocks):
                blocks_here.append(ResBlock(c, width, emb_dim, temporal=True))
                c = width
            self.down.append(blocks_here)
            skips.append(c)
            if level < len(channels) - 1:
                self.downsample.append(nn.Conv2d(c, channels[level + 1], 3, stride=2, padding=1))
                c = channels[level + 1]
        self.mid_attn = TemporalAttention(c) if attention else None
        self.mid = ResBlock(c, c, emb_dim, temporal=True)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(channels))):
            width = channels[level]
            blocks_here = nn.ModuleList()
            blocks_here.append(ResBlock(c + skips[level], width, emb_dim, temporal=True))
            c = width
            for _ in range(blocks - 1):
                blocks_here.append(ResBlock(c, width, emb_dim, temporal=True))
            self.up.append(blocks_here)
            if level > 0:
                self.upsample.append(nn.Conv2d(c, channels[level - 1] * 4, 3, padding=1))
                c = channels[level - 1]
        self.head_norm = nn.GroupNorm(8, c)
        self.head = nn.Conv2d(c, 4 * out_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
        """x (B,T,Cx,H,W), cond (B,T,Cc,H,W), scalars (B, k) -> (B,T,Cout,H,W)."""
        b, t, _, h, w = x.shape
        inp = torch.cat([x, cond], dim=2).reshape(b * t, -1, h, w)
        inp = F.pixel_unshuffle(inp, 2).contiguous(memory_format=torch.channels_last)
        # one noise level for an inference call: one embedding row (checked only there, where the
        # fold pays: in training the test would cost a device sync every step)
        if not torch.is_grad_enabled() and bool((scalars == scalars[:1]).all()):
            scalars = scalars[:1]
        emb = self.emb_mlp(fourier_embedding(scalars, 64).to(inp.dtype))
        emb = emb.repeat_interleave(t, dim=0) if len(emb) > 1 else emb
        hcur = self.stem(inp)
        skips = []
        for level, blocks_here in enumerate(self.down):
            for block in blocks_here:
                hcur = block(hcur, emb, t)
            skips.append(hcur)
            if level < len(self.downsample):
                hcur = self.downsample[level](hcur)
        if self.mid_attn is not None:
            hcur = self.mid_attn(hcur, t)
        hcur = self.mid(hcur, emb, t)
        for i, blocks_here in enumerate(self.up):
            level = len(self.channels) - 1 - i
            hcur = torch.cat([hcur, skips[level]], dim=1)
            for block in blocks_here:
                hcur = block(hcur, emb, t)
            if i < len(self.upsample):
                hcur = F.pixel_shuffle(self.upsample[i](hcur), 2)
        out = self.head(_silu(self.head_norm(hcur)))
        out = F.pixel_shuffle(out, 2)
        return out.reshape(b, t, self.out_channels, h, w)

    def config(self) -> dict:
        return dict(in_channels=self.in_channels, cond_channels=self.cond_channels,
                    out_channels=self.out_channels, channels=list(self.channels), blocks=self.blocks,
                    scalars=self.scalars, emb_dim=self.emb_dim, attention=self.mid_attn is not None)
