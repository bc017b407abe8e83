"""EDM preconditioning (Karras et al. 2022) around a conditional network.

D(x; sigma, cond) = c_skip x + c_out F(c_in x, cond, [c_noise, start level]).
Data is in [-1, 1] (sigma_data 0.5), so a noise std of s on the 0-255 scale is sigma = 2 s / 255.
"""
from __future__ import annotations

import torch
from torch import nn


class EDMPrecond(nn.Module):
    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor,
                start_sigma: torch.Tensor | None = None) -> torch.Tensor:
        """x, cond (B,T,C,H,W); sigma, start_sigma (B,) -> clean estimate (B,T,3,H,W)."""
        sd = self.sigma_data
        sigma = sigma.reshape(-1).to(x.dtype)
        if start_sigma is None:
            start_sigma = sigma
        start_sigma = start_sigma.reshape(-1).to(x.dtype)
        s = sigma.view(-1, 1, 1, 1, 1)
        c_skip = sd ** 2 / (s ** 2 + sd ** 2)
        c_out = s * sd / (s ** 2 + sd ** 2).sqrt()
        c_in = 1 / (s ** 2 + sd ** 2).sqrt()
        scalars = torch.stack([sigma.clamp_min(1e-4).log() / 4, start_sigma.clamp_min(1e-4).log() / 4], dim=1)
        f = self.net(c_in * x, cond, scalars)
        return c_skip * x + c_out * f.to(x.dtype)
