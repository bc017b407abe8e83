"""Encode ladders and measure bitrates for `restore compare`.

Encoding goes straight from the reference's decoded YUV frames to each encoder with PyAV (no RGB
round trip, which would cap every encode's quality at the round-trip's own PSNR), and one decode
feeds all encoders of the ladder at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import ConfigError, MediaError

_CODEC_EXT = {"libx264": ".mp4", "libx265": ".mp4", "libsvtav1": ".mkv", "libvpx-vp9": ".mkv", "libaom-av1": ".mkv"}


@dataclass
class EncodeSpec:
    codec: str
    crf: int

    @property
    def label(self) -> str:
        return self.codec


def parse_encode(text: str) -> list[EncodeSpec]:
    """'libx264:18,23,28,33' -> four EncodeSpecs."""
    codec, sep, values = text.partition(":")
    codec = codec.strip()
    if not sep or not codec or not values.strip():
        raise ConfigError(f"--encode {text!r}: expected CODEC:CRF,CRF,... e.g. libx264:18,23,28,33")
    try:
        crfs = [int(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--encode {text!r}: CRF values must be integers") from None
    import av

    try:
        av.codec.Codec(codec, "w")
    except Exception:
        raise ConfigError(f"--encode {text!r}: encoder {codec!r} is not available in this FFmpeg build") from None
    return [EncodeSpec(codec, c) for c in crfs]


def encode_ladder(reference, specs: list[EncodeSpec], out_dir, *, preset: str = "medium") -> list[Path]:
    """Encode `reference` once per spec into out_dir; returns the output paths in spec order."""
    import av

    ref = os.fspath(reference)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(ref).stem
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
        for spec in specs:
            path = out_dir / f"{stem}_{spec.codec}_crf{spec.crf}{_CODEC_EXT.get(spec.codec, '.mkv')}"
            oc = av.open(str(path), "w")
            st = oc.add_stream(spec.codec, rate=rate)
            st.width, st.height, st.pix_fmt = cc.width, cc.height, pix_fmt
            opts = {"crf": str(spec.crf), "preset": preset}
            if spec.codec == "libx265":
                opts["x265-params"] = "log-level=error"
            st.options = opts
            outs.append((oc, st))
            paths.append(path)
        for i, frame in enumerate(src.decode(vin)):
            if frame.format.name != pix_fmt:
                frame = frame.reformat(format=pix_fmt)
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
    import av

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
