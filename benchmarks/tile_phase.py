"""Does tiling change what an SR model makes? Y-PSNR of the shipped x2 / x4 over the default CPU
tiles against one untiled pass and bicubic, on real HR frames (a video or a folder of frames).

    python benchmarks/tile_phase.py CLIP [--frames 5] [--model sr-x2] [--tile 384]

Tiles must start on the network's pixel grid (restore.diffusion.infer._spans): a tile that starts
on an odd output pixel feeds an x2 network the 2x2 phases of the upsample swapped. Prints a
table; asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    import torch

    from restore.device import resolve_precision
    from restore.diffusion import zoo
    from restore.diffusion.restorers import DiffusionUpscaler
    from restore.eval import protocols
    from restore.eval.data import load_clip
    from restore.io import decode
    from restore.metrics.psnr import psnr_y
    from restore.ops.resize import imresize

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--model", default="sr-x2")
    ap.add_argument("--tile", type=int, default=None, help="tile size (default: the model's CPU tile)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if os.path.isdir(args.clip):
        hr = load_clip(args.clip, args.frames)
    else:
        hr = []
        for f in decode(args.clip):
            hr.append(f.image)
            if len(hr) >= args.frames:
                break
        hr = np.stack(hr)
    model, meta = zoo.load(args.model, "cpu", resolve_precision("auto", "cpu"))
    s = int(meta["scale"])
    hr = protocols.crop_to_multiple(hr, s)
    lr = protocols.bi_downscale(hr, s)
    lr_f = lr.astype(np.float32) / 255

    def u8(x):
        return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)

    def score(out):
        return psnr_y(np.concatenate(list(hr)), np.concatenate(list(out)), crop_border=s)

    t = torch.from_numpy(lr_f).permute(0, 3, 1, 2)
    bic = u8(imresize(t, (hr.shape[1], hr.shape[2])).permute(0, 2, 3, 1).numpy())
    tiled = u8(DiffusionUpscaler(model, meta, tile=args.tile)(lr_f))
    whole = u8(DiffusionUpscaler(model, meta, tile=1 << 16)(lr_f))
    print(f"{args.model}, {len(hr)} frames {lr.shape[2]}x{lr.shape[1]} -> {hr.shape[2]}x{hr.shape[1]}")
    print("| output | Y-PSNR |\n|---|---|")
    for name, out in (("bicubic", bic), ("tiled (CPU default)" if args.tile is None else f"tiles of {args.tile}", tiled),
                      ("one tile", whole)):
        print(f"| {name} | {score(out):.3f} |")


if __name__ == "__main__":
    main()
