"""The sections of the validation table. Each takes its data as arrays, so the harness can be
exercised on synthetic clips, and the models through a `Models` object:

    models.denoise(sigma, steps=None)  -> SpatialMethod   (strength = the true sigma)
    models.upscale(scale, steps=None)  -> SpatialMethod
    models.interpolate(steps=None)     -> InterpMethod    (t = 0.5)
    models.default_steps(task, scale)  -> int

validate_models.py passes the diffusion models; the tests pass classical stand-ins.
Every section returns plain JSON-able dicts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import data as vdata
from .methods import DENOISE_PEERS, interpolator, registry_restorer, spatial
from .report import quality_bar
from .scoring import LPIPSMeter, score_pairs
from .tuning import SEARCH, TuningCache, merge_into_json, tune

from restore.registry import MethodOptions


def _code_id(*modules: str) -> str:
    """Short hash of restore/methods/<module> sources, part of a cached row's key, so a change to a
    classical method's code recomputes its rows instead of reusing stale ones."""
    import hashlib
    from pathlib import Path

    import restore.methods

    root = Path(restore.methods.__file__).parent
    return hashlib.sha1(b"".join((root / m).read_bytes() for m in modules)).hexdigest()[:10]


class RowCache:
    """Scored rows of classical methods, keyed by everything that determines them, in a JSON file:
    the classical baselines do not change when a model is retrained, so a rerun reuses them."""

    def __init__(self, path):
        import json
        from pathlib import Path

        self.path = Path(path) if path else None
        self.rows = json.loads(self.path.read_text()) if self.path and self.path.exists() else {}

    def get_or_run(self, key: str, run: Callable[[], dict]) -> dict:
        if key not in self.rows:
            self.rows[key] = run()
            if self.path:
                self.rows = merge_into_json(self.path, self.rows)
        return self.rows[key]


@dataclass
class Context:
    device: str = "cpu"
    cache: TuningCache = field(default_factory=lambda: TuningCache(None))
    rows: RowCache = field(default_factory=lambda: RowCache(None))
    retune: bool = False
    log: Callable[[str], None] = print
    keep_frames: bool = True
    lpips: LPIPSMeter | None = None

    def __post_init__(self):
        if self.lpips is None:
            self.lpips = LPIPSMeter(self.device)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def _psnr_rgb(ref_u8: np.ndarray, out_u8: np.ndarray) -> float:
    d = ref_u8.astype(np.float64) - out_u8.astype(np.float64)
    m = float(np.mean(d * d))
    return float("inf") if m == 0 else 10 * np.log10(255.0 ** 2 / m)


# ---- denoising -------------------------------------------------------------------------------------

def tune_peer(key: str, sigma: float, clean_u8: np.ndarray, ctx: Context, clip: str) -> dict:
    """Tune a peer's strength at `sigma` on a few consecutive frames from the middle of the clip,
    with noise drawn from a different seed than the evaluation noise."""
    peer = DENOISE_PEERS[key]
    k = min(peer.tune_frames, len(clean_u8))
    start = (len(clean_u8) - k) // 2
    ref = clean_u8[start:start + k]
    noisy = vdata.add_noise(ref, sigma, vdata.TUNE_SEED)
    recipe = {"clip": clip, "frames": [start, start + k], "size": list(ref.shape[1:3]),
              "noise_seed": vdata.TUNE_SEED, "sigma": sigma, "search": SEARCH, **peer.recipe()}
    return tune(key, sigma, lambda v: _psnr_rgb(ref, peer.build(v, ctx.device)(noisy)),
                guess=peer.prior * sigma, lo=peer.lo, hi=peer.hi, recipe=recipe, cache=ctx.cache,
                retune=ctx.retune, log=ctx.log)


def tune_section(clean_u8: np.ndarray, sigmas, peers, ctx: Context, clip: str = "clip") -> dict:
    """Only the peer tuning (fills the cache): {peer label: {sigma: entry}}."""
    out: dict = {}
    for sigma in sigmas:
        for key in peers:
            entry = tune_peer(key, sigma, clean_u8, ctx, clip)
            out.setdefault(DENOISE_PEERS[key].label, {})[f"{sigma:g}"] = entry
    return out


