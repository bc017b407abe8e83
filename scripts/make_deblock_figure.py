"""Regenerate docs/deblock-before-after.png: the README's `--deblock` picture.

The bundled sample clip (data/sample.mp4, first FRAMES frames) encoded with x264 at CRF 40, then
restored with the default deblock method at the strength `--deblock auto` estimates from that
encode, exactly as `restore enhance enc.mkv --deblock` would; the picture shows a CROP of frame
SHOW side by side: x264 CRF 40 | restored | original, each labelled with its Y-PSNR (the
FRAMES-frame clip's, against the original). Rerun it whenever the deblock weights change:

    python scripts/make_deblock_figure.py [--method NAME] [--out docs/deblock-before-after.png]
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAMES = 12
SHOW = 6
CRF = 40
CROP = (90, 250, 60, 300)  # y0, y1, x0, x1 of the 640x360 frame: the rabbit, grass and a rock
ZOOM = 2                   # nearest-neighbour: artefacts stay visible in the README


def main() -> None:
    import cv2

    from restore import registry
    from restore.eval.protocols import encode_crf_stream
    from restore.io import decode
    from restore.ops.frames import from_float, to_float
    from restore.methods.damage import estimate_from_stream
    from restore.metrics.psnr import psnr_y

    ap = argparse.ArgumentParser()
    ap.add_argument("--method", default=None, help="deblock method (default: the registry's default)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "deblock-before-after.png"))
    args = ap.parse_args()

    ref = []
    for f in decode(ROOT / "data" / "sample.mp4"):
        ref.append(f.image)
        if len(ref) == FRAMES:
            break
    ref = np.stack(ref)
    coded, stream = encode_crf_stream(ref, "libx264", CRF)
    est = estimate_from_stream(io.BytesIO(stream))
    spec = registry.get("deblock", args.method)
    restorer = spec.factory(registry.MethodOptions(strength=est.strength, device="cpu"))
    restored = from_float(restorer(to_float(coded)), np.uint8)

    def py(x):
        return psnr_y(ref.reshape(-1, *ref.shape[-2:]), x.reshape(-1, *x.shape[-2:]))

    y0, y1, x0, x1 = CROP
    panels = []
    for img, label in ((coded, f"x264 CRF {CRF}: {py(coded):.2f} dB"),
                       (restored, f"--deblock ({spec.name}, {est.strength:.2f}): {py(restored):.2f} dB"),
                       (ref, "original")):
        crop = img[SHOW, y0:y1, x0:x1]
        crop = cv2.resize(crop, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_NEAREST)
        bar = np.full((28, crop.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([bar, crop]))
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    out = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, out[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out}: {spec.name}, auto {est.describe()}; Y-PSNR {py(coded):.2f} -> {py(restored):.2f} dB "
          f"over {FRAMES} frames")


if __name__ == "__main__":
    main()
