#!/usr/bin/env python
"""Does a compression-damage model fit its own training data? PSNR gain on a codec bank.

    .venv/bin/python scripts/probe_bank_gain.py --bank '.carry/bank/*.mkv' --clean .carry/corpus \
        --clean-downscale 2 data/weights/deblock runs/gpu2/deblock/deblock

For each checkpoint (a denoise-task model run blind, as --deblock runs it) and each encode label
of the bank (scripts/make_codec_bank.py), the mean PSNR of the decoded input and of the model's
output against the clean frames, over 8 frames of every `--every`-th clip. A model that gains
little here as well as on validation is not facing a domain gap (whether it underfits or has hit
what its inputs allow, the training log's est_loss column tells); it also prints
how well the encodes line up with their clean frames (a pairing bug would show up as an aligned
PSNR no better than a one-frame shift's).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def psnr(a, b) -> float:
    import numpy as np

    return float(10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2)))


def main(argv=None) -> int:
    from restore.device import PRECISIONS, resolve_precision

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="checkpoint stems (<stem>.safetensors + <stem>.yaml)")
    p.add_argument("--bank", required=True, help="glob of the bank's NAME~LABEL.mkv encodes")
    p.add_argument("--clean", required=True, help="folder of the clean NAME videos")
    p.add_argument("--clean-downscale", type=int, default=1, help="as the bank was made")
    p.add_argument("--every", type=int, default=3, help="probe every N-th clip")
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    args = p.parse_args(argv)

    import numpy as np

    from restore.diffusion import checkpoint
    from restore.diffusion.data import load_sources
    from restore.diffusion.restorers import DiffusionDenoiser

    seqs = load_sources([{"path": args.bank, "kind": "encoded", "clean": args.clean,
                          "clean_downscale": args.clean_downscale}])
    seqs = [s for s in seqs if len(s.frames) >= 16][::args.every]
    pairing: dict[str, list] = {}
    for s in seqs:
        for label, v in s.encoded:
            pairing.setdefault(label, []).append((psnr(v[8] / 255, s.frames[8] / 255),
                                                  psnr(v[8] / 255, s.frames[9] / 255)))
    print("pairing (frame 8 of each encode vs clean frame 8 / clean frame 9):")
    for label, v in sorted(pairing.items()):
        a = np.array(v).mean(0)
        print(f"  {label:18s} aligned {a[0]:.2f} dB, shifted by one frame {a[1]:.2f} dB")
    precision = resolve_precision(args.precision, "cpu")
    for stem in args.weights:
        model, meta = checkpoint.load(stem, precision=precision)
        restorer = DiffusionDenoiser(model, meta, sigma255=0.0)
        rows: dict[str, list] = {}
        for s in seqs:
            clean = s.frames[8:16].astype(np.float32) / 255
            for label, v in s.encoded:
                x = v[8:16].astype(np.float32) / 255
                y = np.round(restorer(x) * 255) / 255
                rows.setdefault(label, []).append((psnr(x, clean), psnr(y, clean)))
        print(f"{stem} ({len(seqs)} clips, 8 frames each):")
        for label, v in sorted(rows.items()):
            a = np.array(v).mean(0)
            print(f"  {label:18s} input {a[0]:.2f} dB, output {a[1]:.2f} dB, gain {a[1] - a[0]:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
