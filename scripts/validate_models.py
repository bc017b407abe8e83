#!/usr/bin/env python
"""The validation table of the diffusion models (issue 4, 'Quality bar'), in one command.

    .venv/bin/python scripts/validate_models.py                       # shipped weights, everything
    .venv/bin/python scripts/validate_models.py --weights-dir /tmp/w  # checkpoints of a training run
    .venv/bin/python scripts/validate_models.py --frames 4 --only denoise,sr   # quick look

Sections (--only): denoise (sigma 15/25/50 on davis-dog vs OpenCV nlmeans and ffmpeg hqdn3d,
nlmeans, bm3d, each tuned per sigma), sr (x2/x4 BI on davis-dog and Set14 vs bicubic and Lanczos),
interp (15 triplets vs blend and DIS), sweep (steps 1/2/4/8), ewarp (chunk-joint vs frame by frame).

Writes a markdown report to stdout and, for a full run (no --frames) or with --out, to
docs/validation.md (or --out) plus a JSON with every number beside it. Peer tuning results are
cached in <report>-tuning.json (--retune redoes them). Validation data: ../shared/data/val.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = ("denoise", "sr", "interp", "sweep", "ewarp")
SIGMAS = (15.0, 25.0, 50.0)
SCALES = (2, 4)
SWEEP_STEPS = (1, 2, 4, 8)
SWEEP_FRAMES = 10
EWARP_FRAMES = 16
MODEL_NAMES = {"denoise": "denoise", ("upscale", 2): "sr-x2", ("upscale", 4): "sr-x4", "interpolate": "interp-x2"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights-dir", type=Path, help="folder with <model>.safetensors + .yaml "
                   "(sets RESTORE_WEIGHTS_DIR; default: the shipped weights)")
    p.add_argument("--frames", type=int, help="use at most N frames / images / triplets per data set (quick runs)")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({','.join(SECTIONS)})")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (models and LPIPS)")
    p.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                   help="combine the JSON outputs of runs over different --only sections (run in parallel) "
                        "into one report (--out, default docs/validation.md)")
    p.add_argument("--scales", default="2,4", help="SR scales (default 2,4; e.g. 4 after retraining sr-x4)")
    p.add_argument("--sigmas", default=None, help="denoising noise levels, e.g. 25 or 15,50 (default: 15,25,50)")
    p.add_argument("--classical-only", action="store_true",
                   help="only the classical rows of denoise/sr/interp (fills the row cache; no weights needed)")
    p.add_argument("--out", type=Path, help="markdown report path (default docs/validation.md for full runs)")
    p.add_argument("--json", type=Path, help="JSON results path (default: the report path with .json)")
    p.add_argument("--tuning-cache", type=Path, help="peer tuning cache (default: <report>-tuning.json)")
    p.add_argument("--retune", action="store_true", help="redo the peer tuning even when cached")
    p.add_argument("--tune-only", action="store_true",
                   help="only tune the denoising peers (fill the cache) and print the chosen settings")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "val",
                   help="validation data folder (default ../shared/data/val)")
    p.add_argument("--sweep-frames", type=int, default=SWEEP_FRAMES,
                   help=f"davis-dog frames for the steps sweep (default {SWEEP_FRAMES})")
    p.add_argument("--ewarp-frames", type=int, default=EWARP_FRAMES,
                   help=f"davis-dog frames for the E_warp comparison (default {EWARP_FRAMES})")
    p.add_argument("--sweep-tasks", default="denoise,sr,interp",
                   help="models in the steps sweep (default denoise,sr,interp; e.g. denoise,interp after retraining those)")
    p.add_argument("--peers", default="nlmeans,hqdn3d,ffmpeg-nlmeans,bm3d",
                   help="denoising peers (default: all)")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in args.sections if s not in SECTIONS]
    if bad:
        p.error(f"--only: unknown section(s) {', '.join(bad)} (choose from {', '.join(SECTIONS)})")
    bad = [t for t in args.sweep_tasks.split(",") if t not in ("denoise", "sr", "interp")]
    if bad:
        p.error(f"--sweep-tasks: unknown task(s) {', '.join(bad)} (choose from denoise, sr, interp)")
    try:
        args.scales = tuple(int(x) for x in args.scales.split(","))
    except ValueError:
        args.scales = ()
    if not args.scales or any(x not in SCALES for x in args.scales):
        p.error(f"--scales: choose from {', '.join(map(str, SCALES))}")
    for name in ("frames", "sweep_frames", "ewarp_frames"):
        v = getattr(args, name)
        if v is not None and v < (2 if name == "ewarp_frames" else 1):
            p.error(f"--{name.replace('_', '-')} is too small: {v}")
    return args


class DiffusionModels:
    """The registry's diffusion methods, as the `Models` the sections expect."""

    def __init__(self, device: str):
        self.device = device

    def _restorer(self, task: str, **opts):
        from restore.registry import MethodOptions
        from validation.methods import registry_restorer

        return registry_restorer(task, "diffusion", MethodOptions(device=self.device, **opts))

    def denoise(self, sigma: float, steps: int | None = None):
        from validation.methods import spatial

        return spatial(self._restorer("denoise", strength=float(sigma), steps=steps))

    def upscale(self, scale: int, steps: int | None = None):
        from validation.methods import spatial

        return spatial(self._restorer("upscale", scale=int(scale), steps=steps))

    def interpolate(self, steps: int | None = None):
        from validation.methods import interpolator

        return interpolator(self._restorer("interpolate", steps=steps))

    def meta(self, task: str, scale: int = 1) -> dict:
        from restore.diffusion import zoo

        name = MODEL_NAMES[(task, scale)] if task == "upscale" else MODEL_NAMES[task]
        return zoo.load(name, self.device)[1]

    def default_steps(self, task: str, scale: int = 1) -> int:
        return int(self.meta(task, scale)["sampling"]["steps"])


