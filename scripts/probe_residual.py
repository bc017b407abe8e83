#!/usr/bin/env python
"""Does a model use its input? PSNR of the model vs its start estimate along the training path.

    .venv/bin/python scripts/probe_residual.py --config configs/train/interp-x2.yaml --weights data/weights/interp-x2
    .venv/bin/python scripts/probe_residual.py --config configs/train/sr-x2.yaml --weights data/weights/sr-x2

On training batches (the config's frame folders), the state x = x0 + u (start - x0) is fed at
several u. Near u = 0 the state is almost the clean chunk, so a model that has learned anything
beats its estimate by a wide margin there; a model that stays at its estimate for every u has an
output that ignores its input (what the interp-x2 model showed, see docs/diffusion.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="training YAML (task, degradations, sources)")
    p.add_argument("--weights", required=True, help="checkpoint stem (<stem>.safetensors + <stem>.yaml)")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from restore.diffusion import checkpoint
    from restore.diffusion.data import load_sources
    from restore.diffusion.pairs import make_batch
    from restore.diffusion.trainconfig import load_train_config
    from restore.metrics.psnr import psnr_from_mse

    torch.set_num_threads(1)
    cfg = load_train_config(args.config, {"patch": args.patch})
    frames = [s for s in cfg.sources if s.get("kind") == "frames"] or cfg.sources
    seqs = load_sources(frames, 60)
    rng = np.random.default_rng(args.seed)
    model, _ = checkpoint.load(args.weights, "cpu")
    batches = [make_batch(cfg.task, seqs, cfg, rng) for _ in range(args.batches)]

    def psnr(mse: float) -> float:
        return psnr_from_mse(mse, 2.0)  # data in [-1, 1]

    print(f"{'u':>6}  {'model PSNR':>10}  {'estimate PSNR':>13}")
    for u in (1.0, 0.5, 0.1, 0.02):
        e_model = e_est = 0.0
        for b in batches:
            uu = torch.full((len(b["x0"]),), u)
            x = b["x0"] + uu.view(-1, 1, 1, 1, 1) * (b["start"] - b["x0"])
            with torch.no_grad():
                pred = model(x, uu * b["sigma_s"], b["cond"], b["sigma_s"], b["estimate"])
            e_model += float(((pred - b["x0"]) ** 2).mean()) / len(batches)
            e_est += float(((b["estimate"] - b["x0"]) ** 2).mean()) / len(batches)
        print(f"{u:>6}  {psnr(e_model):>10.2f}  {psnr(e_est):>13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
