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
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from restore.diffusion.motionbank import motion_sample  # noqa: E402
from restore.diffusion.motionnet import load_refiner  # noqa: E402


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
        g = net.granularity
        h, w = s.f0.shape[:2]
        ph, pw = -h % g, -w % g
        T = lambda a: F.pad(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None], (0, pw, 0, ph), mode="replicate")
        w0 = np.clip(s.weight0, 1e-3, 1 - 1e-3)
        logit0 = T(np.log(w0 / (1 - w0))[..., None])
        with torch.no_grad():
            t0 = time.time()
            ft0, ft1, lg = net(T(s.f0), T(s.f1), T(s.flow_t0), T(s.flow_t1), logit0, torch.tensor([0.5]))
            out, _, _ = net.blend(T(s.f0), T(s.f1), ft0, ft1, lg)
            dt = time.time() - t0
            base, _, _ = net.blend(T(s.f0), T(s.f1), T(s.flow_t0), T(s.flow_t1), logit0)
        o = out[0, :, :h, :w].permute(1, 2, 0).numpy()
        b = base[0, :, :h, :w].permute(1, 2, 0).numpy()
        rows.append((psnr(b, s.mid), psnr(o, s.mid), dt))
        print(f"{Path(d).name:22s} classical {rows[-1][0]:.2f}  refined {rows[-1][1]:.2f}  ({dt:.3f} s)", flush=True)
    m = np.mean(rows, 0)
    print(f"mean classical {m[0]:.3f}  refined {m[1]:.3f}  gain {m[1] - m[0]:+.3f}")


if __name__ == "__main__":
    main()
