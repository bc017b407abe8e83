"""Write tests/data/deblock/sample_x264_crf37.mkv: the bundled sample clip (data/sample.mp4),
frames 0-7 cropped to CROP, encoded with x264 at CRF 37 (preset medium, one thread, yuv420p).

The test that the shipped deblock model raises PSNR decodes that file and compares it with the same
crop of data/sample.mp4's frames (the reference). The encode is bundled rather than made by the
test so the test does not depend on the installed x264 version.

    python scripts/make_deblock_testclip.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAMES = 8
CROP = (112, 240, 96, 288)   # y0, y1, x0, x1: the rabbit, grass and rocks (textured, moving)
CRF = 37
OUT = ROOT / "tests" / "data" / "deblock" / f"sample_x264_crf{CRF}.mkv"


def reference() -> np.ndarray:
    """The clean frames the test compares against: uint8 (FRAMES, h, w, 3)."""
    from restore.io import decode

    y0, y1, x0, x1 = CROP
    frames = []
    for f in decode(ROOT / "data" / "sample.mp4"):
        frames.append(f.image[y0:y1, x0:x1])
        if len(frames) == FRAMES:
            break
    return np.ascontiguousarray(np.stack(frames))


def main() -> None:
    import av

    ref = reference()
    t, h, w, _ = ref.shape
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(OUT), "w") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.thread_count = 1
        st.options = {"crf": str(CRF), "preset": "medium", "threads": "1"}
        for f in ref:
            out.mux(st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(st.encode())
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
