"""Benchmark: `restore score` PSNR+SSIM against ffmpeg's psnr and ssim filters on one 1080p clip,
and LPIPS seconds per 720p frame. Prints a table; not a test (timings depend on the machine).

    .venv/bin/python benchmarks/bench_score.py [--frames 75] [--source CLIP] [--lpips-frames 8]

The 1080p pair is made once in a temp folder: the source clip (default
../shared/data/train/clips/01_dog.mp4, else a synthetic clip) upscaled to 1920x1080 and encoded
near-losslessly as the reference (x264 CRF 10), and a CRF 30 encode of that as the distorted file.
Every timing includes decoding both files, as ffmpeg's does.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "train" / "clips" / "01_dog.mp4"


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed(fn, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def make_pair(tmp: Path, src: Path | None, frames: int):
    ref, dist = tmp / "ref1080.mp4", tmp / "dist1080.mp4"
    inp = ["-i", str(src)] if src and src.is_file() else ["-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25"]
    run(["ffmpeg", "-nostdin", "-y", *inp, "-frames:v", str(frames), "-an", "-sn", "-dn",
         "-vf", "scale=1920:1080:flags=bicubic", "-c:v", "libx264", "-preset", "veryfast", "-crf", "10",
         "-pix_fmt", "yuv420p", str(ref)])
    run(["ffmpeg", "-nostdin", "-y", "-i", str(ref), "-c:v", "libx264", "-preset", "veryfast", "-crf", "30",
         str(dist)])
    return ref, dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=75, help="frames of the 1080p clip (75 = 3 s at 25 fps)")
    ap.add_argument("--source", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--lpips-frames", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs for each timing")
    args = ap.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("ffmpeg not found")

    from restore.metrics.score import score

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        tmp = Path(tmp)
        ref, dist = make_pair(tmp, args.source, args.frames)
        n = args.frames
        ff = ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref)]
        t_ff_psnr, _ = timed(lambda: run(ff + ["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"]), args.repeat)
        t_ff_ssim, _ = timed(lambda: run(ff + ["-lavfi", "[0:v][1:v]ssim", "-f", "null", "-"]), args.repeat)
        t_ff_both, _ = timed(lambda: run(ff + ["-lavfi", "[0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim",
                                               "-f", "null", "-"]), args.repeat)
        t_dec, _ = timed(lambda: run(ff + ["-map", "0:v", "-map", "1:v", "-f", "null", "-"]), args.repeat)
        rows += [("ffmpeg decode both (no metric)", t_dec), ("ffmpeg psnr filter", t_ff_psnr),
                 ("ffmpeg ssim filter", t_ff_ssim), ("ffmpeg psnr + ssim (one run)", t_ff_both)]
        for mode in ("yuv", "y", "rgb"):
            t, rep = timed(lambda m=mode: score(ref, dist, metrics=("psnr", "ssim"), psnr_mode=m, align="none"),
                           args.repeat)
            rows.append((f"restore score psnr+ssim --psnr-mode {mode}", t))
            if mode == "yuv":
                psnr_yuv = rep.aggregates["psnr"]
        t, _ = timed(lambda: score(ref, dist, metrics=("psnr", "ssim"), psnr_mode="y", align="auto"), 1)
        rows.append(("restore score psnr+ssim -y, --align auto", t))

        # LPIPS at 720p, model already built (as the CLI builds it once per run)
        import torch

        from restore.metrics.lpips_metric import LPIPS

        lp = LPIPS(device="cpu", batch_size=4)
        rng = np.random.default_rng(0)
        a = rng.integers(0, 256, (args.lpips_frames, 720, 1280, 3), dtype=np.uint8)
        b = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
        lp(a[:1], b[:1])  # warm-up
        t_lp, _ = timed(lambda: lp(a, b), 1)

    print(f"\n1080p clip: {n} frames, {os.cpu_count()} CPU threads, torch threads {torch.get_num_threads()}")
    print(f"(PSNR-YUV of the pair: {psnr_yuv:.3f} dB)")
    w = max(len(r[0]) for r in rows)
    print(f"{'what':<{w}}  {'seconds':>8}  {'fps':>7}")
    print(f"{'-' * w}  {'-' * 8}  {'-' * 7}")
    for name, t in rows:
        print(f"{name:<{w}}  {t:8.2f}  {n / t:7.1f}")
    print(f"\nLPIPS (alex, CPU) at 1280x720: {t_lp / args.lpips_frames:.3f} s/frame "
          f"({args.lpips_frames} frames, batch 4; aim <= 0.4)")


if __name__ == "__main__":
    main()
