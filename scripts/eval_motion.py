"""Blend PSNR of the classical motion and of the refined one on interpolation triplets.

    python scripts/eval_motion.py runs/motion [--data ../shared/data/val/interp]
"""
from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from restore.diffusion.motionbank import motion_sample  # noqa: E402
from restore.diffusion.motionnet import load_refiner, refined_hints  # noqa: E402
from restore.ops.flow import warp  # noqa: E402


def psnr(a, b):
    return -10 * np.log10(np.mean((np.round(np.clip(a, 0, 1) * 255) / 255 - b) ** 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data", default="../shared/data/val/interp")
    args = ap.parse_args()
    net = load_refiner(Path(args.run) / "motion")
    rows = []
    for d in sorted(glob.glob(args.data + "/*")):
        rd = lambda n: cv2.cvtColor(cv2.imread(f"{d}/{n}"), cv2.COLOR_BGR2RGB)
        s = motion_sample(rd("frame10.png"), rd("frame10i11.png"), rd("frame11.png"), 0.5)
        a = s.weight0[..., None]
        b = a * warp(s.f0, s.flow_t0) + (1 - a) * warp(s.f1, s.flow_t1)
        t0 = time.time()
        _, _, o = refined_hints(net, s.f0, s.f1, 0.5, s.flow_t0, s.flow_t1, s.weight0)
        dt = time.time() - t0
        rows.append((psnr(b, s.mid), psnr(o, s.mid), dt))
        print(f"{Path(d).name:22s} classical {rows[-1][0]:.2f}  refined {rows[-1][1]:.2f}  ({dt:.3f} s)", flush=True)
    m = np.mean(rows, 0)
    print(f"mean classical {m[0]:.3f}  refined {m[1]:.3f}  gain {m[1] - m[0]:+.3f}")


if __name__ == "__main__":
    main()
