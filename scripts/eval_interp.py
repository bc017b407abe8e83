"""Quick check of an interpolation checkpoint on the validation triplets, against `dis`.

    python scripts/eval_interp.py runs/interp-x2-bank/interp-x2 [--steps 1,2] [--start-sigma 0.05,0.1]
    python scripts/eval_interp.py data/weights/interp-x2 --clip ../shared/data/val/frames/davis-dog --n 3

Prints mean PSNR (RGB) and LPIPS over the triplets for each (steps, start sigma) setting and for
the classical DIS-flow interpolation: the cheap loop for choosing a checkpoint and its sampling
defaults. The reported table is `restore bench`'s (scripts/validate_models.py). With --clip, the cases are cut
from a folder of frames instead: frames i and i + n, every t = k/n in between (t other than 1/2,
which the triplets do not cover).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from restore.diffusion import checkpoint  # noqa: E402
from restore.diffusion.restorers import DiffusionInterpolator  # noqa: E402
from restore.ops.flow import interpolate_pair  # noqa: E402
from restore.metrics.lpips_metric import LPIPS  # noqa: E402
from restore.metrics.psnr import psnr_rgb  # noqa: E402
from restore.eval.data import load_triplets  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", help="checkpoint stem (name.safetensors + name.yaml)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/val/interp"))
    ap.add_argument("--steps", default="", help="comma list (default: the checkpoint's)")
    ap.add_argument("--start-sigma", default="", help="comma list (default: the checkpoint's)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--clip", help="a folder of frames to cut (first, second, t, middle) cases from")
    ap.add_argument("--n", type=int, default=3, help="with --clip: frames between the inputs")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    model, meta = checkpoint.load(args.weights)
    steps = [int(s) for s in args.steps.split(",") if s] or [meta["sampling"]["steps"]]
    sigmas = [float(s) for s in args.start_sigma.split(",") if s] or [meta["sampling"]["start_sigma"]]
    if args.clip:
        from restore.diffusion.data import load_sources

        clip = load_sources([{"path": args.clip, "kind": "frames"}], 1000)[0].frames
        starts = range(0, len(clip) - args.n, args.n)[:args.limit]
        cases = [(clip[i], clip[i + args.n], k / args.n, clip[i + k]) for i in starts for k in range(1, args.n)]
    else:
        cases = [(t.first, t.second, 0.5, t.middle) for t in load_triplets(args.data, args.limit)]
    lp = LPIPS("cpu")
    f = [(a.astype(np.float32) / 255, b.astype(np.float32) / 255, t, m) for a, b, t, m in cases]
    rows = []
    dis = [np.round(interpolate_pair(a, b, t) * 255).astype(np.uint8) for a, b, t, _ in f]
    rows.append(("dis", dis))
    for n in steps:
        for s in sigmas:
            run = DiffusionInterpolator(model, meta, steps=n, start_sigma=s)
            out = [np.round(run(a[None], b[None], t)[0] * 255).astype(np.uint8) for a, b, t, _ in f]
            rows.append((f"diffusion steps={n} sigma={s:g}", out))
    print(f"{args.weights} (step {meta.get('step')}), {len(f)} cases, t in {sorted({c[2] for c in f})}")
    for name, outs in rows:
        p = np.mean([psnr_rgb(m, o) for o, (_, _, _, m) in zip(outs, f)])
        lpv = np.mean([float(lp(o, m)[0]) for o, (_, _, _, m) in zip(outs, f)])
        print(f"{name:32s} PSNR {p:.3f}  LPIPS {lpv:.4f}", flush=True)


if __name__ == "__main__":
    main()
