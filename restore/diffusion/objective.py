"""The training objective, one small class (EDM's `EDMLoss` shape) for training and for probes.

A batch holds clean chunks x0, their noisy degraded starts y_s at level sigma_s and the degraded
estimate (the preconditioning's skip). Each chunk is trained at a point sigma = u * sigma_s of the
straight path from y_s to x0 (samplers.py), u ~ U(0, 1], with a share exactly at u = 1 because
the first step does most of the work in few-step sampling (and is the only one at 1 step).
The loss counts only the frames the model has to restore (not the anchor slots).
"""
from __future__ import annotations

import torch

# Charbonnier / L1 fit the conditional median: right for dense residuals (noise, blur), but where
# the estimate's errors are sparse and of unpredictable sign (flow failures in interpolation) the
# median correction is zero and the model learns nothing. L2 fits the conditional mean instead.
PIXEL_LOSSES = {
    "charbonnier": lambda a, b: torch.sqrt((a - b) ** 2 + 1e-6),
    "l1": lambda a, b: (a - b).abs(),
    "l2": lambda a, b: (a - b) ** 2,
}


class RestorationLoss:
    def __init__(self, pixel: str = "charbonnier", p_first_step: float = 0.3, lpips_weight: float = 0.0,
                 lpips_fn=None, u_min: float = 0.02):
        if pixel not in PIXEL_LOSSES:
            raise ValueError(f"unknown pixel loss {pixel!r} ({', '.join(PIXEL_LOSSES)})")
        self.pixel, self.p_first_step, self.u_min = PIXEL_LOSSES[pixel], p_first_step, u_min
        self.lpips_weight, self.lpips_fn = lpips_weight, lpips_fn

    def sample_u(self, b: int, device, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(b, device=device, generator=generator).clamp_min(self.u_min)
        first = torch.rand(b, device=device, generator=generator) < self.p_first_step
        return torch.where(first, torch.ones_like(u), u)

    def estimate_loss(self, batch: dict) -> float:
        """The pixel loss of doing nothing (the degraded estimate itself), under the same mask:
        the training log's yardstick, since a restoration loss alone says nothing about the gain."""
        x0, est = batch["x0"], batch["estimate"]
        mask = batch["loss_mask"].view(x0.shape[0], -1, 1, 1, 1).to(x0.dtype)
        per = self.pixel(est.to(x0.dtype), x0) * mask
        return float(per.sum() / (mask.sum() * per[0, 0].numel()).clamp_min(1))

    def __call__(self, model, batch: dict, u: torch.Tensor | None = None, autocast=None):
        """-> (scalar loss, per-chunk pixel loss (B,), clean estimate (B,T,3,H,W))."""
        x0, start, sigma_s = batch["x0"], batch["start"], batch["sigma_s"]
        b = x0.shape[0]
        if u is None:
            u = self.sample_u(b, x0.device)
        x = x0 + u.view(-1, 1, 1, 1, 1) * (start - x0)
        if autocast is None:
            pred = model(x, u * sigma_s, batch["cond"], sigma_s, batch["estimate"]).float()
        else:
            with autocast:
                pred = model(x, u * sigma_s, batch["cond"], sigma_s, batch["estimate"]).float()
        mask = batch["loss_mask"].view(b, -1, 1, 1, 1).to(pred.dtype)
        per = self.pixel(pred, x0) * mask
        per_chunk = per.flatten(1).sum(1) / (mask.flatten(1).sum(1) * per[0, 0].numel()).clamp_min(1)
        loss = per_chunk.mean()
        if self.lpips_fn is not None and self.lpips_weight > 0:
            sel = mask.view(-1) > 0
            loss = loss + self.lpips_weight * self.lpips_fn(pred.flatten(0, 1)[sel], x0.flatten(0, 1)[sel]).mean()
        return loss, per_chunk.detach(), pred
