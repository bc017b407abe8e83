"""Precompute a bank of real codec damage for training: each clean clip encoded at several
settings, each encode beside its clean source as NAME~LABEL.mkv.

Encoding in the training loop (the `codec` degradation) costs more than a training step, and the
GPU machine has no encoder, so the `encoded` degradation cuts its crops from these files instead
(sources of kind `encoded` pair each file with NAME in the source's `clean` folder). Encodes are
made from the clean frames exactly as the training loader reads them (first `--frames` frames,
downscaled by `--downscale` with INTER_AREA), so clean and encode line up pixel for pixel.

    python scripts/make_codec_bank.py .carry/corpus/*.mp4 --out .carry/bank --downscale 2
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from restore.diffusion.data import load_sources  # noqa: E402

# label -> ffmpeg video options; bits-per-pixel settings are per pixel per frame at 25 fps
SETTINGS = {
    "x264-crf24": ["-c:v", "libx264", "-preset", "medium", "-crf", "24"],
    "x264-crf30": ["-c:v", "libx264", "-preset", "medium", "-crf", "30"],
    "x264-crf35": ["-c:v", "libx264", "-preset", "medium", "-crf", "35"],
    "x264-crf39": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "39"],
    "x264-crf44": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "44"],
    "x265-crf33": ["-c:v", "libx265", "-preset", "fast", "-crf", "33", "-x265-params", "log-level=none"],
    "x265-crf40": ["-c:v", "libx265", "-preset", "fast", "-crf", "40", "-x265-params", "log-level=none"],
    "mpeg2-0.08bpp": ["-c:v", "mpeg2video", "BPP0.08"],
    "mpeg4-0.05bpp": ["-c:v", "mpeg4", "BPP0.05"],
}


def encode(frames: np.ndarray, options: list[str], path: str) -> None:
    t, h, w, _ = frames.shape
    opts = []
    for o in options:
        opts += ["-b:v", str(int(float(o[3:]) * w * h * 25))] if o.startswith("BPP") else [o]
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25",
           "-i", "-", *opts, "-pix_fmt", "yuv420p", path]
    subprocess.run(cmd, input=np.ascontiguousarray(frames).tobytes(), check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--downscale", type=int, default=2)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--settings", default=",".join(SETTINGS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for clip in args.clips:
        seq = load_sources([{"path": clip, "kind": "video", "downscale": args.downscale}], args.frames)[0]
        frames = seq.frames[:, : seq.frames.shape[1] // 2 * 2, : seq.frames.shape[2] // 2 * 2]
        stem = os.path.basename(clip)
        for label in args.settings.split(","):
            path = os.path.join(args.out, f"{stem}~{label}.mkv")
            encode(frames, SETTINGS[label], path)
            total += os.path.getsize(path)
        print(f"{stem}: {len(frames)} frames {frames.shape[2]}x{frames.shape[1]}, bank {total / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
