"""Train the default denoiser's learned fusion (restore/diffusion/fusenet.py) on its own outputs.

    python scripts/train_fusenet.py --out data/weights/denoise-fuse [--cache /tmp/fuse] [--steps 8000]

Stage 1 (cached in --cache, about 10 minutes on 2 cores): the shipped `denoise` model, unfused,
on training clips of ../shared/data/train/frames at sigma 10 / 15 / 25 / 35 / 50: four DAVIS and
SA-V clips (two 12-frame stretches each) and the 16 Vimeo septuplets. davis-libby and
davis-blackswan (10 frames) are restored too and held out: the script ends by scoring them,
unfused, with the hand fusion (centred.fuse_restored) and with the new network.
Stage 2: six 96 px crops per frame (even offsets, so the 2x2 halving lines up with the frame's),
their neighbours warped as at inference (fusenet.neighbours), Adam with a one-cycle schedule,
batches of 16, MSE against the clean crops. A few minutes on 2 cores.
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
from restore.diffusion.fusenet import FuseNet, fuse_learned, neighbours, save_fusenet
from restore.diffusion.restorers import DiffusionDenoiser
from restore.eval import protocols

SIGMAS = (10, 15, 25, 35, 50)
TRAIN = ("davis-bmx-trees", "davis-car-shadow", "davis-kite-surf", "sam2-bedroom")
HELD = ("davis-libby", "davis-blackswan")
CROP = 96


def _frames(folder: Path) -> list[str]:
    return sorted(glob.glob(str(folder / "*.jpg")) + glob.glob(str(folder / "*.png")))


def make_cache(root: Path, cache: Path) -> None:
    model, meta = zoo.load("denoise", "cpu", "bf16")
    jobs = []
    for name in TRAIN:
        n = len(_frames(root / name))
        jobs += [(name, 0, 12), (name, n // 2, 12)]
    jobs += [(Path(p).name, 0, 7) for p in sorted(glob.glob(str(root / "vimeo-*")))]
    jobs += [(name, 0, 10) for name in HELD]
    cache.mkdir(parents=True, exist_ok=True)
    for name, start, n in jobs:
        clean = None
        for sigma in SIGMAS:
            path = cache / f"{name}_{start}_{sigma}.npz"
            if path.exists():
                continue
            if clean is None:
                clean = np.stack([cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB)
                                  for f in _frames(root / name)[start:start + n]])
            noisy = protocols.add_noise(clean, sigma, start + 7).astype(np.float32) / 255
            out = np.clip(DiffusionDenoiser(model, meta, sigma255=sigma, fuse=0.0)(noisy), 0, 1)
            np.savez(path, clean=clean, restored=out.astype(np.float16), sigma=sigma)
            print("restored", path.name, flush=True)


def _load(cache: Path, held: bool):
    for path in sorted(cache.glob("*.npz")):
        if any(path.name.startswith(h + "_") for h in HELD) == held:
            z = np.load(path)
            yield path.name, z["clean"].astype(np.float32) / 255, z["restored"].astype(np.float32), float(z["sigma"])


def crops(cache: Path, radius: int, rng) -> dict[str, torch.Tensor]:
    cols = {k: [] for k in ("c", "n", "m", "y", "s")}
    for _, clean, rest, sigma in _load(cache, held=False):
        h, w = rest.shape[1:3]
        for i, others, present in neighbours(rest, radius):
            for _ in range(6):
                y, x = 2 * rng.integers(0, (h - CROP) // 2), 2 * rng.integers(0, (w - CROP) // 2)
                win = (slice(y, y + CROP), slice(x, x + CROP))
                cols["c"].append(torch.from_numpy(rest[i][win]).permute(2, 0, 1).half())
                cols["n"].append(torch.from_numpy(others[(slice(None),) + win]).permute(0, 3, 1, 2).half())
                cols["m"].append(torch.tensor(present, dtype=torch.float32))
                cols["y"].append(torch.from_numpy(clean[i][win]).permute(2, 0, 1).half())
                cols["s"].append(torch.tensor(sigma / 255))
    return {k: torch.stack(v) for k, v in cols.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output stem, e.g. data/weights/denoise-fuse")
    ap.add_argument("--data", default="../shared/data/train/frames")
    ap.add_argument("--cache", default="/tmp/fuse")
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--channels", type=int, default=24)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    make_cache(Path(args.data), Path(args.cache))
    rng = np.random.default_rng(0)
    data = crops(Path(args.cache), args.radius, rng)
    print(len(data["c"]), "crops", round(time.time() - t0), "s", flush=True)
    net = FuseNet(args.radius, args.channels)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=args.steps, pct_start=0.1)
    for step in range(args.steps):
        idx = torch.from_numpy(rng.integers(0, len(data["c"]), 16))
        c, n, y = (data[k][idx].float() for k in ("c", "n", "y"))
        if rng.random() < 0.5:
            c, n, y = c.flip(-1), n.flip(-1), y.flip(-1)
        loss = F.mse_loss(net(c, n, data["m"][idx], data["s"][idx]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == args.steps - 1:
            print(step, f"loss {loss.item():.3e} unfused {F.mse_loss(c, y).item():.3e}", round(time.time() - t0), "s", flush=True)
    net.eval()
    save_fusenet(args.out, net, {"steps": args.steps, "trained_on": list(TRAIN) + ["vimeo-*"], "held_out": list(HELD),
                                 "sigmas": list(SIGMAS), "command": "python scripts/train_fusenet.py " + " ".join(
                                     f"--{k} {v}" for k, v in vars(args).items())})
    psnr = lambda a, ref: 10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - ref) ** 2))
    net.to(torch.bfloat16)  # as the denoiser runs it on a CPU
    for name, clean, rest, sigma in _load(Path(args.cache), held=True):
        print(f"{name}: unfused {psnr(rest, clean):.3f}, hand {psnr(fuse_restored(rest, sigma / 255), clean):.3f}, "
              f"learned {psnr(fuse_learned(rest, sigma / 255, net), clean):.3f}", flush=True)


if __name__ == "__main__":
    main()
