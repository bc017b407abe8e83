"""Encode frames with a real codec and decode them back: compression damage exactly as a player
shows it, for training data and tests (in memory, or to a Matroska file for a bank of encodes;
no ffmpeg binary)."""
from __future__ import annotations

import io

import av
import numpy as np

# MPEG-2 and MPEG-4 Part 2 have no CRF: they are driven by bitrate, as old encodes were.
CRF_CODECS = ("libx264", "libx265")
BITRATE_CODECS = ("mpeg2video", "mpeg4")


def encode(frames: np.ndarray, codec: str, dest, *, crf: int | None = None, bitrate: int | None = None,
           fps: int = 25, pix_fmt: str = "yuv420p") -> None:
    """(T, H, W, 3) uint8 RGB (even H, W) -> Matroska in `dest` (a path or a binary file object),
    `codec` at `crf` (x264 / x265) or `bitrate` (bit/s; MPEG-2 / MPEG-4 Part 2)."""
    h, w = frames.shape[1:3]
    opts: dict[str, str] = {}
    # One thread, no x265 thread pool: with frame threading the bits depend on timing, and a
    # degradation must be a function of its seed (training data reproducible from the config).
    if codec in CRF_CODECS:
        opts = {"crf": str(int(crf if crf is not None else 23)), "preset": "veryfast", "threads": "1"}
        if codec == "libx265":
            opts["x265-params"] = "log-level=none:pools=none:frame-threads=1"
    elif codec in BITRATE_CODECS:
        opts = {"b": str(int(bitrate or 1_000_000))}
    else:
        raise ValueError(f"codec {codec!r}: expected one of {', '.join(CRF_CODECS + BITRATE_CODECS)}")
    with av.open(dest, "w", format="matroska") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.options = opts
        stream.thread_count = 1
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())


def encode_decode(frames: np.ndarray, codec: str, *, crf: int | None = None, bitrate: int | None = None,
                  fps: int = 25, pix_fmt: str = "yuv420p") -> np.ndarray:
    """(T, H, W, 3) uint8 RGB (even H, W) -> the same frames after `codec` at `crf` or `bitrate` (bit/s)."""
    buf = io.BytesIO()
    encode(frames, codec, buf, crf=crf, bitrate=bitrate, fps=fps, pix_fmt=pix_fmt)
    buf.seek(0)
    with av.open(buf) as inp:
        decoded = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    if len(decoded) != len(frames):
        raise RuntimeError(f"{codec}: {len(frames)} frames in, {len(decoded)} out")
    return np.stack(decoded)
