"""Frame sources for scoring: decoded once, streamed, bounded memory.

Two kinds of frames are needed:
- RGB (restore.io.decode, the project's decoder) for RGB / BT.601-Y PSNR, SSIM, LPIPS, E_warp;
- the source's own YUV planes for ffmpeg-style per-plane PSNR and VMAF (restore.io.yuv), which
  converts to RGB from the same decoded frame only when a metric needs it, so a file is still
  decoded once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ..errors import MediaError


@dataclass
class SourceInfo:
    path: str
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    frame_count: int | None
    duration: float | None
    fps: float | None
    color_transfer: str | None = None
    color_primaries: str | None = None
    color_matrix: str | None = None


def probe_video(path) -> SourceInfo:
    """restore.io.probe, narrowed to what scoring needs; no video stream is a MediaError."""
    from restore.io import probe

    path = os.fspath(path)
    # vfr_packets=0: scoring pairs frames by index and never uses the VFR flag, so the probe
    # need not read the first 300 packets; the first frame is still decoded (bitstream colour tags)
    info = probe(path, vfr_packets=0)
    v = info.video
    if v is None:
        raise MediaError("no video stream", path)
    fps = v.avg_frame_rate or v.real_frame_rate
    return SourceInfo(path, v.width, v.height, v.pix_fmt, v.bit_depth or 8, v.frame_count,
                      float(v.duration) if v.duration else None, float(fps) if fps else None,
                      v.color_transfer, v.color_primaries, v.color_matrix)


def rgb_frames(path) -> Iterator[np.ndarray]:
    """RGB frames (uint8, or uint16 full scale for >8-bit sources) from restore.io.decode."""
    from restore.io import decode

    for f in decode(path):
        yield f.image


# Planar YUV / grey formats whose planes we read directly; anything else (RGB, packed, semi-planar
# such as nv12) is converted to the matching planar YUV before measuring, as ffmpeg would.
_PLANAR_YUV = ("yuv420p", "yuv422p", "yuv444p", "yuv440p", "yuv411p", "yuv410p",
               "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "gray", "gray10le", "gray12le", "gray16le")


def planar_format(pix_fmt: str) -> str:
    """The planar format we measure a source in: itself if planar YUV, otherwise the closest one."""
    if pix_fmt in _PLANAR_YUV:
        return pix_fmt
    for depth in ("10", "12", "16"):
        for sub in ("420", "422", "444"):
            if pix_fmt in (f"yuv{sub}p{depth}le",):
                return pix_fmt
    if pix_fmt in ("nv12", "nv21"):
        return "yuv420p"
    if pix_fmt in ("p010le", "p016le"):
        return "yuv420p10le"
    if pix_fmt.startswith(("gbrp1", "rgb48", "bgr48", "rgba64")):
        return "yuv444p16le"
    return "yuv444p"


def format_bits(pix_fmt: str) -> int:
    for depth in (16, 14, 12, 10, 9):
        if f"p{depth}" in pix_fmt or pix_fmt.startswith(f"gray{depth}"):
            return depth
    return 8


def yuv_frames(path, *, fmt: str, width: int, height: int, want_rgb: bool = False,
               rgb_native: bool = False, threads: bool = True, keep_frame: bool = False):
    """Decode `path` once (restore.io.yuv), yielding its planes in `fmt` at width x height.

    Frames already in that format and size are used as decoded (bit-exact code values, as
    ffmpeg's psnr filter sees them); others go through swscale (bicubic), like ffmpeg's auto-scale.
    """
    from restore.io.yuv import decode_yuv

    return decode_yuv(path, fmt=fmt, width=width, height=height, rgb=want_rgb, rgb_native=rgb_native,
                      threads=threads, keep_frame=keep_frame)


def prefetch(it: Iterator, depth: int = 3) -> Iterator:
    """Run `it` (a decoder) in a background thread, `depth` items ahead, so decoding overlaps the
    metric maths (FFmpeg and OpenCV release the GIL). Memory stays bounded by `depth` frames;
    errors are re-raised in the consumer; an abandoned consumer stops the thread."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as err:  # handed to the consumer, which raises it
            q.put((done, err))
        finally:
            close = getattr(it, "close", None)
            if stop.is_set() and close is not None:
                close()

    thread = threading.Thread(target=produce, name="restore-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, err = q.get()
            if item is done:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
