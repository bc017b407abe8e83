"""Encode ladders and bitrates, for `restore compare` (restore.metrics.ladder).

Encoding goes straight from the reference's decoded YUV frames to each encoder with PyAV (no RGB
round trip, which would cap every encode's quality at the round-trip's own PSNR), and one decode
feeds all encoders of the ladder at once.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av

from restore.errors import MediaError
from restore.io._av import reformat

__all__ = ["encode_many", "video_bitrate", "encoder_exists"]


def encoder_exists(codec: str) -> bool:
    """Does this FFmpeg build have an encoder called `codec` (any encoder, not only ENCODERS)?"""
    try:
        av.codec.Codec(codec, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several types for an unknown name
        return False
    return True


def encode_many(reference, jobs: list[tuple[str, int, Path]], *, preset: str = "medium") -> list[Path]:
    """Encode `reference` once per (codec, crf, path) job from a single decode; returns the paths."""
    ref = os.fspath(reference)
    try:
        src = av.open(ref)
    except (av.error.FFmpegError, OSError) as err:
        raise MediaError(f"cannot open: {getattr(err, 'strerror', None) or err}", ref) from err
    outs = []
    try:
        if not src.streams.video:
            raise MediaError("no video stream", ref)
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        rate = vin.average_rate or vin.base_rate or Fraction(25)
        cc = vin.codec_context
        pix_fmt = cc.pix_fmt if cc.pix_fmt in ("yuv420p", "yuv420p10le", "yuv422p", "yuv444p") else "yuv420p"
        paths = []
        for codec, crf, path in jobs:
            oc = av.open(str(path), "w")
            st = oc.add_stream(codec, rate=rate)
            st.width, st.height, st.pix_fmt = cc.width, cc.height, pix_fmt
            opts = {"crf": str(crf), "preset": preset}
            if codec == "libx265":
                opts["x265-params"] = "log-level=error"
            st.options = opts
            outs.append((oc, st))
            paths.append(path)
        for i, frame in enumerate(src.decode(vin)):
            if frame.format.name != pix_fmt:
                frame = reformat(frame, pix_fmt)  # an RGB master to TV-range YUV
            frame.pts, frame.time_base = i, 1 / Fraction(rate)
            for oc, st in outs:
                for pkt in st.encode(frame):
                    oc.mux(pkt)
        for oc, st in outs:
            for pkt in st.encode(None):
                oc.mux(pkt)
    finally:
        for oc, _ in outs:
            oc.close()
        src.close()
    return paths


def video_bitrate(path) -> tuple[float, float, str]:
    """(bits per second of the video stream, duration in seconds, codec name) from its packets."""
    path = os.fspath(path)
    try:
        c = av.open(path)
    except (av.error.FFmpegError, OSError) as err:
        raise MediaError(f"cannot open: {getattr(err, 'strerror', None) or err}", path) from err
    with c:
        if not c.streams.video:
            raise MediaError("no video stream", path)
        st = c.streams.video[0]
        total = n = 0
        first = last = None
        for pkt in c.demux(st):
            if pkt.size:
                total += pkt.size
                n += 1
                if pkt.pts is not None:
                    first = pkt.pts if first is None else min(first, pkt.pts)
                    last = pkt.pts if last is None else max(last, pkt.pts)
        rate = st.average_rate or st.base_rate
        if rate and n:
            duration = n / float(rate)
        elif first is not None and st.time_base:
            duration = float((last - first) * st.time_base)
        else:
            duration = 0.0
        if duration <= 0 or total == 0:
            raise MediaError("cannot determine the video bitrate (no packets or no duration)", path)
        return total * 8 / duration, duration, st.codec_context.name
