"""Pack a training YAML's sources into a few near-lossless H.264 files, to move them to a
training machine cheaply (a GPU box with a small upload limit, say).

    python scripts/pack_corpus.py configs/train/interp-x2.yaml OUT_DIR [--crf 17]

Every frame sequence and video of the config's `sources` (after its `downscale`, capped at
`max_frames_per_source`) becomes OUT_DIR/<name>.mp4 in 4:4:4 at a low CRF, so targets stay
within a fraction of a code value of the originals (the PSNR of each file is printed). Still
images are left out unless `--stills Q`, which writes them as JPEG at quality Q into
OUT_DIR/stills/. Point the training config's sources at `OUT_DIR/*.mp4` with `kind: video`
(and `OUT_DIR/stills/*.jpg` with `kind: images`) on the other machine.
"""
from __future__ import annotations

import argparse
import os
import sys

import av
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from restore.diffusion.data import load_sources  # noqa: E402
from restore.diffusion.trainconfig import load_train_config  # noqa: E402
from restore.metrics.psnr import mse, psnr_from_mse  # noqa: E402


def write_mp4(path: str, frames: np.ndarray, crf: int) -> float:
    """Encode (N,H,W,3) uint8 RGB; returns the PSNR of the decoded file against the input."""
    n, h, w, _ = frames.shape
    h2, w2 = h // 2 * 2, w // 2 * 2
    frames = frames[:, :h2, :w2]
    with av.open(path, "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = w2, h2, "yuv444p"
        st.options = {"crf": str(crf), "preset": "medium"}
        st.codec_context.color_range = 2  # full range: no 16-235 squeeze on the way through
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            vf.color_range = 2
            for p in st.encode(vf.reformat(format="yuv444p", dst_color_range=2)):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    with av.open(path) as inp:
        dec = np.stack([fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)])
    return psnr_from_mse(max(mse(dec, frames), 1e-12), 255.0)


def write_stills(src: dict, out_dir: str, quality: int, max_frames: int) -> int:
    import cv2

    os.makedirs(out_dir, exist_ok=True)
    size = 0
    for seq in load_sources([src], max_frames):
        path = os.path.join(out_dir, os.path.splitext(seq.name)[0] + ".jpg")
        cv2.imwrite(path, np.ascontiguousarray(seq.frames[0][..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        size += os.path.getsize(path)
    print(f"{out_dir}: stills, {size / 1e6:.1f} MB so far", flush=True)
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("out_dir")
    ap.add_argument("--crf", type=int, default=17)
    ap.add_argument("--stills", type=int, default=0, metavar="Q", help="also pack still images as JPEG at quality Q")
    args = ap.parse_args()
    cfg = load_train_config(args.config)
    os.makedirs(args.out_dir, exist_ok=True)
    total = 0
    for src in cfg.sources:
        if src.get("kind", "frames") == "images":
            if args.stills:
                total += write_stills(src, os.path.join(args.out_dir, "stills"), args.stills, cfg.max_frames_per_source)
            continue
        for seq in load_sources([src], cfg.max_frames_per_source):
            path = os.path.join(args.out_dir, os.path.splitext(seq.name)[0] + ".mp4")
            psnr = write_mp4(path, seq.frames, args.crf)
            size = os.path.getsize(path)
            total += size
            print(f"{path}: {len(seq.frames)} frames {seq.frames.shape[2]}x{seq.frames.shape[1]}, "
                  f"{size / 1e6:.2f} MB, {psnr:.2f} dB", flush=True)
    print(f"total {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
