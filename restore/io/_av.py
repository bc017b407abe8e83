"""Small shared helpers around PyAV: opening files with one-line errors, colour tag names.

Kept private to restore.io; the public surface is probe / decode / VideoWriter / atomic_output.
"""
from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

import av

from restore.errors import MediaError

# FFmpeg's names for the colour enums (libavutil/pixdesc.c), the same strings ffprobe prints.
# Index = the AVColor* integer value. Unspecified values map to None in our API.
_MATRIX = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
           8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
           13: "chroma-derived-c", 14: "ictcp", 15: "ipt-c2", 16: "ycgco-re", 17: "ycgco-ro"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
              9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
_TRANSFER = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
_RANGE = {1: "tv", 2: "pc"}

_TABLES = {"matrix": _MATRIX, "primaries": _PRIMARIES, "transfer": _TRANSFER, "range": _RANGE}
# Common aliases people type (and ffmpeg CLI accepts).
_ALIASES = {
    "matrix": {"rgb": 0, "bt2020ncl": 9, "bt2020_ncl": 9, "bt2020cl": 10, "bt2020_cl": 10,
               "bt601": 6, "smpte170": 6},
    "primaries": {"bt601": 6, "jedec-p22": 22, "p3": 12, "display-p3": 12, "dci-p3": 11},
    "transfer": {"srgb": 13, "pq": 16, "hlg": 18, "gamma22": 4, "gamma28": 5, "bt601": 6},
    "range": {"mpeg": 1, "limited": 1, "jpeg": 2, "full": 2},
}


def color_name(kind: str, value) -> str | None:
    """FFmpeg name of an AVColor* value; None when unspecified/unknown/reserved."""
    if value is None:
        return None
    try:
        return _TABLES[kind].get(int(value))
    except (TypeError, ValueError):
        return None


def color_value(kind: str, name) -> int | None:
    """AVColor* integer for a name (or int); None for None/'unknown'/'unspecified'.

    Raises ValueError for a name FFmpeg does not know (callers turn it into ConfigError)."""
    if name is None:
        return None
    if isinstance(name, int):
        return name
    key = str(name).strip().lower()
    if key in ("", "unknown", "unspecified", "none"):
        return None
    for value, text in _TABLES[kind].items():
        if text == key:
            return value
    if key in _ALIASES[kind]:
        return _ALIASES[kind][key]
    raise ValueError(f"unknown colour {kind} {name!r}")


def bit_depth_of(pix_fmt: str | None) -> int | None:
    """Bits per component of a pixel format (max over components), e.g. yuv420p10le -> 10."""
    if not pix_fmt:
        return None
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return None
    bits = [c.bits for c in fmt.components if not c.is_alpha]
    return max(bits) if bits else None


def reformat(frame, format: str, **kwargs):
    """frame.reformat(format=..., **kwargs), with RGB to YUV going to TV range, untagged. RGB is
    full range, and ffmpeg tags it "pc"; left to that tag swscale makes full-range YUV, which an
    encoder sends untagged and every reader (ours, ffmpeg's psnr) takes for TV range: 2-4 dB off
    on an RGB master. ffmpeg's own scale filter converts the same way as this."""
    if frame.format.is_rgb and not av.VideoFormat(format).is_rgb:
        out = frame.reformat(format=format, dst_color_range=1, **kwargs)
        out.color_range = 0
        return out
    return frame.reformat(format=format, **kwargs)


def fraction(value) -> Fraction | None:
    """A positive Fraction, or None for 0, 0/0, None (FFmpeg's 'unknown' rates)."""
    if value is None:
        return None
    try:
        f = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return f if f > 0 else None


def check_input_file(path) -> Path:
    """Fail early, with a precise message, on paths FFmpeg would only call 'invalid data'."""
    p = Path(os.fspath(path))
    if not p.exists():
        raise MediaError("no such file", p)
    if p.is_dir():
        raise MediaError("is a directory, not a video file", p)
    if not p.is_file():
        raise MediaError("is not a regular file", p)
    if not os.access(p, os.R_OK):
        raise MediaError("permission denied (cannot read the file)", p)
    if p.stat().st_size == 0:
        raise MediaError("file is empty (0 bytes)", p)
    return p


def ffmpeg_reason(err: BaseException) -> str:
    """The human part of a PyAV/FFmpeg error, without errno noise or the repeated path."""
    text = getattr(err, "strerror", None) or str(err)
    text = str(text).split(";")[0].strip().rstrip(":").strip()
    return text or type(err).__name__


def local_url(path) -> str:
    """What to hand av.open for a local path. FFmpeg reads a name as a URL when it starts with
    a protocol (`pipe:0` is stdin, `file:x.mp4` is x.mp4, `concat:a|b` ...), so a file really
    called that would be misread; the explicit file protocol with an absolute path never is."""
    return "file:" + os.path.abspath(os.fspath(path))


def open_input(path, **kwargs):
    """av.open for reading; any failure becomes one MediaError line naming the file."""
    p = check_input_file(path)
    try:
        return av.open(local_url(p), "r", **kwargs)
    except av.error.InvalidDataError:
        raise MediaError(
            "not a readable media file (invalid data: wrong format, corrupt, or truncated "
            "before the index)", p) from None
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise MediaError(f"cannot open: {ffmpeg_reason(err)}", p) from None


def first_video_stream(container):
    """The first real video stream (skips cover art / attached pictures), or None."""
    for s in container.streams.video:
        disp = int(getattr(s, "disposition", 0) or 0)
        if disp & int(av.stream.Disposition.attached_pic):
            continue
        return s
    return None


def parse_hms(text) -> float | None:
    """Seconds of an "H:MM:SS.fff" duration tag (Matroska's DURATION); None if absent or malformed."""
    if not text:
        return None
    m = re.match(r"^\s*(\d+):(\d+):(\d+(?:\.\d+)?)\s*$", str(text))
    if not m:
        return None
    h, mnt, sec = m.groups()
    return int(h) * 3600 + int(mnt) * 60 + float(sec)
