"""Benchmark: `restore score` against ffmpeg's psnr and ssim filters on one 1080p clip, VMAF per
1080p frame, and LPIPS seconds per 720p frame. Prints a table; not a test (timings depend on the
machine and on what else runs on it: the load average is printed with the table).

    .venv/bin/python benchmarks/bench_score.py [--frames 75] [--source CLIP] [--lpips-frames 8]

The 1080p pair is made once in a temp folder: the source clip (default
../shared/data/train/clips/01_dog.mp4, else a synthetic clip) upscaled to 1920x1080 and encoded
near-losslessly as the reference (x264 CRF 10), and a CRF 30 encode of that as the distorted file.
Every timing includes decoding both files, as ffmpeg's does; "cpu" is the CPU time of all threads
(and child processes), which on a shared machine says more than the wall clock. Each restore row
is run through the real command line (`restore score ... --no-lpips --json`) in a fresh process,
startup included, like ffmpeg; the numbers it prints are checked against ffmpeg's where they
claim to be the same.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "train" / "clips" / "01_dog.mp4"
RESTORE = [sys.executable, "-m", "restore.cli.main"]


def run(cmd, capture=False):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=True)


def timed_proc(cmd, repeat):
    """Best wall time of `repeat` runs of a command, the CPU time of that run, and its output."""
    best = None
    for _ in range(repeat):
        c0 = os.times()
        t = time.perf_counter()
        out = run(cmd, capture=True)
        wall = time.perf_counter() - t
        c1 = os.times()
        cpu = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        if best is None or wall < best[0]:
            best = (wall, cpu, out)
    return best


def timed_call(fn, repeat=1):
    best = None
    for _ in range(repeat):
        c0 = time.process_time()
        t = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t
        cpu = time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu, out)
    return best


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
    ap.add_argument("--vmaf-frames", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs for each timing")
    args = ap.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("ffmpeg not found")
    import torch

    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        tmp = Path(tmp)
        ref, dist = make_pair(tmp, args.source, args.frames)
        n = args.frames
        ff = ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref)]
        rows.append(("ffmpeg: decode both (no metric)",
                     *timed_proc(ff + ["-map", "0:v", "-map", "1:v", "-f", "null", "-"], args.repeat)[:2]))
        rows.append(("ffmpeg: psnr filter", *timed_proc(ff + ["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"],
                                                         args.repeat)[:2]))
        rows.append(("ffmpeg: ssim filter", *timed_proc(ff + ["-lavfi", "[0:v][1:v]ssim", "-f", "null", "-"],
                                                         args.repeat)[:2]))
        wall, cpu, out = timed_proc(ff + ["-lavfi", "[0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim",
                                          "-f", "null", "-"], args.repeat)
        rows.append(("ffmpeg: psnr + ssim (one run)", wall, cpu))
        ff_psnr = float(re.search(r"PSNR .* average:([\d.]+)", out.stderr).group(1))
        ff_ssim = float(re.search(r"SSIM .* All:([\d.]+)", out.stderr).group(1))

        base = RESTORE + ["score", str(ref), str(dist), "--no-lpips", "--json"]
        runs = [
            ("restore score --psnr-mode yuv --ssim-mode ffmpeg", ["--psnr-mode", "yuv", "--ssim-mode", "ffmpeg"]),
            ("  same, --align none", ["--psnr-mode", "yuv", "--ssim-mode", "ffmpeg", "--align", "none"]),
            ("restore score --psnr-mode yuv (Gaussian SSIM)", ["--psnr-mode", "yuv"]),
            ("restore score (default: y, Gaussian SSIM)", []),
            ("restore score --psnr-mode rgb", ["--psnr-mode", "rgb"]),
        ]
        same = None
        for name, extra in runs:
            wall, cpu, out = timed_proc(base + extra, args.repeat)
            rows.append((name, wall, cpu))
            if same is None:
                agg = json.loads(out.stdout)["reports"][0]["aggregates"]
                same = (agg["psnr"], agg["ssim"])

        # VMAF (both models) per 1080p frame, in-process, on the first frames only
        from restore.metrics.score import score

        k = min(args.vmaf_frames, n)
        vm = tmp / "ref_short.mp4", tmp / "dist_short.mp4"
        for src, dst in zip((ref, dist), vm):
            run(["ffmpeg", "-nostdin", "-y", "-i", str(src), "-frames:v", str(k), "-c", "copy", str(dst)])
        wall_v, cpu_v, rep = timed_call(lambda: score(*vm, metrics=("psnr",), psnr_mode="yuv", align="none",
                                                      vmaf="both", device="cpu"))
        wall_p, cpu_p, _ = timed_call(lambda: score(*vm, metrics=("psnr",), psnr_mode="yuv", align="none"))
        vmaf_per_frame = ((wall_v - wall_p) / k, (cpu_v - cpu_p) / k)

        # LPIPS at 720p, model already built (as the CLI builds it once per run)
        from restore.metrics.lpips_metric import LPIPS

        torch.set_num_threads(2)
        lp = LPIPS(device="cpu", batch_size=4)
        rng = np.random.default_rng(0)
        a = rng.integers(0, 256, (args.lpips_frames, 720, 1280, 3), dtype=np.uint8)
        b = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
        lp(a[:1], b[:1])  # warm-up
        wall_l, cpu_l, _ = timed_call(lambda: lp(a, b), 1)

    load_after = os.getloadavg()
    print(f"\n1080p clip: {n} frames; {os.cpu_count()} CPU threads; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (above {os.cpu_count()} = shared machine)")
    print(f"ffmpeg  psnr average {ff_psnr:.6f} dB, ssim All {ff_ssim:.6f}")
    print(f"restore psnr (yuv)   {same[0]:.6f} dB, ssim (ffmpeg mode) {same[1]:.6f}   "
          f"(same numbers: {abs(same[0] - ff_psnr) < 5e-3 and abs(same[1] - ff_ssim) < 2e-6})")
    w = max(len(r[0]) for r in rows)
    print(f"\n{'what (wall: best of ' + str(args.repeat) + ')':<{w}}  {'wall s':>7}  {'cpu s':>6}  {'fps':>6}  {'vs ffmpeg':>9}")
    print(f"{'-' * w}  {'-' * 7}  {'-' * 6}  {'-' * 6}  {'-' * 9}")
    ref_wall = next(r[1] for r in rows if r[0] == "ffmpeg: psnr + ssim (one run)")
    for name, wall, cpu in rows:
        print(f"{name:<{w}}  {wall:7.2f}  {cpu:6.2f}  {n / wall:6.1f}  {wall / ref_wall:8.2f}x")
    print(f"\nVMAF (vmaf_v0.6.1 + NEG, CPU, {k} frames) at 1920x1080: {vmaf_per_frame[0]:.2f} s/frame wall, "
          f"{vmaf_per_frame[1]:.2f} s CPU")
    print(f"LPIPS (alex, CPU, {torch.get_num_threads()} threads) at 1280x720: {wall_l / args.lpips_frames:.3f} "
          f"s/frame wall, {cpu_l / args.lpips_frames:.3f} s CPU ({args.lpips_frames} frames, batch 4; aim <= 0.4 wall)")


if __name__ == "__main__":
    main()
