"""Preconditioning (Karras et al. 2022, EDM) around a conditional network.

    D(x; sigma, cond) = skip + c_out F(c_in x, cond, [c_noise(sigma), c_noise(sigma_s)])

EDM's skip branch is c_skip * x. Restoration has a better one: the degraded estimate the
sampler starts from (the noisy frame, the bicubic upsample, the flow-warped blend), so with an
`estimate` the skip is that estimate and F learns only the residual (as in DnCNN / VDSR /
ResShift). An untrained network is then exactly the classical estimate instead of noise, which is
what makes a few hundred CPU training steps useful. c_in still normalises the noisy state's scale.
Data is in [-1, 1] (sigma_data 0.5); a noise std s on the 0-255 scale is sigma = 2 s / 255.
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
                start_sigma: torch.Tensor | None = None, estimate: torch.Tensor | None = None) -> torch.Tensor:
        """x, cond, estimate (B,T,C,H,W); sigma, start_sigma (B,) -> clean estimate (B,T,3,H,W)."""
        sd = self.sigma_data
        sigma = sigma.reshape(-1).to(x.dtype)
        start_sigma = sigma if start_sigma is None else start_sigma.reshape(-1).to(x.dtype)
        s = sigma.view(-1, 1, 1, 1, 1)
        c_in = 1 / (s ** 2 + sd ** 2).sqrt()
        scalars = torch.stack([sigma.clamp_min(1e-4).log() / 4, start_sigma.clamp_min(1e-4).log() / 4], dim=1)
        # the net may run in another format (bf16 on CPUs that have it): cast in and out here, so
        # the skip (the estimate) keeps full precision and only the residual is rounded
        dt = next(self.net.parameters()).dtype
        f = self.net(x.to(dt) * c_in.to(dt) if dt != x.dtype else c_in * x, cond.to(dt), scalars.to(dt)).to(x.dtype)
        if estimate is not None:
            return estimate + sd * f
        c_skip = sd ** 2 / (s ** 2 + sd ** 2)
        c_out = s * sd / (s ** 2 + sd ** 2).sqrt()
        return c_skip * x + c_out * f
