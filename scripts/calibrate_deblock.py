"""Rederive the constants of restore/methods/damage.py (the `--deblock auto` estimate).

    python scripts/calibrate_deblock.py [--frames 24] [CLIP ...]

Encodes each clip (a folder of frames or a video; default: three clips of ../shared/data/train)
with x264 and x265 over a CRF ladder and with MPEG-2 / MPEG-4 Part 2 over a bitrate ladder (preset
medium, yuv420p, in memory), runs restore.methods.damage.estimate_from_stream on every encode and
prints, per encode, the Y-PSNR against the clip, the mean quantiser (H.264 QP, or MPEG qscale as
an H.264-equivalent QP), bits per pixel, blockiness and the resulting strength. Read the table
for: QP_CLEAN (mean QP of x264 CRF ~20-21), QP_FULL (CRF ~37), MPEG_QP_OFFSET (MPEG points land
on the x264 PSNR-vs-QP line), BPP_CURVES (bpp where each codec reaches the x264 CRF 20 / 37 PSNR).
With `--model`, each encode is also restored by the shipped deblock model at full strength and the
table gains its Y-PSNR gain over the decoded input: the evidence behind damage.auto_strength (a
blind model at full strength on every lossy stream) and for QP_LOSSLESS.
Calibration only: the product never reads ../shared.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CLIPS = ["../shared/data/train/frames/davis-blackswan", "../shared/data/train/frames/sam2-bedroom",
                 "../shared/data/train/clips/bikes.mp4"]
CRFS = [0, 14, 18, 20, 23, 26, 30, 34, 37, 40, 45]
BPPS = [0.05, 0.1, 0.2, 0.4, 0.8]


def load(path: str, n: int) -> np.ndarray:
    from restore.eval.data import load_clip
    from restore.io import decode

    p = Path(path)
    if p.is_dir():
        frames = load_clip(p, n)
    else:
        frames = []
        for f in decode(p):
            frames.append(f.image)
            if len(frames) >= n:
                break
        frames = np.stack(frames)
    h, w = frames.shape[1:3]
    return np.ascontiguousarray(frames[:, : h - h % 2, : w - w % 2])


def encode(frames: np.ndarray, codec: str, **opts) -> io.BytesIO:
    import av

    t, h, w, _ = frames.shape
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        st = out.add_stream(codec, rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {k: str(v) for k, v in opts.items()}
        for f in frames:
            out.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(st.encode())
    buf.seek(0)
    return buf


def decoded(buf: io.BytesIO) -> np.ndarray:
    import av

    buf.seek(0)
    with av.open(buf) as c:
        out = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    buf.seek(0)
    return out


def main() -> None:
    from restore.methods.damage import estimate_from_stream
    from restore.metrics.psnr import psnr_y

    ap = argparse.ArgumentParser()
    ap.add_argument("clips", nargs="*", default=DEFAULT_CLIPS)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--model", action="store_true", help="also the full-strength gain of the deblock model")
    ap.add_argument("--crfs", default=",".join(map(str, CRFS)), help="x264 / x265 CRF ladder (comma-separated)")
    ap.add_argument("--no-mpeg", action="store_true", help="skip the MPEG-2 / MPEG-4 ladders")
    args = ap.parse_args()
    crfs = [int(c) for c in args.crfs.split(",")]
    model = None
    if args.model:
        from restore.device import resolve_precision
        from restore.registry import MethodOptions, get
        import restore.methods  # noqa: F401  (registers the methods)

        model = get("deblock", "diffusion").factory(MethodOptions(strength=1.0, precision=resolve_precision("auto", "cpu")))
    print("clip\tencode\tY-PSNR\tQP\tbpp\tblockiness\tstrength\tbasis" + ("\tmodel gain" if model else ""))
    for clip in args.clips:
        ref = load(clip, args.frames)
        h, w = ref.shape[1:3]
        ladder = [(f"libx264 crf {c}", "libx264", {"qp": 0} if c == 0 else {"crf": c, "preset": "medium"}) for c in crfs]
        ladder += [(f"libx265 crf {c}", "libx265", {"crf": c, "preset": "medium", "x265-params": "log-level=none"})
                   for c in crfs if c > 0]
        if not args.no_mpeg:
            ladder += [(f"{c} {b} bpp", c, {"b": int(b * w * h * 25)}) for c in ("mpeg2video", "mpeg4") for b in BPPS]
        for label, codec, opts in ladder:
            buf = encode(ref, codec, **opts)
            out = decoded(buf)
            est = estimate_from_stream(buf)
            p = psnr_y(ref.reshape(-1, w, 3), out.reshape(-1, w, 3))
            gain = ""
            if model is not None:
                restored = np.clip(np.rint(model(out.astype(np.float32) / 255.0) * 255.0), 0, 255).astype(np.uint8)
                gain = f"\t{psnr_y(ref.reshape(-1, w, 3), restored.reshape(-1, w, 3)) - p:+.3f}"
            print(f"{Path(clip).name}\t{label}\t{p:.2f}\t{est.qp if est.qp is None else round(est.qp, 2)}\t"
                  f"{est.bpp:.4f}\t{est.blockiness:.3f}\t{est.strength:.2f}\t{est.basis}{gain}", flush=True)


if __name__ == "__main__":
    main()
