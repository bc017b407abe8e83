"""Few-step samplers over a denoiser `denoise(x, sigma) -> clean estimate`.

The forward process is the straight path from the clean chunk x0 to the noisy degraded start
y_s = y + sigma_s * eps (InDI / ResShift style): x_sigma = x0 + (sigma / sigma_s) (y_s - x0).
For Gaussian denoising y_s is the noisy input itself, so this is exactly EDM's x0 + sigma n.
Along that path (x - x0) / sigma is constant, so the Euler step of the probability-flow ODE,
x <- x + (sigma_next - sigma) (x - D(x)) / sigma, is the right update for any number of steps.
"""
from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, float], torch.Tensor]


def sigma_ladder(start: float, steps: int, rho: float = 7.0, sigma_min: float = 0.002) -> list[float]:
    """Karras et al.'s spacing from `start` down to sigma_min, then 0 (steps + 1 values)."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    if steps == 1 or start <= sigma_min:
        return [start, 0.0]
    hi, lo = start ** (1 / rho), sigma_min ** (1 / rho)
    sigmas = [(hi + i / (steps - 1) * (lo - hi)) ** rho for i in range(steps)]
    return sigmas + [0.0]


@torch.no_grad()
def sample_euler(denoise: Denoiser, x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        x0 = denoise(x, sigma)
        x = x0 if sigma_next == 0 else x + (sigma_next - sigma) * (x - x0) / sigma
    return x


@torch.no_grad()
def sample_heun(denoise: Denoiser, x: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoise(x, sigma)) / sigma
        x_next = x + (sigma_next - sigma) * d
        if sigma_next > 0:
            d_next = (x_next - denoise(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * (d + d_next) / 2
        x = x_next
    return x


SAMPLERS = {"euler": sample_euler, "heun": sample_heun}
