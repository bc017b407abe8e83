#!/usr/bin/env python
"""How much could aligned neighbours give a deblocker? A classical upper-bound probe.

    .venv/bin/python scripts/probe_deblock_fusion.py [--clip ../shared/data/val/frames/davis-dog]
        [--frames 14] [--crfs 23,37]

Encodes the clip with x264 (the bench's protocol), warps the two decoded neighbours on each side
onto every frame with DIS flow (medium preset, computed on the decoded frames) and averages them
with the frame, each weighted by how well it matches (exp(-(mean abs error / 6)^2) x 0.7).
Prints the Y-PSNR of the decoded frames and of that average: if independent quantisation errors of
aligned neighbours were what a deblocker could remove, the average would gain. Asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def fuse(coded: np.ndarray, i: int) -> np.ndarray:
    from restore.ops.flow import dis_flow, warp

    h, w = coded.shape[1:3]
    acc, wsum = coded[i].astype(np.float32), np.ones((h, w, 1), np.float32)
    for j in (i - 2, i - 1, i + 1, i + 2):
        warped = warp(coded[j], dis_flow(coded[i], coded[j], "medium"))
        wt = np.exp(-(np.abs(warped - coded[i]).mean(-1, keepdims=True) / 6.0) ** 2) * 0.7
        acc += wt * warped
        wsum += wt
    return np.clip(np.rint(acc / wsum), 0, 255).astype(np.uint8)


def main() -> None:
    from restore.eval import protocols
    from restore.eval.data import load_clip
    from restore.metrics.psnr import psnr_y

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="../shared/data/val/frames/davis-dog")
    ap.add_argument("--frames", type=int, default=14)
    ap.add_argument("--crfs", default="23,37")
    args = ap.parse_args()
    clip = protocols.crop_to_multiple(load_clip(args.clip, args.frames), 2)
    print("| x264 CRF | decoded Y-PSNR | aligned 5-frame average |\n|---|---|---|")
    for crf in (int(c) for c in args.crfs.split(",")):
        coded = protocols.encode_crf(clip, "libx264", crf)
        idx = range(2, len(coded) - 2)
        ref = np.concatenate([clip[i] for i in idx])
        base = np.concatenate([coded[i] for i in idx])
        fused = np.concatenate([fuse(coded, i) for i in idx])
        print(f"| {crf} | {psnr_y(ref, base):.3f} | {psnr_y(ref, fused):.3f} |")


if __name__ == "__main__":
    main()