def denoise_section(clean_u8: np.ndarray, sigmas, peers, ctx: Context, models=None, clip: str = "clip") -> dict:
    out = {}
    for sigma in sigmas:
        ctx.log(f"denoise sigma {sigma:g}: {len(clean_u8)} frames")
        noisy = vdata.add_noise(clean_u8, sigma)
        row = {"sigma": sigma, "frames": len(clean_u8),
               "input": _summary(score_pairs(zip(clean_u8, noisy), lpips=ctx.lpips, keep_frames=False)),
               "methods": {}}
        if models is not None:
            method = models.denoise(sigma)
            res, sec = _timed(method, noisy)
            row["methods"]["diffusion"] = _method_row(
                clean_u8, res, ctx, "diffusion", sec,
                {"strength": sigma, "steps": models.default_steps("denoise", 1)})
        for key in peers:
            peer = DENOISE_PEERS[key]
            entry = tune_peer(key, sigma, clean_u8, ctx, clip)

            def run(peer=peer, entry=entry):
                res, sec = _timed(peer.build(entry["value"], ctx.device), noisy)
                return _method_row(clean_u8, res, ctx, "classical", sec, {peer.param: entry["value"]})

            r = dict(ctx.rows.get_or_run(f"denoise|{clip}|{len(clean_u8)}|{sigma:g}|{peer.label}|{entry['value']}", run))
            r["tuning"] = {k: entry[k] for k in ("psnr", "tried", "seconds", "recipe") if k in entry}
            # a best value at the end of the filter's range means the peer is capped, not tuned out
            r["tuning"]["at_limit"] = bool(entry["value"] >= peer.hi or entry["value"] <= peer.lo)
            row["methods"][peer.label] = r
            ctx.log(f"  {peer.label} {peer.param}={entry['value']:g}: PSNR {r['psnr']:.3f} LPIPS {r['lpips']:.4f}")
        if "diffusion" in row["methods"]:
            row["bar"] = quality_bar(row["methods"], "psnr")
            d = row["methods"]["diffusion"]
            ctx.log(f"  diffusion: PSNR {d['psnr']:.3f} LPIPS {d['lpips']:.4f}")
        out[f"sigma{sigma:g}"] = row
    return out


def _summary(score: dict) -> dict:
    return {k: v for k, v in score.items() if k != "frames"}


def _method_row(ref_u8, out_u8, ctx: Context, family: str, seconds: float, params: dict, *, crop: int = 0,
                y_psnr: bool = False, mode: str = "sequence") -> dict:
    s = score_pairs(zip(ref_u8, out_u8), mode=mode, crop=crop, y_psnr=y_psnr, lpips=ctx.lpips, keep_frames=ctx.keep_frames)
    n = s["n"]
    return {**s, "family": family, "params": params, "seconds": round(seconds, 2),
            "seconds_per_frame": round(seconds / max(n, 1), 3)}


# ---- super-resolution ------------------------------------------------------------------------------

