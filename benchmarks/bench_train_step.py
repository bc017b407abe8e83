"""Seconds per training step of a config on this machine, float32 against bf16 autocast.

    python benchmarks/bench_train_step.py configs/train/sr-x4-v2.yaml --set batch=8 --set patch=192
    python benchmarks/bench_train_step.py configs/train/deblock.yaml --set batch=8 --set patch=96

One step is what `restore train` does per batch: the objective's forward, backward, gradient
clipping and AdamW, on the config's own model (with `--set` overrides, the same syntax as
`restore train`). Batches are cut from a synthetic clip in memory (smooth texture, panning), so
the config's training material is not needed; making them is not timed. For each precision the
fastest of `--repeat` steps counts, after one warm-up step. Run it alone on the machine: it
prints a table, it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from restore.config import parse_settings  # noqa: E402
from restore.device import resolve_device  # noqa: E402
from restore.diffusion.data import Sequence  # noqa: E402
from restore.diffusion.pairs import make_batch  # noqa: E402
from restore.diffusion.train import _amp, _build_model, _objective  # noqa: E402
from restore.diffusion.trainconfig import load_train_config  # noqa: E402


def synthetic_clip(size: int, frames: int = 48) -> Sequence:
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((size + 3 * frames, size + 3 * frames, 3)) * 255).astype(np.uint8),
                            (0, 0), 1.5)
    return Sequence("synthetic", np.stack([base[2 * i:2 * i + size, 3 * i:3 * i + size] for i in range(frames)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))
    # the batch source is ours: no training material, and real codecs only if the chain asks
    settings = parse_settings(args.settings, args.config)
    cfg = load_train_config(args.config, {**settings, "device": str(device)})
    if any(d.get("name") == "encoded" for d in cfg.degradations or []):
        cfg.degradations = [d for d in cfg.degradations if d.get("name") != "encoded"]  # a bank of encodes
    seqs = [synthetic_clip(max(cfg.patch * 2, 256))]
    _, model, _, opt = _build_model(cfg, device)
    objective, bf16 = _objective(cfg, device)  # training's own loss and autocast
    batch = {k: v.to(device) for k, v in make_batch(cfg.task, seqs, cfg, np.random.default_rng(0)).items()}
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.config}: {params / 1e6:.2f} M parameters, batch {cfg.batch} x {cfg.frames} frames x "
          f"{cfg.patch} px, {device} ({torch.get_num_threads()} threads)")
    print("| precision | s / step |\n|---|---|")
    kinds = [("fp32", torch.autocast(device.type, enabled=False))]
    if _amp(cfg, device):  # where training would autocast
        kinds.append(("bf16 autocast", bf16))
    for name, autocast in kinds:
        times = []
        for _ in range(args.repeat + 1):
            t0 = time.perf_counter()
            loss, _, _ = objective(model, batch, autocast=autocast)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        print(f"| {name} | {min(times[1:]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
