"""Train the interpolator's motion refiner (restore/diffusion/motionnet.py) on the CPU or a GPU.

    python scripts/train_motion.py --out runs/motion --minutes 90 --threads 1
    python scripts/train_motion.py --out /tmp/runs/motion --corpus .carry/corpus --device cuda --workers 15

The bank of triplets (restore/diffusion/motionbank.py) is built once into OUT/bank/ (one .npz per
source sequence, so an interrupted build resumes); training checkpoints OUT/motion.safetensors and
OUT/motion.yaml (restore.diffusion.motionnet.save_refiner) every --ckpt-every steps and resumes
from them with --resume. `--corpus DIR` reads DIR/*.mp4 with OpenCV (scripts/pack_corpus.py packs
the training sources so; the GPU image has no PyAV) instead of ../shared/data/train.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from restore.diffusion.data import load_sources  # noqa: E402
from restore.diffusion.motionbank import MotionBank, crop_arrays, motion_sample  # noqa: E402
from restore.diffusion.motionnet import MotionRefiner, save_refiner, weight_logit  # noqa: E402

SOURCES = [
    {"path": "../shared/data/train/frames/*", "kind": "frames"},
    {"path": "../shared/data/train/clips/0*.mp4", "kind": "video", "downscale": 2},
    {"path": "../shared/data/train/clips/bikes.mp4", "kind": "video"},
]
# (stride n, frame offset k of the true frame): t = k / n; strides 4 hold the large motions
TRIPLETS = [(2, 1), (4, 2), (3, 1), (3, 2), (6, 3)]
TRIPLET_P = [0.35, 0.3, 0.1, 0.1, 0.15]


def _crops_job(args) -> list[dict]:
    f0, mid, f1, t, origins, crop = args
    torch.set_num_threads(1)  # one process per core already (the motion projection uses torch)
    s = motion_sample(f0, mid, f1, t)
    return [crop_arrays(s, y, x, crop) for y, x in origins]


def build_bank(out: Path, sources: list[dict], per_seq: int, crop: int, crops_per: int, seed: int,
               workers: int = 1) -> MotionBank:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pool = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        crops = _fill(out, sources, per_seq, crop, crops_per, rng, pool)
    finally:  # an interrupted build must not wait for the queued jobs (the GPU script's hard stop)
        if pool:
            pool.shutdown(wait=False, cancel_futures=True)
    return MotionBank(crops)


def _fill(out: Path, sources: list[dict], per_seq: int, crop: int, crops_per: int, rng, pool) -> list[dict]:
    crops = []
    for seq in load_sources(sources, max_frames=300):
        if seq.still:
            continue
        path = out / f"{seq.name}.npz"
        if not path.exists():
            n_frames, h, w = seq.frames.shape[:3]
            if min(h, w) < crop:
                continue
            jobs = []
            count = min(per_seq, max(4, n_frames // 2))
            t0 = time.time()
            for _ in range(count):
                n, k = TRIPLETS[rng.choice(len(TRIPLETS), p=TRIPLET_P)]
                if n_frames <= n:
                    continue
                i = int(rng.integers(0, n_frames - n))
                origins = [(int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1)))
                           for _ in range(crops_per)]
                jobs.append((seq.frames[i], seq.frames[i + k], seq.frames[i + n], k / n, origins, crop))
            items = [c for cs in (pool.map(_crops_job, jobs) if pool else map(_crops_job, jobs)) for c in cs]
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **{f"{j}_{key}": v for j, it in enumerate(items) for key, v in it.items()})
            os.replace(tmp, path)
            print(f"bank: {seq.name}: {len(items)} crops in {time.time() - t0:.0f} s", flush=True)
        z = np.load(path)
        n_items = len({key.split("_", 1)[0] for key in z.files})
        crops += [{key: z[f"{j}_{key}"] for key in ("frames", "flows", "weight0", "trust", "t")} for j in range(n_items)]
    return crops


def charbonnier(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + 1e-6).mean()


def losses(net: MotionRefiner, b: dict, distill: float):
    logit0 = weight_logit(b["weight0"])
    ft0, ft1, logit = net(b["f0"], b["f1"], b["flow_t0"], b["flow_t1"], logit0, b["t"])
    out, _, _ = net.blend(b["f0"], b["f1"], ft0, ft1, logit)
    photo = charbonnier(out - b["mid"])
    tr = b["trust"]
    dist = ((ft0 - b["teacher_t0"]).abs().sum(1) * tr[:, 0] + (ft1 - b["teacher_t1"]).abs().sum(1) * tr[:, 1]).mean()
    with torch.no_grad():
        base, _, _ = net.blend(b["f0"], b["f1"], b["flow_t0"], b["flow_t1"], logit0)
        mse_base = ((base - b["mid"]) ** 2).mean()
        mse = ((out.detach().clamp(0, 1) - b["mid"]) ** 2).mean()
    return photo + distill * dist, photo, dist, mse, mse_base


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="runs/motion")
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--crops-per", type=int, default=2)
    ap.add_argument("--per-seq", type=int, default=60)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--distill", type=float, default=0.01)
    ap.add_argument("--levels", default="8:64:4:0,4:48:4:0,2:32:3:0")
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", default=None, help="DIR/*.mp4 read with OpenCV instead of ../shared/data/train")
    ap.add_argument("--workers", type=int, default=1, help="processes building the bank")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    sources = ([{"path": f"{args.corpus}/*.mp4", "kind": "video", "reader": "opencv"}] if args.corpus else SOURCES)
    bank = build_bank(out / "bank", sources, args.per_seq, args.crop, args.crops_per, args.seed, args.workers)
    print(f"bank: {len(bank)} crops, {bank.frames.numel() + 2 * bank.flows.numel() >> 20} MB", flush=True)
    if torch.device(args.device).type == "cuda":
        bank.to(args.device)
    levels = tuple(tuple(int(v) for v in lv.split(":")) for lv in args.levels.split(","))
    net = MotionRefiner(levels).to(args.device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    step, elapsed = 0, 0.0
    ckpt = out / "motion.safetensors"
    if args.resume and ckpt.exists():
        net.load_state_dict(load_file(str(ckpt)))
        state = torch.load(out / "motion.train.pt", weights_only=False)
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state["elapsed"]
        print(f"resumed at step {step}", flush=True)
    rng = np.random.default_rng(args.seed + step)
    state = {"step": step, "t_start": time.time() - elapsed}
    log = open(out / "motion.log.csv", "a")

    def save():
        took = round(time.time() - state["t_start"], 1)
        save_refiner(out / "motion", net, {"step": state["step"], "train_seconds": took,
                                           "device": str(args.device), "command": " ".join(sys.argv)})
        torch.save({"opt": opt.state_dict(), "step": state["step"], "elapsed": took}, out / "motion.train.pt")

    try:
        train(net, opt, bank, args, rng, state, log, save)
    except KeyboardInterrupt:  # a hard stop (timeout -s INT) still leaves the last weights
        print("interrupted", flush=True)
    save()
    print(f"done at step {state['step']}", flush=True)


def train(net, opt, bank, args, rng, state, log, save):
    budget = args.minutes * 60
    acc = []
    while time.time() - state["t_start"] < budget:
        frac = (time.time() - state["t_start"]) / budget
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (state["step"] + 1) / 100) * 0.5 * (1 + math.cos(math.pi * frac))
        b = {k: v.to(args.device) for k, v in bank.batch(args.batch, rng).items()}
        loss, photo, dist, mse, mse_base = losses(net, b, args.distill)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        acc.append([loss.item(), photo.item(), dist.item(), mse.item(), mse_base.item()])
        if state["step"] % 50 == 0:
            m = np.mean(acc, 0)
            acc = []
            # step, seconds, loss, photometric, distillation (px), batch PSNR refined, classical
            line = (f"{state['step']},{time.time() - state['t_start']:.0f},{m[0]:.5f},{m[1]:.5f},{m[2]:.4f},"
                    f"{-10 * math.log10(m[3]):.3f},{-10 * math.log10(m[4]):.3f}")
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
        if state["step"] % args.ckpt_every == 0:
            save()


if __name__ == "__main__":
    main()
