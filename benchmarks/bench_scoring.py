"""Benchmark: `restore score --no-lpips` against ffmpeg's psnr and ssim filters on 1080p clips,
LPIPS seconds per 720p frame, VMAF seconds per 1080p frame. Prints a table with the machine
description; not a test (timings depend on the machine and on what else runs on it, so the load
average before and after is printed with the table).

    python benchmarks/bench_scoring.py [--frames 100] [--source CLIP] [--repeat 3] [--cpus 0,1]

Clips (made once in a temp folder): a synthetic one (ffmpeg's testsrc2 at 1920x1080, 25 fps) and,
when --source exists (default ../shared/data/train/clips/01_dog.mp4, real footage), that clip
scaled to 1920x1080. Each is encoded with x264 at CRF 10 as the reference and re-encoded at CRF 35
as the distorted file (yuv420p). Every timing decodes both files, as ffmpeg's does, and runs the
real command line in a fresh process (`restore score REF DIST --no-lpips --json`: start-up and
imports included, as ffmpeg's start-up is; bytecode cached, as installed): after one untimed
run of each command, wall is the best of --repeat runs, cpu the CPU time of that run (all threads and child processes; on a shared machine the fairer number). The numbers
restore prints are checked against ffmpeg's (they must be the same: PSNR average to 0.001 dB, SSIM
All to 1e-6). --cpus pins everything to those CPUs (e.g. 0,1 for a 2-core comparison).
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

from restore.device import cpu_name

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SRC = ROOT.parent / "shared" / "data" / "train" / "clips" / "01_dog.mp4"
RESTORE = [sys.executable, "-m", "restore.cli.main"]
# restore runs as installed: bytecode cached (a shell with PYTHONDONTWRITEBYTECODE=1 would make
# every run compile restore's modules again, a start-up cost no installed copy pays)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(cmd, capture=False):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL, text=True, env=ENV)


def timed_proc(cmd, repeat):
    """Best wall time of `repeat` runs of a command, the CPU time of that run, and its output
    (after one untimed run: files in the page cache, restore's bytecode written)."""
    run(cmd)
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


def make_pair(tmp: Path, name: str, src: Path | None, frames: int):
    ref, dist = tmp / f"{name}_ref1080.mp4", tmp / f"{name}_dist1080.mp4"
    inp = ["-i", str(src)] if src else ["-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25"]
    run(["ffmpeg", "-nostdin", "-y", *inp, "-frames:v", str(frames), "-an", "-sn", "-dn",
         "-vf", "scale=1920:1080:flags=bicubic", "-c:v", "libx264", "-preset", "veryfast", "-crf", "10",
         "-pix_fmt", "yuv420p", str(ref)])
    run(["ffmpeg", "-nostdin", "-y", "-i", str(ref), "-c:v", "libx264", "-preset", "veryfast", "-crf", "35",
         str(dist)])
    return ref, dist


def machine() -> str:
    cpu = cpu_name()
    ff = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    import av
    import torch

    return (f"{cpu}; {len(os.sched_getaffinity(0))} of {os.cpu_count()} CPUs usable; {ff.split(' Copyright')[0]}; "
            f"PyAV {av.__version__} (FFmpeg libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}); "
            f"torch {torch.__version__}")


def bench_clip(name, ref, dist, n, repeat, rows, checks, extra_modes):
    ff = ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref)]
    wall, cpu, out = timed_proc(ff + ["-lavfi", "[0:v][1:v]psnr;[0:v][1:v]ssim", "-f", "null", "-"], repeat)
    rows.append((name, n, "ffmpeg psnr + ssim filters", wall, cpu))
    ff_wall = wall
    ff_psnr = float(re.search(r"PSNR .* average:([\d.]+)", out.stderr).group(1))
    ff_ssim = float(re.search(r"SSIM .* All:([\d.]+)", out.stderr).group(1))
    base = RESTORE + ["score", str(ref), str(dist), "--no-lpips", "--json"]
    modes = [("restore score --no-lpips (default)", [])] + extra_modes
    for label, extra in modes:
        wall, cpu, out = timed_proc(base + extra, repeat)
        rows.append((name, n, label, wall, cpu, wall / ff_wall))
        if not extra:
            agg = json.loads(out.stdout)["reports"][0]["aggregates"]
            checks.append((name, ff_psnr, agg["psnr"], ff_ssim, agg["ssim"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100, help="frames per 1080p clip (100 = 4 s at 25 fps)")
    ap.add_argument("--source", type=Path, default=DEFAULT_SRC, help="real clip (skipped when missing)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each timing")
    ap.add_argument("--lpips-frames", type=int, default=8)
    ap.add_argument("--lpips-threads", type=int, default=2)
    ap.add_argument("--vmaf-frames", type=int, default=0, help="also time VMAF (both models) on N frames")
    ap.add_argument("--papers-mode", action="store_true",
                    help="also time --psnr-mode y (BT.601 Y, Gaussian SSIM) and --psnr-mode yuv --ssim-mode wang")
    ap.add_argument("--cpus", help="pin this process and its children to these CPUs, e.g. 0,1")
    args = ap.parse_args()
    if not shutil.which("ffmpeg"):
        sys.exit("ffmpeg not found")
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    import torch

    rows, checks = [], []
    load_before = os.getloadavg()
    extra = [("restore score --no-lpips --psnr-mode y (papers: BT.601 Y, Gaussian SSIM)", ["--psnr-mode", "y"]),
             ("restore score --no-lpips --ssim-mode wang (Gaussian SSIM on Y plane)", ["--ssim-mode", "wang"])] \
        if args.papers_mode else []
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        tmp = Path(tmp)
        clips = [("testsrc2", None)] + ([("real: " + args.source.name, args.source)] if args.source.is_file() else [])
        for i, (name, src) in enumerate(clips):
            ref, dist = make_pair(tmp, f"c{i}", src, args.frames)
            bench_clip(name, ref, dist, args.frames, args.repeat, rows, checks, extra)
        vmaf_line = None
        if args.vmaf_frames:
            from restore.metrics.score import score

            k = min(args.vmaf_frames, args.frames)
            vm = tmp / "ref_short.mp4", tmp / "dist_short.mp4"
            for s, d in zip(make_pair(tmp, "c0", None, args.frames), vm):
                run(["ffmpeg", "-nostdin", "-y", "-i", str(s), "-frames:v", str(k), "-c", "copy", str(d)])
            wall_v, cpu_v, _ = timed_call(lambda: score(*vm, metrics=("psnr",), psnr_mode="yuv", align="none",
                                                        vmaf="both", device="cpu"))
            wall_p, cpu_p, _ = timed_call(lambda: score(*vm, metrics=("psnr",), psnr_mode="yuv", align="none"))
            vmaf_line = (f"VMAF (vmaf_v0.6.1 + NEG, CPU, {k} frames) at 1920x1080: {(wall_v - wall_p) / k:.2f} "
                         f"s/frame wall, {(cpu_v - cpu_p) / k:.2f} s CPU")

    # LPIPS at 720p, model built once (as the CLI builds it), batches of 4 frame pairs
    from restore.metrics.lpips_metric import LPIPS

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (args.lpips_frames, 720, 1280, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    torch.set_num_threads(args.lpips_threads)
    lpips_rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.lpips_frames > 0 else []
    for dev in devices:
        lp = LPIPS(device=dev, batch_size=4)
        lp(a[:4], b[:4])  # warm-up (oneDNN / cuDNN kernel choice)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        wall, cpu, _ = timed_call(lambda: (lp(a, b), sync()), 2)
        name = f"{dev}, {torch.get_num_threads()} threads" if dev == "cpu" else torch.cuda.get_device_name()
        lpips_rows.append((name, wall / args.lpips_frames, cpu / args.lpips_frames))
    load_after = os.getloadavg()

    print(f"\nmachine: {machine()}")
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"(above 0 = other jobs were running; timings then vary)")
    print(f"wall: best of {args.repeat} runs; cpu: CPU time (user + system, all threads) of that run\n")
    w = max(len(r[2]) for r in rows)
    c = max(len(r[0]) for r in rows)
    print(f"{'clip':<{c}}  {'frames':>6}  {'what':<{w}}  {'wall s':>7}  {'cpu s':>6}  {'wall vs ffmpeg':>14}  {'cpu vs ffmpeg':>13}")
    print(f"{'-' * c}  {'-' * 6}  {'-' * w}  {'-' * 7}  {'-' * 6}  {'-' * 14}  {'-' * 13}")
    ff_cpu = {}
    for r in rows:
        if len(r) == 5:
            ff_cpu[r[0]] = (r[3], r[4])
            print(f"{r[0]:<{c}}  {r[1]:>6}  {r[2]:<{w}}  {r[3]:7.2f}  {r[4]:6.2f}  {'1.00x':>14}  {'1.00x':>13}")
        else:
            print(f"{r[0]:<{c}}  {r[1]:>6}  {r[2]:<{w}}  {r[3]:7.2f}  {r[4]:6.2f}  {r[5]:13.2f}x  "
                  f"{r[4] / ff_cpu[r[0]][1]:12.2f}x")
    print()
    for name, fp, rp, fs, rs in checks:
        same = abs(fp - rp) < 5e-4 and abs(fs - rs) < 1e-6
        print(f"{name}: ffmpeg PSNR average {fp:.6f} dB, SSIM All {fs:.6f}; restore default {rp:.6f} dB, "
              f"{rs:.6f} -> {'same numbers' if same else 'DIFFERENT'}")
    for name, wall, cpu in lpips_rows:
        print(f"LPIPS (alex v0.1) at 1280x720 on {name}: {wall:.3f} s/frame wall, {cpu:.3f} s CPU "
              f"({args.lpips_frames} frame pairs, batches of 4)")
    if vmaf_line:
        print(vmaf_line)


if __name__ == "__main__":
    main()
