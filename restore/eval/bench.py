"""`restore bench`: every method on every task, scored and timed the same way.

    from restore.eval import run_bench
    results = run_bench(data=["../shared/data/val"], tasks=["denoise25", "sr4"], frames=10,
                        methods=["diffusion", "nlmeans", "dvdnet"], dvdnet="/path/to/dvdnet",
                        peers_dir=["/path/to/peer-site"], out="bench-out")

For each task and data set: the protocol degrades the reference (restore.eval.protocols), each
method restores it through the same code path (restore.eval.methods), and the outputs, rounded to
8 bits, are scored (restore.eval.scoring). Timing: seconds per output frame of the call that
processes the frames, after the method is built (weights loaded); a peer in a child process counts
its own processing time the same way. Writes bench.json, bench.md and one scatter plot per task
(restore.eval.report).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import data as bdata
from . import protocols
from .methods import (DEFAULT_TASKS, BenchError, Candidate, Task, parse_tasks, peer_candidates,
                      base_name, registry_candidates, selected)
from .scoring import LPIPSMeter, ewarp, score_pairs

DEFAULT_FRAMES = 10        # clip frames per data folder when --frames is not given
SAMPLE_FRAMES = 4          # frames of the bundled sample clip (the fresh-install default)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Dataset:
    """One set of references a task is scored on."""
    name: str
    kind: str                 # "clip", "images" or "triplets"
    load: Callable[[], object]
    full_length: Callable[[], int] | None = None       # clips: frames available (for tuning)
    load_range: Callable[[int, int], np.ndarray] | None = None  # clips: frames [start, end)
    others: list = field(default_factory=list)         # the task's other clips (peers tune on them)


@dataclass
class BenchContext:
    device: str = "cpu"
    precision: str = "fp32"  # resolved (restore.device.resolve_precision)
    threads: int = 1
    seed: int = protocols.NOISE_SEED
    peers: list = field(default_factory=list)
    peer_paths: list[Path] = field(default_factory=list)
    dvdnet: Path | None = None
    tuning_cache: Path | None = None
    retune: bool = False
    steps: list[int] | None = None
    per_frame: bool = False
    lpips: LPIPSMeter | None = None
    log: Callable[[str], None] = _stderr
    _reasons: dict = field(default_factory=dict)

    def peer_reason(self, peer) -> str | None:
        if peer.name not in self._reasons:
            try:
                self._reasons[peer.name] = peer.unavailable(self)
            except Exception as err:  # a broken install is a reason to skip, shown in the report
                self._reasons[peer.name] = f"unavailable: {err}"
        return self._reasons[peer.name]


def datasets_for(task: Task, sources: list[bdata.DataSource], frames: int | None, sample: bool) -> list[Dataset]:
    clip_frames = frames if frames is not None else (SAMPLE_FRAMES if sample else DEFAULT_FRAMES)
    out = []
    for src in sources:
        for name in src.clips:
            n = clip_frames
            if task.kind == "interpolate":
                if src.triplets is not None and task.factor == 2:
                    continue  # the triplets are the t = 1/2 protocol of this folder
                n = max(n, task.factor + 1)  # at least one pair with dropped frames between
            out.append(Dataset(name, "clip", lambda src=src, name=name, n=n: src.load_clip(name, n),
                               full_length=lambda src=src, name=name: _clip_length(src, name),
                               load_range=lambda a, b, src=src, name=name: _clip_range(src, name, a, b)))
        if task.kind == "upscale":
            for name, folder in src.image_sets.items():
                out.append(Dataset(name, "images", lambda folder=folder: bdata.load_images(folder, frames)))
        if task.kind == "interpolate" and task.factor == 2 and src.triplets is not None:
            out.append(Dataset(src.triplets.name if src.triplets.name != "interp" else "triplets", "triplets",
                               lambda t=src.triplets: bdata.load_triplets(t, frames)))
    clips = [d for d in out if d.kind == "clip"]
    for d in clips:
        d.others = [o for o in clips if o is not d]
    return out


_VIDEO_LENGTHS: dict[Path, int] = {}


def _clip_length(src: bdata.DataSource, name: str) -> int:
    p = src.clips[name]
    if p.is_dir():
        return len(bdata.image_files(p))
    if p not in _VIDEO_LENGTHS:  # decoding a whole video once per tuned peer and sigma adds up
        _VIDEO_LENGTHS[p] = len(src.load_clip(name, None))
    return _VIDEO_LENGTHS[p]


def _clip_range(src: bdata.DataSource, name: str, start: int, end: int) -> np.ndarray:
    p = src.clips[name]
    if p.is_dir():
        return bdata.load_clip(p, end - start, start)
    return src.load_clip(name, end)[start:end]


# ---- running one method ------------------------------------------------------------------------

def _timed_call(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    wall = time.perf_counter() - t0
    own = getattr(fn, "seconds", None)
    return out, (own if own is not None else wall)


def _check(out, like: tuple, name: str) -> np.ndarray:
    out = np.asarray(out)
    if out.dtype != np.uint8 or out.shape != like:
        raise BenchError(f"method {name} returned {out.dtype} {out.shape}, expected uint8 {like}")
    return out


def _row(score: dict, seconds: float, n_out: int, family: str, params: dict, description: str) -> dict:
    return {**score, "family": family, "params": params, "description": description,
            "seconds": round(seconds, 3), "sec_per_frame": seconds / max(n_out, 1)}


def run_candidate(task: Task, ds: Dataset, refs, inputs, cand: Candidate, ctx: BenchContext) -> dict:
    """Build, run, time and score one method on one data set. `refs`/`inputs` per dataset kind:
    clip: (T,H,W,3) reference and degraded clip; images: lists; triplets: (refs, [(first, second)])."""
    fn = cand.make()
    params = {**cand.params, **getattr(fn, "params", {})}
    crop = task.scale if task.kind == "upscale" else 0
    if ds.kind == "clip" and task.kind != "interpolate":
        out, sec = _timed_call(fn, inputs)
        ref = refs
        out = _check(out, ref.shape, cand.name)
        score = score_pairs(zip(ref, out), mode="sequence", crop=crop, lpips=ctx.lpips)
        score["ewarp"] = ewarp(ref, out)
        return _row(score, sec, len(out), cand.family, params, cand.description)
    if ds.kind == "clip":  # interpolation by frame dropping: all pairs of the clip in one call per t
        kept, targets, _ = inputs
        f = task.factor
        pairs = len(kept) - 1
        out = np.empty((pairs, f - 1) + targets.shape[1:], np.uint8)
        sec = 0.0
        for k in range(1, f):
            o, s = _timed_call(fn, kept[:-1], kept[1:], k / f)
            out[:, k - 1] = _check(o, (pairs,) + targets.shape[1:], cand.name)
            sec += s
        out = out.reshape(targets.shape)  # pair by pair, in time order, as drop_frames lists them
        score = score_pairs(zip(targets, out), mode="sequence", lpips=ctx.lpips)
        # E_warp of the whole restored clip (kept frames with the predictions between them)
        n = pairs * f + 1
        full = refs[:n].copy()
        for k in range(1, f):
            full[k:n:f] = out[k - 1::f - 1]
        score["ewarp"] = ewarp(refs[:n], full)
        return _row(score, sec, len(out), cand.family, params, cand.description)
    outs, total = [], 0.0
    if ds.kind == "images":
        for ref, lr in zip(refs, inputs):
            o, sec = _timed_call(fn, lr[None])
            outs.append(_check(o, ref[None].shape, cand.name)[0])
            total += sec
    else:  # triplets: unrelated scenes, one pair per call
        for ref, (a, b) in zip(refs, inputs):
            o, sec = _timed_call(fn, a[None], b[None])
            outs.append(_check(o, ref[None].shape, cand.name)[0])
            total += sec
    score = score_pairs(zip(refs, outs), mode="images", crop=crop, lpips=ctx.lpips)
    return _row(score, total, len(outs), cand.family, params, cand.description)


def prepare(task: Task, ds: Dataset, ctx: BenchContext):
    """(refs, inputs, protocol description, input score or None) of a task on a data set."""
    loaded = ds.load()
    if task.kind == "deblock":
        if ds.kind != "clip":
            raise BenchError(f"compression tasks run on clips, not {ds.kind}")
        import io

        from restore.methods.damage import estimate_from_stream

        clip = protocols.crop_to_multiple(loaded, 2)  # yuv420p needs even sizes
        coded, stream = protocols.encode_crf_stream(clip, task.codec, task.crf)
        est = estimate_from_stream(io.BytesIO(stream))
        proto = {"protocol": "crf", "codec": task.codec, "crf": task.crf, "frames": len(clip),
                 "size": list(clip.shape[1:3]), "kbps": round(len(stream) * 8 * 25 / len(clip) / 1000, 1),
                 "auto": est.to_dict(), "auto_text": est.describe()}
        return clip, coded, proto, (clip, coded)
    if task.kind == "denoise" and task.codec:
        if ds.kind != "clip":
            raise BenchError(f"compression tasks run on clips, not {ds.kind}")
        clip = protocols.crop_to_multiple(loaded, 2)  # yuv420p needs even sizes
        coded = protocols.encode_crf(clip, task.codec, task.crf)
        proto = {"protocol": "crf", "codec": task.codec, "crf": task.crf, "frames": len(clip),
                 "size": list(clip.shape[1:3])}
        return clip, coded, proto, (clip, coded)
    if task.kind == "denoise":
        if ds.kind != "clip":
            raise BenchError(f"denoising runs on clips, not {ds.kind}")
        noisy = protocols.add_noise(loaded, task.sigma, ctx.seed)
        proto = {"protocol": "gaussian noise", "sigma": task.sigma, "seed": ctx.seed,
                 "frames": len(loaded), "size": list(loaded.shape[1:3])}
        return loaded, noisy, proto, (loaded, noisy)
    if task.kind == "upscale":
        s = task.scale
        if ds.kind == "clip":
            hr = protocols.crop_to_multiple(loaded, s)
            proto = {"protocol": "BI", "scale": s, "frames": len(hr), "size": list(hr.shape[1:3])}
            return hr, protocols.bi_downscale(hr, s), proto, None
        hrs = [protocols.crop_to_multiple(img, s) for _, img in loaded]
        proto = {"protocol": "BI", "scale": s, "images": [n for n, _ in loaded]}
        return hrs, [protocols.bi_downscale(h, s) for h in hrs], proto, None
    if ds.kind == "clip":
        kept, targets, idx = protocols.drop_frames(loaded, task.factor)
        proto = {"protocol": "frame dropping", "factor": task.factor, "frames": len(loaded),
                 "targets": idx, "size": list(loaded.shape[1:3])}
        return loaded, (kept, targets, idx), proto, None
    proto = {"protocol": "triplets", "triplets": [t.name for t in loaded]}
    return [t.middle for t in loaded], [(t.first, t.second) for t in loaded], proto, None


def bench_task(task: Task, ds: Dataset, ctx: BenchContext, wanted: set[str] | None) -> dict:
    refs, inputs, proto, input_pair = prepare(task, ds, ctx)
    entry = {"task": task.name, "kind": task.kind, "dataset": ds.name, "dataset_kind": ds.kind,
             **proto, "methods": {}, "skipped": {}, "failed": {}}
    if input_pair is not None:
        ref, deg = input_pair
        entry["input"] = score_pairs(zip(ref, deg), mode="sequence", lpips=ctx.lpips)
        entry["input"]["ewarp"] = ewarp(ref, deg)
    auto = None
    if task.kind == "deblock" and proto.get("auto"):
        from restore.methods.damage import DamageEstimate

        auto = DamageEstimate(**proto["auto"])
        ctx.log(f"  deblock auto: {proto['auto_text']}")
    cands = (registry_candidates(task, ctx.device, ctx.steps, ctx.per_frame, deblock_estimate=auto,
                                     precision=ctx.precision)
             + peer_candidates(task, ctx, ds, wanted))
    for cand in cands:
        if not selected(cand.name, wanted):
            continue
        if cand.skip:
            entry["skipped"][cand.name] = cand.skip
            ctx.log(f"  {cand.name}: skipped ({cand.skip})")
            continue
        ctx.log(f"  {cand.name} ...")
        try:
            row = run_candidate(task, ds, refs, inputs, cand, ctx)
        except BenchError:
            raise
        except Exception as err:  # one peer's crash must not lose the others' numbers
            if cand.family != "peer":
                raise
            entry["failed"][cand.name] = f"{type(err).__name__}: {err}"
            ctx.log(f"  {cand.name}: failed ({err})")
            continue
        entry["methods"][cand.name] = row
        ctx.log(f"  {cand.name}: PSNR-RGB {row['psnr_rgb']:.3f} PSNR-Y {row['psnr_y']:.3f} SSIM {row['ssim']:.4f}"
                + (f" LPIPS {row['lpips']:.4f}" if "lpips" in row else "") + f" {row['sec_per_frame']:.3f} s/frame")
    return entry


def _peer_status(ctx: BenchContext, peer, tasks: list[Task], wanted) -> str:
    if not any(peer.supports(t) for t in tasks):
        return "not run (no selected task)"
    if wanted is not None and peer.name not in wanted:
        return "not run (not in --methods)"
    reason = ctx.peer_reason(peer)
    return f"skipped: {reason}" if reason else "ran"


def machine_info(device: str, precision: str = "fp32") -> dict:
    import platform

    import torch

    from ..device import cpu_name

    info = {"cpu": cpu_name(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
            "precision": precision,
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


def run_bench(data=None, tasks=DEFAULT_TASKS, *, frames: int | None = None, methods=None, out="bench",
              device: str = "auto", precision: str = "auto", dvdnet=None, peers_dir=(), tuning_cache=None, retune: bool = False,
              seed: int = protocols.NOISE_SEED, lpips: bool = True, threads: int | None = None,
              steps=None, per_frame: bool = False, peers: list | None = None, extra_peers: list = (),
              plots: bool = True, tune_data=None,
              md=None, command: str | None = None,
              log: Callable[[str], None] | None = None) -> dict:
    """Run the benchmark; returns the results dict (also written to `out` unless it is None).

    data: folders (../shared/data/val layout) or video files; None = the bundled sample clip.
    tasks: names (denoise<sigma>, sr2, sr4, interp) or a comma-separated string.
    frames: clip frames per data set (default 10, 4 for the sample); also caps images and triplets.
    methods: names to run (registry names and peer names); None = all.
    steps: sampling step counts for our models, each a row `name@k` (a steps sweep); None = default.
    per_frame: also run our denoise/SR models one frame per call (rows `name:per-frame`).
    tune_data: folders or videos whose clips the deblock peers are tuned on (never scored); without
    it they tune on the other clips of `data`, or the middle frames of the clip itself if it is alone.
    out: folder for the plots, and bench.md / bench.json unless `md` names the markdown path (its JSON
    goes beside it); None writes nothing.
    peers: the peer list (default: restore.eval.peers.builtin_peers()); extra_peers are added to it.
    """
    import torch

    from restore.device import resolve_device, resolve_precision

    log = log or _stderr
    task_list = parse_tasks(tasks)
    if frames is not None and frames < 1:
        raise BenchError(f"--frames must be at least 1, got {frames}")
    sample = not data
    paths = [bdata.sample_clip()] if sample else [Path(p) for p in ([data] if isinstance(data, (str, Path)) else data)]
    sources = [bdata.discover(p) for p in paths]
    tune_sources = [bdata.discover(Path(p)) for p in ([tune_data] if isinstance(tune_data, (str, Path)) else tune_data or [])]
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    if threads:
        torch.set_num_threads(int(threads))
    if dvdnet is not None and not Path(dvdnet).is_dir():
        raise BenchError(f"--dvdnet {dvdnet}: not a folder")
    for p in peers_dir or ():
        if not Path(p).is_dir():
            raise BenchError(f"--peers-dir {p}: not a folder")
    if peers is None:
        from .peers import builtin_peers

        peers = builtin_peers()
    peers = list(peers) + list(extra_peers)
    out_dir = Path(out) if out is not None else None
    ctx = BenchContext(device=dev, precision=prec, threads=torch.get_num_threads(), seed=seed, peers=peers,
                       peer_paths=[Path(p).resolve() for p in (peers_dir or ())],
                       dvdnet=Path(dvdnet) if dvdnet else None,
                       tuning_cache=Path(tuning_cache) if tuning_cache else (out_dir / "peer-tuning.json" if out_dir else None),
                       retune=retune, steps=[int(k) for k in steps] if steps else None, per_frame=per_frame,
                       lpips=LPIPSMeter(dev) if lpips else None, log=log)
    wanted = None
    if methods:
        wanted = {m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()}
        known = {c.name for t in task_list for c in registry_candidates(t, dev)} | {p.name for p in peers}
        unknown = sorted(w for w in wanted if base_name(w) not in known)
        if unknown:
            raise BenchError(f"--methods: unknown {', '.join(unknown)} (known: {', '.join(sorted(known))})")

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t_start = time.perf_counter()
    results: dict = {"meta": {"command": command, "started": started, "machine": machine_info(dev, prec),
                              "data": [str(p) for p in paths], "frames": frames,
                              "tune_data": [str(s.path) for s in tune_sources],
                              "default_frames": SAMPLE_FRAMES if sample else DEFAULT_FRAMES,
                              "seed": seed, "tasks": [t.name for t in task_list],
                              "methods": sorted(wanted) if wanted else "all", "lpips": bool(lpips),
                              "steps": ctx.steps, "per_frame": per_frame},
                     "tasks": {}}
    for task in task_list:
        entries = []
        tuning = [d for d in datasets_for(task, tune_sources, frames, False) if d.kind == "clip"]
        for ds in datasets_for(task, sources, frames, sample):
            ds.others = tuning + ds.others
            log(f"== {task.name} on {ds.name}")
            entries.append(bench_task(task, ds, ctx, wanted))
        if not entries:
            log(f"== {task.name}: no data for this task in {', '.join(map(str, paths))}")
        results["tasks"][task.name] = {"label": task.label, "kind": task.kind, "datasets": entries}
    results["meta"]["seconds"] = round(time.perf_counter() - t_start, 1)
    results["meta"]["peers"] = {p.name: {"description": p.description, "tasks": list(p.tasks),
                                         "status": _peer_status(ctx, p, task_list, wanted)}
                                for p in peers}
    if out_dir is not None:
        from .report import write_outputs

        md_file, json_file = write_outputs(results, out_dir, plots=plots, md_path=md)
        log(f"wrote {md_file}, {json_file}" + (f", plots in {out_dir}" if plots else ""))
    return results
