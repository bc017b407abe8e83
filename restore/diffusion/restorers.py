"""Trained models wrapped as the registry's SpatialRestorer / Interpolator callables.

Chunks longer than the model's window are processed window by window; each window is anchored
on the last restored frame(s) of the previous one (the same mechanism the chunk planner uses
between chunks), so the whole chunk is restored jointly and consistently. Models that look at
neighbouring frames (WindowNet) also get `lookahead` degraded frames after each window, whose
outputs are dropped, so no frame inside a chunk loses its future context.

How a model is run (window, anchors, lookahead, steps, start level, sampler, tile) comes from
the checkpoint's `inference:` block; the start noise is seeded by the absolute index of the
first frame (`start_index`) when the caller gives it, so a resumed job draws the same noise.
"""
from __future__ import annotations

import numpy as np
import torch

from .centred import FUSE_SCALE, RESTORED_FUSE_SCALE, CentredWindows, fuse_restored, fuse_slots
from .checkpoint import inference_block
from .fusenet import fuse_learned
from ..ops.resize import imresize
from .infer import restore_chunk
from .tasks import interp_task_cond, with_anchors


def _to_t(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) float [0, 1] -> contiguous (T, 3, H, W) float32 in [-1, 1]. In torch, whose
    copies and arithmetic use every thread (numpy's strided transposes cost ~5x more here)."""
    src = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    out = torch.empty(src.shape, dtype=torch.float32)
    out.copy_(src)
    return out.mul_(2).sub_(1)


def _to_np(t: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [-1, 1] -> (T, H, W, 3) float32 in [0, 1], clipped. Consumes `t` (a
    restorer's own result): the scaling is done in place, saving a full-resolution buffer."""
    u = t.float().add_(1).mul_(0.5).clamp_(0, 1).permute(0, 2, 3, 1)
    out = torch.empty(u.shape, dtype=torch.float32, device=u.device)
    out.copy_(u)
    return out.cpu().numpy()


class _Base:
    def __init__(self, model, meta: dict, *, steps: int | None = None, start_sigma: float | None = None,
                 seed: int = 0, tile: int | None = None, window: int | None = None, anchors: int | None = None):
        self.model, self.meta = model, meta
        inf = self.inference = inference_block(meta)
        self.steps = int(steps or inf["steps"])
        self.start_sigma = float(start_sigma if start_sigma is not None else inf["start_sigma"])
        self.sampler = inf["sampler"]
        self.seed = seed
        self.tile = tile if tile is not None else self._auto_tile(inf)
        self.window = int(window or inf["window"])
        self.inner_anchors = int(anchors if anchors is not None else inf["anchors"])
        self.lookahead = int(inf.get("lookahead", 0))
        self.overlap = int(inf.get("overlap", 32))
        self.scale = 1
        self._count = 0

    def _auto_tile(self, inf: dict) -> int | None:
        # Tiles bound memory; on CUDA whole 1080p frames fit comfortably in one pass.
        device = next(self.model.parameters()).device
        return None if device.type == "cuda" else int(inf.get("tile", 256))

    def _offset(self, start_index: int | None, n: int) -> int:
        """Seed offset of a call: the absolute frame index when known, else a running count."""
        offset = self._count if start_index is None else int(start_index)
        self._count = offset + n
        return offset

    def _run(self, task_cond: torch.Tensor, estimate: torch.Tensor, anchors: torch.Tensor | None,
             sigma: float, add_noise: bool, offset: int) -> torch.Tensor:
        """Restore (T,...) frames given the chunk's anchors, window by window."""
        t = task_cond.shape[0]
        outputs: list[torch.Tensor] = []
        start = 0
        while start < t:
            if start == 0:
                anc = anchors[-self.inner_anchors:] if anchors is not None and len(anchors) else None
            else:
                anc = torch.stack(outputs[-self.inner_anchors:])
            n_anc = 0 if anc is None else len(anc)
            end = min(t, start + max(1, self.window - n_anc))
            ahead = min(t, end + self.lookahead)
            # Anchor slots sit in front of the window, as in training: their own degraded input
            # when we have it (inside the chunk), else the restored frame stands in for it.
            if n_anc and start > 0:
                cond_a, est_a = task_cond[start - n_anc:start], estimate[start - n_anc:start]
            else:
                cond_a, est_a = anc, anc
            cond_w = task_cond[start:ahead] if not n_anc else torch.cat([cond_a, task_cond[start:ahead]])
            est_w = estimate[start:ahead] if not n_anc else torch.cat([est_a, estimate[start:ahead]])
            res = restore_chunk(self.model, with_anchors(cond_w, anc), est_w, start_sigma=sigma,
                                steps=self.steps, seed=self.seed + offset + start, add_noise=add_noise,
                                tile=self.tile, overlap=self.overlap, sampler=self.sampler)
            if start == 0 and end == t:  # one window: its frames are the result, no stacking copy
                return res[n_anc:n_anc + t]
            outputs.extend(res[n_anc:n_anc + end - start])
            start = end
        return torch.stack(outputs)


def noise_scale_at(spec, sigma255: float) -> float:
    """The share of the noise level a denoiser's network is told: `spec` is one number, or a table
    of [sigma255, share] points read linearly between them and flat beyond the ends. A table
    because the best share falls with the level: at low noise what the network leaves is small and
    the fusion averages it away, at high noise it is large and survives where the motion defeats
    the fusion (docs/diffusion.md, "A noise_scale that falls with the level")."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return float(spec)
    try:
        points = sorted((float(s), float(k)) for s, k in spec)
    except (TypeError, ValueError):
        raise ValueError(f"noise_scale must be a number or a list of [sigma255, share] pairs, got {spec!r}") from None
    if not points:
        raise ValueError("noise_scale: an empty table")
    return float(np.interp(sigma255, [s for s, _ in points], [k for _, k in points]))


class DiffusionDenoiser(_Base):
    """sigma255: the input's noise sigma on the 0-255 scale (None = estimate per chunk); the
    sampler's start level is that sigma in model units (data in [-1, 1])."""

    def __init__(self, model, meta, *, sigma255: float | None = None, align_radius: int | None = None,
                 fuse: float | None = None, noise_scale: float | list | None = None, fuse_net=None,
                 fuse_share: float = 1.0, **kw):
        super().__init__(model, meta, **kw)
        self.sigma255 = sigma255
        # the share of the learned fusion's change that is kept (0-1): the deblock model's is the
        # stream's damage, since on light encodes averaging blurs detail the codec kept
        self.fuse_share = float(fuse_share)
        # fuse_net: a fusenet.FuseNet that weighs the restored neighbours after the chunk-joint
        # windows (the checkpoint's `inference: fuse_net:` names it; the caller loads it, as the
        # interpolator's motion refiner); an explicit `fuse` scale takes the hand weights instead
        self.fuse_net = fuse_net
        # how much of the restored neighbours, motion-aligned, is averaged into each frame where
        # they agree with it: centred.fuse_slots on aligned windows, centred.fuse_restored after
        # the chunk-joint windows; 0 turns it off. The checkpoint's `inference: fuse:` may set it,
        # since how much noise a model leaves, and so what averaging can still take, is its own
        fuse = fuse if fuse is not None else self.inference.get("fuse")
        self.fuse = float(fuse) if fuse is not None else None
        # the network is told this share of the input's noise level, the fusion the whole of it:
        # told a little less, the network keeps detail and leaves noise that differs from frame
        # to frame, which the fusion then averages away (docs/diffusion.md, "Telling the network
        # less noise than there is")
        self.noise_scale = noise_scale if noise_scale is not None else self.inference.get("noise_scale", 1.0)
        noise_scale_at(self.noise_scale, 0.0)  # a malformed table fails here, not mid-video
        # > 0: one window per output frame, its neighbours within this radius warped onto it
        # (centred.py); 0: the chunk-joint windows with anchors
        self.align_radius = int(align_radius if align_radius is not None else self.inference.get("align_radius", 0))

    def __call__(self, frames: np.ndarray, anchors: np.ndarray | None = None, *,
                 start_index: int | None = None) -> np.ndarray:
        sigma255 = self.sigma255
        if sigma255 is None:
            from ..ops.noise import estimate_noise_sigma
            sigma255 = float(estimate_noise_sigma(frames))
        floor = float(self.inference["sigma_floor"])
        sigma = max(2 * sigma255 / 255, floor)
        level = max(sigma * noise_scale_at(self.noise_scale, sigma255), floor)  # what the network is told
        offset = self._offset(start_index, len(frames))
        if self.align_radius > 0:
            return _to_np(self._run_centred(frames, level, sigma, offset))
        y = _to_t(frames)
        anc = _to_t(anchors) if anchors is not None and len(anchors) else None
        out = _to_np(self._run(y, y, anc, level, add_noise=False, offset=offset))
        if self.fuse_net is not None and self.fuse is None:
            if self.fuse_share <= 0:
                return out
            level = sigma255 if self.fuse_net.level is None else self.fuse_net.level
            fused = fuse_learned(out, level / 255, self.fuse_net)
            return fused if self.fuse_share >= 1 else out + np.float32(self.fuse_share) * (fused - out)
        return fuse_restored(out, sigma255 / 255, RESTORED_FUSE_SCALE if self.fuse is None else self.fuse)

    def _run_centred(self, frames: np.ndarray, level: float, sigma: float, offset: int) -> torch.Tensor:
        """Each frame restored from its own window of aligned neighbours; anchors are not used
        (the windows overlap in content, not in restored frames)."""
        frames = np.asarray(frames, dtype=np.float32)
        out = None
        for i, win, pos in CentredWindows(frames, self.align_radius):
            y = _to_t(win)
            res = restore_chunk(self.model, with_anchors(y, None), y, start_sigma=level, steps=self.steps,
                                seed=self.seed + offset + i, add_noise=False, tile=self.tile,
                                overlap=self.overlap, sampler=self.sampler)
            if out is None:
                out = res.new_empty((len(frames),) + tuple(res.shape[1:]))
            out[i] = fuse_slots(res, pos, sigma, FUSE_SCALE if self.fuse is None else self.fuse)
        return out


class DiffusionUpscaler(_Base):
    def __init__(self, model, meta, **kw):
        super().__init__(model, meta, **kw)
        self.scale = int(meta["scale"])

    def __call__(self, frames: np.ndarray, anchors: np.ndarray | None = None, *,
                 start_index: int | None = None) -> np.ndarray:
        lr = _to_t(frames)
        h, w = lr.shape[-2:]
        up = imresize(lr, (h * self.scale, w * self.scale)).clamp_(-1, 1)
        anc = _to_t(anchors) if anchors is not None and len(anchors) else None
        out = self._run(up, up, anc, self.start_sigma, add_noise=True,
                        offset=self._offset(start_index, len(frames)))
        return _to_np(out)


class DiffusionInterpolator(_Base):
    """`motion`: a MotionRefiner correcting the DIS motion of the hints (None: DIS as it is);
    the method builds it from the name in the checkpoint's `inference:` block."""

    def __init__(self, model, meta, *, motion=None, **kw):
        super().__init__(model, meta, **kw)
        self.motion = motion

    def __call__(self, first: np.ndarray, second: np.ndarray, t: float, *,
                 start_index: int | None = None) -> np.ndarray:
        n, h, w = first.shape[:3]
        cond, est = np.empty((n, 13, h, w), np.float32), np.empty((n, 3, h, w), np.float32)
        edge = np.empty((n, 3, h, w), np.float32)
        for i, (f0, f1) in enumerate(zip(first, second)):
            interp_task_cond(f0, f1, float(t), out=cond[i], out_start=est[i], motion=self.motion, out_edge=edge[i])
        cond, est = torch.from_numpy(cond), torch.from_numpy(est)
        out = self._run(cond, est, None, self.start_sigma, add_noise=True,
                        offset=self._offset(start_index, len(first)))
        # the frame-edge rule, which the model's hints leave out (tasks.flow_hints)
        return _to_np(out.float().add_(torch.from_numpy(edge).to(out.device)))