def sr_inputs(clips: list[np.ndarray], scale: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(HR clips cropped to a multiple of scale, their 8-bit BI low-resolution versions)."""
    hr = [vdata.crop_to_multiple(c, scale) for c in clips]
    return hr, [vdata.bi_downscale(c, scale) for c in hr]


def sr_section(datasets: dict, scales, ctx: Context, models=None, classical=("bicubic", "lanczos")) -> dict:
    """datasets: {name: (mode, [clip (T,H,W,3) uint8, ...])}; mode "sequence" (one video) or
    "images" (each clip one image)."""
    out = {}
    for scale in scales:
        for name, (mode, clips) in datasets.items():
            hr, lr = sr_inputs(clips, scale)
            n = sum(len(c) for c in hr)
            ctx.log(f"sr x{scale} {name}: {len(hr)} clip(s), {n} frames")
            entry = {"scale": scale, "dataset": name, "frames": n, "methods": {}}
            methods = []
            if models is not None:
                methods.append(("diffusion", "diffusion", lambda: models.upscale(scale),
                                {"steps": models.default_steps("upscale", scale)}))
            for cname in classical:
                methods.append((cname, "classical", lambda cname=cname: spatial(registry_restorer(
                    "upscale", cname, MethodOptions(scale=scale, device=ctx.device))), {}))
            ref_frames = [f for c in hr for f in c]
            for label, family, make, params in methods:
                def run(make=make, family=family, params=params):
                    method = make()
                    t0 = time.perf_counter()
                    res = [f for c in lr for f in method(c)]
                    sec = time.perf_counter() - t0
                    return _method_row(ref_frames, res, ctx, family, sec, params, crop=scale, y_psnr=True, mode=mode)

                entry["methods"][label] = (run() if family == "diffusion" else
                                           ctx.rows.get_or_run(f"sr|{name}|{n}|x{scale}|{label}", run))
                r = entry["methods"][label]
                ctx.log(f"  {label}: PSNR-Y {r['psnr_y']:.3f} PSNR-RGB {r['psnr']:.3f} LPIPS {r['lpips']:.4f}")
            if "diffusion" in entry["methods"]:
                entry["bar"] = quality_bar(entry["methods"], "psnr_y", also=("psnr",))
            out[f"x{scale}/{name}"] = entry
    return out


# ---- interpolation ---------------------------------------------------------------------------------

def interp_section(triplets: list, ctx: Context, models=None, classical=("blend", "dis")) -> dict:
    ctx.log(f"interp: {len(triplets)} triplets")
    methods = []
    if models is not None:
        methods.append(("diffusion", "diffusion", models.interpolate, {"steps": models.default_steps("interpolate", 1)}))
    for cname in classical:
        methods.append((cname, "classical", lambda cname=cname: interpolator(
            registry_restorer("interpolate", cname, MethodOptions(device=ctx.device))), {}))
    entry = {"triplets": [t.name for t in triplets], "t": 0.5, "methods": {}}
    refs = [t.middle for t in triplets]
    for label, family, make, params in methods:
        def run(make=make, family=family, params=params):
            method = make()
            t0 = time.perf_counter()
            res = [method(t.first, t.second) for t in triplets]
            sec = time.perf_counter() - t0
            return _method_row(refs, res, ctx, family, sec, params, mode="images")

        entry["methods"][label] = (run() if family == "diffusion" else
                                   ctx.rows.get_or_run(f"interp|{len(triplets)}|{label}|{_code_id('flow.py')}", run))
        r = entry["methods"][label]
        ctx.log(f"  {label}: PSNR {r['psnr']:.3f} LPIPS {r['lpips']:.4f}")
    if "diffusion" in entry["methods"]:
        entry["bar"] = quality_bar(entry["methods"], "psnr")
    return {"triplets": entry}


# ---- steps sweep -----------------------------------------------------------------------------------

def sweep_section(ctx: Context, models, *, clean_u8: np.ndarray | None, triplets: list | None,
                  steps=(1, 2, 4, 8), sigma: float = 25.0, scales=(2, 4), denoise: bool = True) -> dict:
    """PSNR / SSIM / LPIPS of each model at each step count (default start level)."""
    out = {}
    jobs = []
    if clean_u8 is not None and denoise:
        noisy = vdata.add_noise(clean_u8, sigma)
        jobs.append((f"denoise sigma {sigma:g}", "denoise", 1, lambda k: models.denoise(sigma, steps=k),
                     clean_u8, noisy, 0, "sequence",
                     _summary(score_pairs(zip(clean_u8, noisy), lpips=ctx.lpips, keep_frames=False))))
    if clean_u8 is not None:
        for scale in scales:
            hr, lr = sr_inputs([clean_u8], scale)
            bic = spatial(registry_restorer("upscale", "bicubic", MethodOptions(scale=scale)))(lr[0])
            jobs.append((f"sr x{scale}", "upscale", scale, lambda k, s=scale: models.upscale(s, steps=k),
                         hr[0], lr[0], scale, "sequence",
                         _summary(score_pairs(zip(hr[0], bic), crop=scale, y_psnr=True, lpips=ctx.lpips,
                                              keep_frames=False))))
    for label, task, scale, make, ref, inp, crop, mode, baseline in jobs:
        ctx.log(f"sweep {label}: {len(ref)} frames")
        rows = {}
        for k in steps:
            res, sec = _timed(make(k), inp)
            r = _method_row(ref, res, ctx, "diffusion", sec, {"steps": k}, crop=crop, y_psnr=bool(crop), mode=mode)
            rows[str(k)] = _summary(r)
            key = "psnr_y" if crop else "psnr"
            ctx.log(f"  {k} steps: {'PSNR-Y' if crop else 'PSNR'} {r[key]:.3f} LPIPS {r['lpips']:.4f}")
        out[label] = {"task": task, "scale": scale, "frames": len(ref), "default_steps": models.default_steps(task, scale),
                      "baseline": {"name": "noisy input" if task == "denoise" else "bicubic", **baseline},
                      "steps": rows}
    if triplets:
        ctx.log(f"sweep interp: {len(triplets)} triplets")
        refs = [t.middle for t in triplets]
        blend = [interpolator(registry_restorer("interpolate", "blend", MethodOptions()))(t.first, t.second)
                 for t in triplets]
        rows = {}
        for k in steps:
            method = models.interpolate(steps=k)
            t0 = time.perf_counter()
            res = [method(t.first, t.second) for t in triplets]
            r = _method_row(refs, res, ctx, "diffusion", time.perf_counter() - t0, {"steps": k}, mode="images")
            rows[str(k)] = _summary(r)
            ctx.log(f"  {k} steps: PSNR {r['psnr']:.3f} LPIPS {r['lpips']:.4f}")
        out["interp x2"] = {"task": "interpolate", "scale": 1, "frames": len(triplets),
                            "default_steps": models.default_steps("interpolate", 1),
                            "baseline": {"name": "blend", **_summary(score_pairs(zip(refs, blend), mode="images",
                                                                                 lpips=ctx.lpips, keep_frames=False))},
                            "steps": rows}
    return out


# ---- temporal consistency --------------------------------------------------------------------------

def ewarp(ref_u8: np.ndarray, out_u8: np.ndarray) -> dict:
    """Mean E_warp and flicker over consecutive pairs, flow from the reference (restore.metrics.temporal)."""
    from restore.metrics.temporal import TemporalMeter

    meter = TemporalMeter()
    vals = [meter.add(r, o) for r, o in zip(ref_u8, out_u8)]
    vals = [v for v in vals if v is not None]
    if not vals:
        raise ValueError("E_warp needs at least two frames")
    return {"ewarp": float(np.nanmean([v["ewarp"] for v in vals])),
            "flicker": float(np.mean([v["flicker"] for v in vals])),
            "mask": float(np.mean([v["ewarp_mask"] for v in vals])), "pairs": len(vals),
            "per_pair": [round(v["ewarp"], 8) for v in vals]}


def ewarp_section(clean_u8: np.ndarray, ctx: Context, models, *, sigma: float = 25.0, scale: int = 4) -> dict:
    """The model on the whole clip in one call (chunk-joint: windows anchored on each other, one
    noise draw per window) vs the same model called on one frame at a time (no anchors)."""
    out = {}
    noisy = vdata.add_noise(clean_u8, sigma)
    jobs = [(f"denoise sigma {sigma:g}", clean_u8, noisy, lambda: models.denoise(sigma), ("noisy input", noisy))]
    hr, lr = sr_inputs([clean_u8], scale)
    bicubic = spatial(registry_restorer("upscale", "bicubic", MethodOptions(scale=scale)))(lr[0])
    jobs.append((f"sr x{scale}", hr[0], lr[0], lambda: models.upscale(scale), ("bicubic", bicubic)))
    for label, ref, inp, make, (base_name, base) in jobs:
        ctx.log(f"ewarp {label}: {len(ref)} frames")
        joint, t_joint = _timed(make(), inp)
        single = make()
        t0 = time.perf_counter()
        per_frame = np.concatenate([single(inp[i:i + 1]) for i in range(len(inp))])
        t_single = time.perf_counter() - t0
        e_joint, e_single = ewarp(ref, joint), ewarp(ref, per_frame)
        entry = {"frames": len(ref), "joint": e_joint, "frame_by_frame": e_single, "reference": ewarp(ref, ref),
                 "baseline": {"name": base_name, **ewarp(ref, base)},
                 "psnr_joint": _psnr_rgb(ref, joint), "psnr_frame_by_frame": _psnr_rgb(ref, per_frame),
                 "seconds_joint": round(t_joint, 2), "seconds_frame_by_frame": round(t_single, 2),
                 "ratio": e_joint["ewarp"] / e_single["ewarp"] if e_single["ewarp"] else float("nan")}
        entry["joint_lower"] = bool(e_joint["ewarp"] < e_single["ewarp"])
        ctx.log(f"  E_warp joint {e_joint['ewarp']:.3e} frame-by-frame {e_single['ewarp']:.3e} "
                f"reference {entry['reference']['ewarp']:.3e}")
        out[label] = entry
    return out
