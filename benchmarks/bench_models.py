"""CPU (or CUDA) seconds per output frame of the diffusion restorers, and their throughput.

    python benchmarks/bench_models.py [--size 854x480] [--frames 16] [--threads 2]
        [--model denoise=data/weights/denoise] [--model sr-x2=runs/sr-x2-v2/sr-x2] ...

Each --model is TASK=CHECKPOINT_STEM (TASK: denoise, deblock, sr-x2, sr-x4, interp-x2); without
any, the shipped models. Interpolation makes one frame at t = 1/2 between each consecutive pair
(DIS flow hints included: that is what it costs per output frame). A chunk of `--frames` input frames of the given size (input size: SR outputs are larger)
is restored once to warm up and then timed `--repeat` times (the fastest run counts); the table gives seconds per output frame, the
network's multiply-accumulates per output frame counted by a forward hook (what a single pass
of the network costs, times the passes the restorer makes) and the GFLOP/s that gives end to end.
Run it alone on the machine: it prints a table, it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from restore.diffusion import checkpoint, zoo  # noqa: E402
from restore.device import PRECISIONS, keep_freed_memory, resolve_precision  # noqa: E402
from restore.diffusion.fusenet import load_fusenet  # noqa: E402
from restore.diffusion.restorers import DiffusionDenoiser, DiffusionInterpolator, DiffusionUpscaler  # noqa: E402


def count_macs(model) -> tuple[list, callable]:
    """Forward hooks on every conv / linear: MACs of the passes since the last reset."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            total[0] += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, torch.nn.Linear):
            total[0] += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    return total, lambda: [h.remove() for h in handles]


def conv_peak(threads: int, device: str) -> float:
    """GFLOP/s of one large 3x3 convolution (64 -> 64 channels, 256x256, channels_last): the
    machine's practical convolution peak that the models are compared against."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).to(memory_format=torch.channels_last)
    x = torch.randn(4, 64, 256, 256, device=device).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        conv(x)
        t0 = time.perf_counter()
        for _ in range(5):
            conv(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / 5
    return 2 * 4 * 64 * 64 * 9 * 256 * 256 / dt / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per model; the table shows the fastest")
    ap.add_argument("--precision", default="auto", choices=PRECISIONS,
                    help="the networks' number format (auto: bf16 on CPUs with native bf16)")
    ap.add_argument("--model", action="append", default=[], metavar="TASK=STEM")
    args = ap.parse_args()
    keep_freed_memory()  # as the CLI does
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    models = [m.split("=", 1) for m in args.model] or [[n, str(zoo.model_path(n).with_suffix(""))]
                                                        for n in zoo.NAMES]
    rng = np.random.default_rng(0)
    frames = rng.random((args.frames, h, w, 3), dtype=np.float32)
    precision = resolve_precision(args.precision, args.device)
    peak = conv_peak(args.threads, args.device)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.device}, {precision}; input {w}x{h}, {args.frames} frames; "
          f"3x3 fp32 conv peak {peak:.0f} GFLOP/s")
    print("| model | checkpoint | s / output frame | GMAC / output frame | GFLOP/s end to end | share of conv peak |")
    print("|---|---|---|---|---|---|")
    for task, stem in models:
        model, meta = checkpoint.load(stem, device=args.device, precision=precision)
        if task.startswith("interp"):
            interp = DiffusionInterpolator(model, meta)
            restorer = lambda f: interp(f[:-1], f[1:], 0.5)  # noqa: E731
        elif task.startswith("sr"):
            restorer = DiffusionUpscaler(model, meta)
        else:  # denoise, deblock
            fuser = meta["inference"].get("fuse_net")  # the learned fusion, beside the checkpoint
            fuser = load_fusenet(Path(stem).parent / fuser, args.device, precision) if fuser else None
            restorer = DiffusionDenoiser(model, meta, sigma255=25.0 if task == "denoise" else 0.0, fuse_net=fuser)
        restorer(frames[: min(4, len(frames))])
        times = []
        for i in range(max(1, args.repeat)):
            if i == 0:
                macs, remove = count_macs(model)
            t0 = time.perf_counter()
            out = restorer(frames)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) / len(out))
            if i == 0:
                remove()
                gmac = macs[0] / len(out) / 1e9
        dt = min(times)  # the least disturbed run (timeit's rule): other load only ever adds time
        print(f"| {task} | {stem} | {dt:.3f} | {gmac:.1f} | {2 * gmac / dt:.0f} | {2 * gmac / dt / peak:.0%} |")


if __name__ == "__main__":
    main()
