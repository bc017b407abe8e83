"""Train a learned fusion (restore/diffusion/fusenet.py) on its model's own outputs.

    python scripts/train_fusenet.py --out data/weights/denoise-fuse [--cache /tmp/fuse] [--steps 8000]
    python scripts/train_fusenet.py --task deblock --warp cubic --out data/weights/deblock-fuse --cache /tmp/fuse-deblock

--task deblock: the blind deblock model on the same stretches encoded by libx264 at CRF 18-43 and
libx265 at CRF 28 / 36 (PyAV, 4:2:0, as the benchmark's protocol); the network is given one fixed
level (`--level`, 0-255 scale: the unit of its differences; the blind model has no noise level to
pass it), which the checkpoint records as `level` and the restorer passes at inference.

Stage 1 (cached in --cache, about 10 minutes on 2 cores): the shipped `denoise` model, unfused,
on training clips of ../shared/data/train/frames at sigma 10 / 15 / 25 / 35 / 50: four DAVIS and
SA-V clips (two 12-frame stretches each) and the 16 Vimeo septuplets. davis-libby and
davis-blackswan (10 frames) are restored too and held out: the script ends by scoring them,
unfused, with the hand fusion (centred.fuse_restored) and with the new network.
Stage 2: six 96 px crops per frame (even offsets, so the 2x2 halving lines up with the frame's),
their neighbours warped as at inference (fusenet.neighbours), Adam with a one-cycle schedule,
batches of 16, MSE against the clean crops, plus `--lpips-weight` x LPIPS (the shipped AlexNet)
where asked (the deblock fusion: 0.006, so that its averaging leaves the picture no softer than
its input). A few minutes on 2 cores without LPIPS, about 15 with it.
"""
from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from restore.diffusion import zoo
from restore.diffusion.centred import fuse_restored
from restore.diffusion.fusenet import WARPS, FuseNet, fuse_learned, load_fusenet, neighbours, save_fusenet
from restore.diffusion.restorers import DiffusionDenoiser
from restore.eval import protocols
from restore.metrics.lpips_metric import LPIPS, load_lpips
from restore.metrics.psnr import psnr as psnr_of

SIGMAS = (10, 15, 25, 35, 50)
ENCODES = (("libx264", 18), ("libx264", 23), ("libx264", 28), ("libx264", 33), ("libx264", 38),
           ("libx264", 43), ("libx265", 28), ("libx265", 36))
TRAIN = ("davis-bmx-trees", "davis-car-shadow", "davis-kite-surf", "sam2-bedroom")
HELD = ("davis-libby", "davis-blackswan")
CROP = 96


def _frames(folder: Path) -> list[str]:
    return sorted(glob.glob(str(folder / "*.jpg")) + glob.glob(str(folder / "*.png")))


def _degradations(task: str, level: float):
    """(tag, degrade(clean uint8, seed) -> float32 [0, 1], level on the 0-255 scale) of a task."""
    if task == "denoise":
        return [(str(sigma), lambda c, seed, s=sigma: protocols.add_noise(c, s, seed).astype(np.float32) / 255, sigma)
                for sigma in SIGMAS]
    return [(f"{codec[3:]}-{crf}", lambda c, seed, k=codec, q=crf: protocols.encode_crf(c, k, q).astype(np.float32) / 255,
             level) for codec, crf in ENCODES]


def _restorer(task: str):
    """The model, unfused: restored frames from degraded ones, given the level."""
    model, meta = zoo.load(task, "cpu", "bf16")
    if task == "denoise":
        return lambda x, level: DiffusionDenoiser(model, meta, sigma255=level, fuse=0.0)(x)
    return lambda x, level: DiffusionDenoiser(model, meta, sigma255=0.0, fuse=0.0)(x)  # blind, as registered


