"""Run a trained model over one chunk: start from the degraded estimate plus noise, sample down.

Large frames are processed in overlapping spatial tiles blended with feathered weights; the
blend happens inside the denoiser, at every sampling step, so tiles never drift apart.
The start noise is drawn once per chunk at full resolution and shared by all its frames.

Out of memory: a chunk that does not fit (on CUDA the default is whole frames, no tiles) is run
again with tiles of half the size, down to MIN_TILE pixels; the size that fitted is kept for the
device's later chunks (a warning says so once per size), so a long job neither fails nor keeps
failing first.
"""
from __future__ import annotations

import contextlib
import warnings

import torch

from ..errors import RestoreError
from .precond import EDMPrecond
from .samplers import SAMPLERS, sigma_ladder


def _feather(n: int, overlap: int, device) -> torch.Tensor:
    w = torch.ones(n, device=device)
    if overlap > 0:
        ramp = torch.linspace(0, 1, overlap + 2, device=device)[1:-1]
        w[:overlap] = ramp
        w[-overlap:] = torch.minimum(w[-overlap:], ramp.flip(0))
    return w


def _spans(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, list[int]]:
    """(size, starts) of the fewest tiles of at most `tile` that cover `length` (a multiple of
    `multiple`) with `overlap`, all of one size and spread evenly, so that no tile is mostly a
    re-run of its neighbour (a fixed stride makes the last tile overlap the one before by up to
    a whole tile). Sizes and starts are multiples of `multiple`: a network that pixel-unshuffles
    must see every tile on the frame's own pixel grid (an odd start swaps the phases of an x2
    upsample's 2x2 cells: 3.2 dB lost on a 640x360 x2, benchmarks/tile_phase.py)."""
    if length <= tile:
        return length, [0]
    n = -(-(length - overlap) // (tile - overlap))
    size = min(length, -(-(length + (n - 1) * overlap) // (n * multiple)) * multiple)
    return size, sorted({round(i * (length - size) / (n - 1) / multiple) * multiple for i in range(n)})


def tiled(fn, x: torch.Tensor, cond: torch.Tensor, tile: int | None, overlap: int, multiple: int,
          *more: torch.Tensor):
    """Apply fn(x_tile, cond_tile, *more_tiles) over (T,C,H,W) tensors in overlapping tiles.
    fn needs sizes that are multiples of `multiple`: tiles are laid over the frame as if it were
    replicate-padded to one, and only the tiles that reach past its edge are padded (the frame
    itself is not: a full-resolution copy per call) and their results cropped."""
    _, _, h, w = x.shape

    def call(*parts: torch.Tensor) -> torch.Tensor:
        th, tw = parts[0].shape[-2:]
        if th % multiple or tw % multiple:
            return fn(*(_pad_to(v, multiple) for v in parts))[..., :th, :tw]
        return fn(*parts)

    hp, wp = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if tile is None or (hp <= tile and wp <= tile):
        return call(x, cond, *more)
    tile = max(multiple, tile // multiple * multiple)
    overlap = min(overlap, tile // 4) // multiple * multiple
    th, ys = _spans(hp, tile, overlap, multiple)
    tw, xs = _spans(wp, tile, overlap, multiple)
    out = torch.zeros_like(x[:, :3])
    weight = torch.zeros(1, 1, h, w, device=x.device, dtype=x.dtype)
    wy_full, wx_full = _feather(th, overlap, x.device), _feather(tw, overlap, x.device)
    for y0 in ys:
        for x0 in xs:
            wy = wy_full.clone()
            wx = wx_full.clone()
            if y0 == 0:
                wy[: overlap] = 1
            if y0 + th >= hp:
                wy[th - overlap:] = 1
            if x0 == 0:
                wx[: overlap] = 1
            if x0 + tw >= wp:
                wx[tw - overlap:] = 1
            y1, x1 = min(y0 + th, h), min(x0 + tw, w)  # an edge tile stops at the frame
            wt = (wy[: y1 - y0, None] * wx[None, : x1 - x0])[None, None]
            res = call(*(v[..., y0:y1, x0:x1] for v in (x, cond, *more)))
            out[..., y0:y1, x0:x1] += res * wt
            weight[..., y0:y1, x0:x1] += wt
    return out.div_(weight)


def _pad_to(t: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom and right of (..., H, W) up to multiples of `multiple`."""
    h, w = t.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        t = torch.nn.functional.pad(t, (0, pw, 0, ph), mode="replicate")
    return t


MIN_TILE = 32
# device -> the largest tile that fitted after the device ran out of memory
_TILE_CAP: dict[str, int] = {}


def restore_chunk(model: EDMPrecond, cond: torch.Tensor, estimate: torch.Tensor, *, start_sigma: float,
                  steps: int, seed: int = 0, add_noise: bool = True, sampler: str = "euler",
                  tile: int | None = None, overlap: int = 32) -> torch.Tensor:
    """cond (T,Cc,H,W), estimate (T,3,H,W) in [-1,1] -> restored (T,3,H,W) in [-1,1].

    add_noise=False when the estimate is already noisy at start_sigma (Gaussian denoising).
    tile: pixels a side (None: whole frames); smaller after an out-of-memory error (module doc).
    """
    device = str(next(model.parameters()).device)
    while True:
        cap = _TILE_CAP.get(device)
        use = tile if cap is None else min(tile or cap, cap)
        try:
            return _restore_chunk(model, cond, estimate, start_sigma=start_sigma, steps=steps, seed=seed,
                                  add_noise=add_noise, sampler=sampler, tile=use, overlap=overlap)
        except torch.OutOfMemoryError:
            smaller = (use or max(cond.shape[-2:])) // 2
            what = f"tiles of {use} px" if use else "whole frames"
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            if smaller < MIN_TILE:
                raise RestoreError(f"{device} ran out of memory even on {what}: run on the CPU "
                                   "(--device cpu) or free the GPU's memory") from None
            _TILE_CAP[device] = smaller
            warnings.warn(f"{device} ran out of memory on {what}; going on with tiles of {smaller} px "
                          f"(--tile {smaller} starts there)", RuntimeWarning, stacklevel=2)


@torch.no_grad()
def _restore_chunk(model: EDMPrecond, cond: torch.Tensor, estimate: torch.Tensor, *, start_sigma: float,
                   steps: int, seed: int, add_noise: bool, sampler: str, tile: int | None,
                   overlap: int) -> torch.Tensor:
    device = next(model.parameters()).device
    multiple = model.net.multiple
    cond, estimate = cond.to(device), estimate.to(device)
    x = estimate
    if add_noise and start_sigma > 0:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        eps = torch.randn((1,) + tuple(estimate.shape[1:]), generator=gen).to(device)
        x = estimate + start_sigma * eps  # one draw shared by every frame of the chunk
    start = torch.tensor([start_sigma], device=device)
    autocast = (torch.autocast("cuda", dtype=torch.float16) if device.type == "cuda"
                else contextlib.nullcontext())

    def denoise(xs: torch.Tensor, sigma: float) -> torch.Tensor:
        sig = torch.tensor([sigma], device=device)

        def run(xt, ct, et):  # the degraded estimate (the skip branch) is tiled with the rest
            with autocast:
                return model(xt[None], sig, ct[None], start, et[None])[0].float()

        return tiled(run, xs, cond, tile, overlap, multiple, estimate)

    out = SAMPLERS[sampler](denoise, x, sigma_ladder(start_sigma, steps))
    return out.clamp_(-1, 1)  # the sampler's result is a fresh tensor (one step or more)
