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


def sigma_ladder(start: float, steps: int, rho: float = 1.0) -> list[float]:
    """`steps` levels from `start` down towards 0, then 0 (steps + 1 values).

    Uniform in sigma^(1/rho): rho = 1 is InDI's uniform grid along the straight path (every step
    removes the same share of the distance to the clean chunk); Karras et al.'s rho = 7 crowds
    steps near zero, which suits generation from pure noise, not a start at a small level. The
    last nonzero level is start / steps or more, inside the range the models are trained on.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    hi = start ** (1 / rho)
    return [(hi * (1 - i / steps)) ** rho for i in range(steps)] + [0.0]


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