def make_cache(root: Path, cache: Path, task: str = "denoise", level: float = 20.0) -> None:
    restore_fn = _restorer(task)
    jobs = []
    for name in TRAIN:
        n = len(_frames(root / name))
        jobs += [(name, 0, 12), (name, n // 2, 12)]
    jobs += [(Path(p).name, 0, 7) for p in sorted(glob.glob(str(root / "vimeo-*")))]
    jobs += [(name, 0, 10) for name in HELD]
    cache.mkdir(parents=True, exist_ok=True)
    for name, start, n in jobs:
        clean = None
        for tag, degrade, lev in _degradations(task, level):
            path = cache / f"{name}_{start}_{tag}.npz"
            if path.exists():
                continue
            if clean is None:
                clean = np.stack([cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB)
                                  for f in _frames(root / name)[start:start + n]])
                clean = clean[:, :clean.shape[1] // 2 * 2, :clean.shape[2] // 2 * 2]  # 4:2:0 needs even sizes
            out = np.clip(restore_fn(degrade(clean, start + 7), lev), 0, 1)
            np.savez(path, clean=clean, restored=out.astype(np.float16), sigma=lev)
            print("restored", path.name, flush=True)


def _load(cache: Path, held: bool):
    for path in sorted(cache.glob("*.npz")):
        if any(path.name.startswith(h + "_") for h in HELD) == held:
            z = np.load(path)
            yield path.name, z["clean"].astype(np.float32) / 255, z["restored"].astype(np.float32), float(z["sigma"])


def crops(cache: Path, radius: int, rng, warp: str = "linear") -> dict[str, torch.Tensor]:
    cols = {k: [] for k in ("c", "n", "m", "y", "s")}
    for _, clean, rest, sigma in _load(cache, held=False):
        h, w = rest.shape[1:3]
        for i, others, present in neighbours(rest, radius, WARPS[warp]):
            for _ in range(6):
                y, x = 2 * rng.integers(0, (h - CROP) // 2), 2 * rng.integers(0, (w - CROP) // 2)
                win = (slice(y, y + CROP), slice(x, x + CROP))
                cols["c"].append(torch.from_numpy(rest[i][win]).permute(2, 0, 1).half())
                cols["n"].append(torch.from_numpy(others[(slice(None),) + win]).permute(0, 3, 1, 2).half())
                cols["m"].append(torch.tensor(present, dtype=torch.float32))
                cols["y"].append(torch.from_numpy(clean[i][win]).permute(2, 0, 1).half())
                cols["s"].append(torch.tensor(sigma / 255))
    return {k: torch.stack(v) for k, v in cols.items()}


def score_held(cache: Path, net: FuseNet) -> None:
    """Print PSNR / LPIPS on the held-out stretches: unfused, the hand fusion, the network."""
    lp = LPIPS("cpu")
    psnr = lambda a, ref: psnr_of(np.clip(a, 0, 1), ref)
    lpips = lambda a, ref: float(lp(np.clip(a, 0, 1), ref).mean())
    net = net.eval().to(torch.bfloat16)  # as the denoiser runs it on a CPU
    for name, clean, rest, sigma in _load(cache, held=True):
        level = (net.level if net.level is not None else sigma) / 255
        hand, learned = fuse_restored(rest, level), fuse_learned(rest, level, net)
        print(f"{name}: PSNR / LPIPS unfused {psnr(rest, clean):.3f} / {lpips(rest, clean):.4f}, "
              f"hand {psnr(hand, clean):.3f} / {lpips(hand, clean):.4f}, "
              f"learned {psnr(learned, clean):.3f} / {lpips(learned, clean):.4f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output stem, e.g. data/weights/denoise-fuse")
    ap.add_argument("--task", default="denoise", choices=("denoise", "deblock"), help="the model whose outputs are fused")
    ap.add_argument("--level", type=float, default=20.0, help="deblock: the fixed level (0-255) the network is given")
    ap.add_argument("--data", default="../shared/data/train/frames")
    ap.add_argument("--cache", default="/tmp/fuse")
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--warp", default="linear", choices=tuple(WARPS), help="how neighbours are resampled (FuseNet.warp)")
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--lpips-weight", type=float, default=0.0,
                    help="weight of an LPIPS term (the shipped AlexNet) beside the MSE: the average softens texture")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--evaluate", action="store_true",
                    help="train nothing: score the network already at --out on the held-out stretches")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    make_cache(Path(args.data), Path(args.cache), args.task, args.level)
    if args.evaluate:
        score_held(Path(args.cache), load_fusenet(args.out))
        return
    rng = np.random.default_rng(0)
    data = crops(Path(args.cache), args.radius, rng, args.warp)
    print(len(data["c"]), "crops", round(time.time() - t0), "s", flush=True)
    net = FuseNet(args.radius, args.channels, args.level if args.task == "deblock" else None, args.warp)
    lpips_fn = load_lpips("cpu") if args.lpips_weight > 0 else None
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=args.steps, pct_start=0.1)
    for step in range(args.steps):
        idx = torch.from_numpy(rng.integers(0, len(data["c"]), 16))
        c, n, y = (data[k][idx].float() for k in ("c", "n", "y"))
        if rng.random() < 0.5:
            c, n, y = c.flip(-1), n.flip(-1), y.flip(-1)
        pred = net(c, n, data["m"][idx], data["s"][idx])
        loss = F.mse_loss(pred, y)
        if lpips_fn is not None:
            loss = loss + args.lpips_weight * lpips_fn(pred * 2 - 1, y * 2 - 1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(step, f"loss {loss.item():.3e} unfused {F.mse_loss(c, y).item():.3e}", round(time.time() - t0), "s", flush=True)
    net.eval()
    meta = {"sigmas": list(SIGMAS)} if args.task == "denoise" else {"encodes": [f"{c} crf {q}" for c, q in ENCODES]}
    save_fusenet(args.out, net, {"steps": args.steps, "task": args.task, "trained_on": list(TRAIN) + ["vimeo-*"],
                                 "held_out": list(HELD), **meta, "command": "python scripts/train_fusenet.py " + " ".join(
                                     f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "evaluate")})
    score_held(Path(args.cache), net)


if __name__ == "__main__":
    main()