def needed_models(sections) -> list[str]:
    need = set()
    if {"denoise", "sweep", "ewarp"} & set(sections):
        need.add("denoise")
    if {"sr", "sweep"} & set(sections):
        need.update(("sr-x2", "sr-x4"))
    if "ewarp" in sections:
        need.add("sr-x4")
    if {"interp", "sweep"} & set(sections):
        need.add("interp-x2")
    return sorted(need)


def describe_models(names, device) -> dict:
    from restore.diffusion import zoo

    out = {}
    for name in names:
        path = zoo.model_path(name)
        meta = zoo.load(name, device)[1]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        samp = meta.get("sampling", {})
        parts = [f"{path.stat().st_size / 1e6:.1f} MB", f"sha256 {digest}"]
        if "step" in meta:
            parts.append(f"step {meta['step']}")
        parts.append(f"default steps {samp.get('steps')}, start sigma {samp.get('start_sigma')}")
        if meta.get("git_commit"):
            parts.append(f"trained at {str(meta['git_commit'])[:10]}")
        out[name] = ", ".join(parts)
    return out


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + (" (uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join([str(exe)] + sys.argv)


def _clean_json(obj):
    """JSON cannot hold inf/nan: write them as strings."""
    if isinstance(obj, float) and (math.isinf(obj) or math.isnan(obj)):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalars
        return _clean_json(obj.item())
    return obj


def merge(paths: list[Path], out_md: Path) -> int:
    """One report from the JSONs of several partial runs (e.g. sections run side by side)."""
    from validation.report import render

    results: dict = {"timing": {}}
    parts = [json.loads(p.read_text()) for p in paths]
    for part in parts:
        part["merged"] = "--merge" in part["meta"]["command"]
    # An earlier merged report (a later part redoes some of its sections) keeps the timing only
    # of the sections nobody redid.
    redone = {k for part in parts if not part["merged"] for k in part["results"]["timing"]}
    # Later parts win where they overlap, so pass an earlier merged report first; the header
    # (date, commit, machine) comes from the first fresh run.
    fresh = [part for part in parts if not part["merged"]] or parts
    meta = dict(fresh[0]["meta"])
    meta["command"] = command_line() + "  # merging: " + "; ".join(part["meta"]["command"] for part in parts)
    meta["models"] = {}
    for part in parts:
        for key, value in part["results"].items():
            if key == "timing":  # the same section run in several parts: add up
                for k, v in value.items():
                    if part["merged"] and k in redone:
                        continue
                    results["timing"][k] = results["timing"].get(k, 0) + v
            elif isinstance(value, dict):  # e.g. denoise split by sigma over several runs
                results.setdefault(key, {}).update(value)
            else:
                results[key] = value
        m = part["meta"]
        kept = [k for k in part["results"]["timing"] if k not in redone]
        if part["merged"] and kept:
            meta["notes"] = meta.get("notes", []) + [f"Carried over unchanged from an earlier report ({m.get('date')}, "
                                             f"commit {m.get('git_commit')}): {', '.join(kept)} (and the "
                                             "rows of other sections that no later run redid)."]
        meta["models"].update(m.get("models", {}))
        meta["notes"] = list(dict.fromkeys(meta.get("notes", []) + m.get("notes", [])))
    meta["total_seconds"] = ", ".join(f"{k} {v:.0f} s" for k, v in results["timing"].items()) + \
        " (partial runs side by side on the same 2 cores)"
    text = render(results, meta)
    sys.stdout.write(text)
    out_md.write_text(text)
    out_md.with_suffix(".json").write_text(json.dumps(_clean_json({"meta": meta, "results": results}), indent=1))
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out or REPO / "docs" / "validation.md")
    if args.weights_dir is not None:
        if not args.weights_dir.is_dir():
            print(f"validate_models: --weights-dir {args.weights_dir} is not a folder", file=sys.stderr)
            return 2
        # Before anything imports restore.methods.diffusion: it registers the models it finds there.
        os.environ["RESTORE_WEIGHTS_DIR"] = str(args.weights_dir.resolve())

    from restore.device import resolve_device
    from restore.diffusion import zoo
    from restore.errors import RestoreError

    from validation import data as vdata
    from validation.methods import DENOISE_PEERS
    from validation.report import render
    from validation.sections import (Context, denoise_section, ewarp_section, interp_section, sr_section,
                                     sweep_section, tune_section)
    from validation.tuning import TuningCache

    try:
        device = resolve_device(args.device)
    except RestoreError as err:
        print(f"validate_models: {err}", file=sys.stderr)
        return 2
    if args.classical_only:
        args.sections = [x for x in args.sections if x in ("denoise", "sr", "interp")]
    missing = [] if args.tune_only or args.classical_only else [n for n in needed_models(args.sections) if not zoo.available(n)]
    if missing:
        print(f"validate_models: no weights for {', '.join(missing)} in {zoo.weights_dir()} "
              "(pass --weights-dir with <model>.safetensors + <model>.yaml)", file=sys.stderr)
        return 2
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in peers if p not in DENOISE_PEERS]
    if unknown:
        print(f"validate_models: --peers: unknown {', '.join(unknown)} (choose from {', '.join(DENOISE_PEERS)})",
              file=sys.stderr)
        return 2
    for sub in ("frames/davis-dog", "images/set14", "interp"):
        if not (args.data / sub).exists():
            print(f"validate_models: validation data missing: {args.data / sub}", file=sys.stderr)
            return 2

    out_md = args.out or (REPO / "docs" / "validation.md" if args.frames is None else None)
    out_json = args.json or (out_md.with_suffix(".json") if out_md else None)
    base = out_md or REPO / "docs" / "validation.md"
    cache_path = args.tuning_cache or base.with_name(base.stem + "-tuning.json")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    from validation.sections import RowCache

    ctx = Context(device=device, cache=TuningCache(cache_path), retune=args.retune, log=log,
                  rows=RowCache(cache_path.with_name(cache_path.name.replace("-tuning", "-classical"))))
    models = None if args.classical_only else DiffusionModels(device)
    n = args.frames
    t_start = time.perf_counter()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results: dict = {"timing": {}}
    dog_dir = args.data / "frames" / "davis-dog"

    def lim(k):
        return k if n is None else min(k, n)

    def dog(limit=None):
        return vdata.load_clip(dog_dir, limit)

    if args.tune_only:
        tuned = tune_section(dog(n), SIGMAS, peers, ctx, clip="davis-dog")
        for label, per_sigma in tuned.items():
            for sigma, e in per_sigma.items():
                print(f"{label:20s} sigma {sigma:>3s}: {e['value']:g} ({e['psnr']:.3f} dB on frames "
                      f"{e['recipe']['frames'][0]}-{e['recipe']['frames'][1] - 1})")
        log(f"tuning cache: {cache_path} ({time.perf_counter() - t_start:.0f} s)")
        return 0

    for section in SECTIONS:
        if section not in args.sections:
            continue
        t0 = time.perf_counter()
        log(f"== {section}")
        if section == "denoise":
            sigmas = [float(x) for x in args.sigmas.split(",")] if args.sigmas else SIGMAS
            results["denoise"] = denoise_section(dog(n), sigmas, peers, ctx, models, clip="davis-dog")
        elif section == "sr":
            set14 = vdata.load_images(args.data / "images" / "set14", n)
            datasets = {"davis-dog": ("sequence", [dog(n)]),
                        "set14": ("images", [img[None] for _, img in set14])}
            results["sr"] = sr_section(datasets, args.scales, ctx, models)
        elif section == "interp":
            results["interp"] = interp_section(vdata.load_triplets(args.data / "interp", n), ctx, models)
        elif section == "sweep":
            tasks = args.sweep_tasks.split(",")
            results["sweep"] = sweep_section(
                ctx, models, clean_u8=dog(lim(args.sweep_frames)) if {"denoise", "sr"} & set(tasks) else None,
                triplets=vdata.load_triplets(args.data / "interp", n) if "interp" in tasks else None,
                steps=SWEEP_STEPS, sigma=25.0, scales=args.scales if "sr" in tasks else (), denoise="denoise" in tasks)
        elif section == "ewarp":
            clip = dog(max(2, lim(args.ewarp_frames)))
            results["ewarp"] = ewarp_section(clip, ctx, models, sigma=25.0, scale=4)
        results["timing"][section] = round(time.perf_counter() - t0, 1)

    if args.classical_only:
        log(f"classical rows cached in {ctx.rows.path} ({time.perf_counter() - t_start:.0f} s)")
        return 0
    notes = [f"Peer tuning cache: `{cache_path}` (rerun with --retune to redo it)."]
    if "denoise" in results and "hqdn3d" in peers:
        from validation.ffmpeg_peers import roundtrip_psnr

        rt = roundtrip_psnr(dog(2), "yuv444p")
        notes.append(f"hqdn3d runs in yuv444p (it takes no RGB); the rgb24 -> yuv444p -> rgb24 round trip alone "
                     f"measures {rt:.1f} dB PSNR on davis-dog, so it costs the peer nothing measurable.")
    total = time.perf_counter() - t_start
    import torch

    meta = {
        "command": command_line(),
        "date": f"started {started}, finished {time.strftime('%H:%M:%S')}",
        "git_commit": git_commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
                   f"({torch.get_num_threads()} threads)",
        "device": device,
        "frames_limit": n if n is not None else "none (full protocol)",
        "weights_dir": str(zoo.weights_dir()),
        "total_seconds": f"{total:.0f} (" + ", ".join(f"{k} {v:.0f} s" for k, v in results["timing"].items()) + ")",
        "models": describe_models(needed_models(args.sections), device),
        "denoise_clip": f"davis-dog, sigma {', '.join(f'{s:g}' for s in SIGMAS)}",
        "peers": {DENOISE_PEERS[p].label: DENOISE_PEERS[p].description for p in peers},
        "tuning_cache": str(cache_path),
        "notes": notes,
    }
    text = render(results, meta)
    sys.stdout.write(text)
    if out_md:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        out_md.write_text(text)
        log(f"report written to {out_md}")
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(_clean_json({"meta": meta, "results": results}), indent=1))
        log(f"numbers written to {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
