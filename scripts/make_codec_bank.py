"""Precompute a bank of real codec damage for training: each clean clip (a video, or a folder of
frames) encoded at several settings, each encode beside its clean source as NAME~LABEL.mkv.

Encoding in the training loop (the `codec` degradation) costs more than a training step, and the
GPU machine has no encoder, so the `encoded` degradation cuts its crops from these files instead
(sources of kind `encoded` pair each file with NAME in the source's `clean` folder). Encodes are
made from the clean frames exactly as the training loader reads them (first `--frames` frames,
downscaled by `--downscale` with INTER_AREA), so clean and encode line up pixel for pixel.

    python scripts/make_codec_bank.py .carry/corpus/*.mp4 --out .carry/bank --downscale 2
    python scripts/make_codec_bank.py ../shared/data/train/frames/davis-bmx-trees --out runs/bank --downscale 1
"""
from __future__ import annotations

import argparse
import os
import sys


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from restore.diffusion.data import load_sources  # noqa: E402
from restore.io.roundtrip import encode  # noqa: E402

# label -> (codec, CRF, bits per pixel per frame at 25 fps), encoded as the `codec` degradation encodes
SETTINGS = {
    "x264-crf19": ("libx264", 19, None),
    "x264-crf24": ("libx264", 24, None),
    "x264-crf30": ("libx264", 30, None),
    "x264-crf35": ("libx264", 35, None),
    "x264-crf39": ("libx264", 39, None),
    "x264-crf44": ("libx264", 44, None),
    "x265-crf33": ("libx265", 33, None),
    "x265-crf40": ("libx265", 40, None),
    "mpeg2-0.08bpp": ("mpeg2video", None, 0.08),
    "mpeg4-0.05bpp": ("mpeg4", None, 0.05),
}


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
        clip = os.path.normpath(clip)
        kind = "frames" if os.path.isdir(clip) else "video"
        seq = load_sources([{"path": clip, "kind": kind, "downscale": args.downscale}], args.frames)[0]
        frames = seq.frames[:, : seq.frames.shape[1] // 2 * 2, : seq.frames.shape[2] // 2 * 2]
        stem = os.path.basename(clip)
        for label in args.settings.split(","):
            path = os.path.join(args.out, f"{stem}~{label}.mkv")
            codec, crf, bpp = SETTINGS[label]
            h, w = frames.shape[1:3]
            encode(frames, codec, path, crf=crf, bitrate=int(bpp * w * h * 25) if bpp else None)
            total += os.path.getsize(path)
        print(f"{stem}: {len(frames)} frames {frames.shape[2]}x{frames.shape[1]}, bank {total / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
