"""Batch throughput with 1 and 2 local workers on the same set of clips.

    .venv/bin/python benchmarks/bench_batch.py [--copies 6] [--task "--model classical --scale 2"]

Each run restores `--copies` copies of the bundled sample clip (restore.data/sample.mp4,
640x360, 100 frames; scaled to `--size` first, 320x180 by default, to keep the run short on a
small machine) with `restore batch` in a fresh output folder (the cheap classical task by default)
and reports wall time, files/s and input frames/s. Worker start-up (Python + torch
import) is part of the wall time, as it is for a user; so is the manifest bookkeeping.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from importlib.resources import as_file, files
from pathlib import Path


def run(src: Path, out: Path, workers: int, task: list[str], engine: str) -> dict:
    cmd = [sys.executable, "-m", "restore.cli.main", "batch", str(src), "--out", str(out),
           "--engine", engine, "--workers", str(workers), "--json", *task]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"batch failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--task", default="--model classical --scale 2 --device cpu",
                    help="restore batch task flags")
    ap.add_argument("--engine", default="local", choices=["local", "ray"])
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count (best is kept)")
    ap.add_argument("--size", default="320x180", help="WxH the sample is scaled to first, or 'orig'")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp, \
            as_file(files("restore.data").joinpath("sample.mp4")) as sample:
        tmp = Path(tmp)
        src = tmp / "src"
        src.mkdir()
        clip = tmp / "clip.mp4"
        if args.size == "orig":
            shutil.copyfile(sample, clip)
        else:  # input preparation, not measured
            w, h = args.size.split("x")
            subprocess.run(["ffmpeg", "-v", "error", "-i", str(sample), "-vf", f"scale={w}:{h}",
                            "-c:v", "libx264", "-crf", "18", "-c:a", "copy", str(clip)], check=True)
        for i in range(args.copies):
            shutil.copyfile(clip, src / f"clip{i:02d}.mp4")
        rows = []
        for workers in [int(w) for w in args.workers.split(",")]:
            best = None
            for r in range(args.repeat):
                out = tmp / f"out-{workers}-{r}"
                s = run(src, out, workers, shlex.split(args.task), args.engine)
                assert s["done"] == args.copies, s
                if best is None or s["wall_seconds"] < best["wall_seconds"]:
                    best = s
                shutil.rmtree(out)
            rows.append((workers, best))

    print(f"restore batch, {args.copies} x sample.mp4 ({args.size}, 100 frames), task: {args.task}, "
          f"engine {args.engine}, {os.cpu_count()} CPUs")
    print(f"{'workers':>7} {'files':>5} {'frames':>6} {'wall s':>7} {'files/s':>8} {'frames/s':>9} {'speed-up':>8}")
    base = rows[0][1]["wall_seconds"]
    for workers, s in rows:
        print(f"{workers:>7} {s['done']:>5} {s['frames']:>6} {s['wall_seconds']:>7.1f} "
              f"{s['files_per_second']:>8.3f} {s['frames_per_second']:>9.1f} {base / s['wall_seconds']:>8.2f}")


if __name__ == "__main__":
    main()
