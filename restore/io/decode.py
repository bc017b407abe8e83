"""decode(path) -> streaming iterator of VideoFrame (RGB numpy images with timestamps).

- Memory stays bounded: one packet is demuxed and its frames converted at a time (plus the
  decoder's own reorder/thread buffers); nothing collects the whole clip.
- image: (H, W, 3) uint8 RGB for 8-bit sources, uint16 full-scale RGB (rgb48le) for deeper
  sources. YUV->RGB uses the matrix and range the stream is tagged with (BT.601 when untagged,
  as FFmpeg does), so encoding back with the same tags round-trips without colour shifts.
- Frames come as stored: the rotation tag is *not* applied (VideoWriter writes it back).
- time: pts x time_base in seconds on the source clock; when a frame has no pts the previous
  time plus one nominal frame interval is used (pts is then None).
- Analysis mode: decode(path, size=(w, h), gray=True) returns small (h, w) uint8 grey
  thumbnails cheaply (one swscale call per frame, area averaging); `size` alone gives small
  RGB frames in the source's dtype.
- Interlaced sources: deinterlace="interlaced" passes the frames the decoder flags as
  interlaced through FFmpeg's bwdif (one output frame per input frame, timestamps and key-frame
  flags kept), "all" every frame; None (default) leaves the fields woven as stored.
- Damaged data: with strict=True (default) a decode error or a stream that ends far earlier
  than its headers promise (a truncated file) raises DamagedMediaError naming the file, after
  yielding the frames that did decode. strict=False skips the damaged packets and keeps what it
  can, and says once at the end what was lost (MediaWarning).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from restore.errors import DamagedMediaError, MediaError
from restore.io._av import bit_depth_of, ffmpeg_reason, first_video_stream, fraction, open_input, parse_hms

__all__ = ["VideoFrame", "decode"]



@dataclass(slots=True)
class VideoFrame:
    """One decoded frame. `time` in seconds on the source clock; `pts` in `time_base` units."""

    image: np.ndarray
    index: int
    time: float
    pts: int | None
    key: bool
    time_base: Fraction | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


def decode(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,
    gray: bool = False,
    max_frames: int | None = None,
    strict: bool = True,
    threads: bool = True,
    stream: int | None = None,
    deinterlace: str | None = None,
) -> Iterator[VideoFrame]:
    """Yield the frames of the first video stream (or stream `stream`, an absolute index).

    size: (width, height) to resize to (area averaging), e.g. (64, 36) thumbnails.
    gray: return (H, W) uint8 luma instead of RGB (for analysis passes).
    max_frames: stop after this many frames.
    strict: raise MediaError on damaged data (see module doc); False keeps going.
    threads: use FFmpeg frame/slice threading ("AUTO").
    deinterlace: None, "interlaced" (the frames flagged so) or "all" (see module doc).
    """
    if deinterlace not in (None, "interlaced", "all"):
        raise ValueError(f"deinterlace must be None, 'interlaced' or 'all', got {deinterlace!r}")
    p = Path(os.fspath(path))
    container = open_input(p)
    try:
        vstream = _pick_stream(container, stream, p)
        if threads:
            vstream.thread_type = "AUTO"
        yield from _iter_frames(container, vstream, p, size=size, gray=gray,
                                max_frames=max_frames, strict=strict, deinterlace=deinterlace)
    finally:
        container.close()


def _pick_stream(container, index, path):
    if index is None:
        s = first_video_stream(container)
        if s is None:
            raise MediaError("no video stream", path)
        return s
    for s in container.streams:
        if s.index == index:
            if s.type != "video":
                raise MediaError(f"stream {index} is {s.type}, not video", path)
            return s
    raise MediaError(f"no stream with index {index}", path)


def _expected_end(vstream, container) -> tuple[int | None, float | None]:
    frames = int(vstream.frames or 0) or None
    dur = None
    tb = fraction(vstream.time_base)
    if vstream.duration and tb:
        dur = float(vstream.duration * tb)
    else:  # Matroska: per-stream DURATION tag written by the muxer
        tag = next((v for k, v in dict(vstream.metadata).items() if k.upper().startswith("DURATION")), None)
        dur = parse_hms(tag)
    if dur is not None and vstream.start_time is not None and tb:
        dur += float(vstream.start_time * tb)
    return frames, dur


class _Deinterlacer:
    """FFmpeg's bwdif over decoded frames, one out per one in (mode send_frame, parity from the
    stream). The filter holds a frame back, drops the key-frame flag and doubles the time base:
    flags travel by the exact time of the frame."""

    def __init__(self, vstream, which: str):
        self.graph = av.filter.Graph()
        src = self.graph.add_buffer(template=vstream)
        bwdif = self.graph.add("bwdif", f"mode=send_frame:parity=auto:deint={which}")
        src.link_to(bwdif)
        bwdif.link_to(self.graph.add("buffersink"))
        self.graph.configure()
        self.keys: dict = {}

    def __call__(self, frame):
        """Push a frame (None at the end) and yield what comes out, as (frame, key)."""
        if frame is not None:
            self.keys[self._when(frame)] = bool(frame.key_frame)
        self.graph.push(frame)
        while True:
            try:
                out = self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            yield out, self.keys.pop(self._when(out), False)

    @staticmethod
    def _when(frame):
        return None if frame.pts is None or frame.time_base is None else frame.pts * frame.time_base


def _iter_frames(container, vstream, path, *, size, gray, max_frames, strict,
                 deinterlace=None) -> Iterator[VideoFrame]:
    fmt = None
    tb = fraction(vstream.time_base)
    rate = fraction(vstream.average_rate) or fraction(vstream.guessed_rate) or Fraction(25)
    step = float(1 / rate)
    index = 0
    last_time: float | None = None
    width = height = None
    if size is not None:
        width, height = int(size[0]), int(size[1])
        if width < 1 or height < 1:
            raise ValueError(f"decode size must be positive, got {size!r}")

    def convert(frame, key=None) -> VideoFrame:
        nonlocal fmt, last_time, index
        if fmt is None:
            fmt = "gray" if gray else ("rgb48le" if (bit_depth_of(frame.format.name) or 8) > 8 else "rgb24")
        if width is not None or gray:
            # one swscale pass does resize + colour conversion; AREA averages for thumbnails
            small = frame.reformat(width=width, height=height, format=fmt,
                                   interpolation="AREA" if width is not None else None)
            img = small.to_ndarray()
        else:
            img = frame.to_ndarray(format=fmt)
        ftb = fraction(frame.time_base) or tb
        if frame.pts is not None and ftb is not None:
            t = float(frame.pts * ftb)
            pts = int(frame.pts)
        else:
            t = 0.0 if last_time is None else last_time + step
            pts = None
        vf = VideoFrame(image=img, index=index, time=t, pts=pts,
                        key=bool(frame.key_frame) if key is None else key, time_base=ftb)
        last_time = t
        index += 1
        return vf

    deint = _Deinterlacer(vstream, deinterlace) if deinterlace else None

    def frames_of(decoded):
        if deint is None:
            for frame in decoded:
                yield frame, None
        else:
            for frame in decoded:
                yield from deint(frame)

    error: str | None = None
    rejected = 0
    skipped: list[str] = []   # where damaged packets were passed over (strict=False)
    try:
        # demux() ends with an empty packet that flushes the decoder's delayed frames
        for packet in container.demux(vstream):
            try:
                frames = vstream.decode(packet)
            except (av.error.InvalidDataError, av.error.UndefinedError) as err:
                at = (f"{float(packet.pts * packet.time_base):.2f} s" if packet.pts is not None
                      and packet.time_base else f"frame {index}")
                msg = f"corrupt video data near {at}: {ffmpeg_reason(err)}"
                if index == 0:
                    # before the first picture (a cut mid-GOP, junk at the start) keep looking;
                    # if nothing ever decodes the stream is reported as undecodable below
                    rejected += 1
                    continue
                if strict:
                    error = msg
                    break
                skipped.append(at)
                continue
            for frame, key in frames_of(frames):
                yield convert(frame, key)
                if max_frames is not None and index >= max_frames:
                    return
        if deint is not None:   # the frame the filter held back
            for frame, key in deint(None):
                yield convert(frame, key)
                if max_frames is not None and index >= max_frames:
                    return
    except av.error.FFmpegError as err:
        error = f"cannot read the file after frame {index}: {ffmpeg_reason(err)}"
        if not strict:
            _damage_warning(path, skipped, f"{error}; the rest of the file is lost")
            return
    if error is not None:
        raise DamagedMediaError(f"{error} (after {index} frames)", path)
    _damage_warning(path, skipped)
    if index == 0:
        detail = f" ({rejected} packets rejected by the decoder)" if rejected else ""
        raise MediaError(f"video stream has no decodable frame{detail}", path)
    frames_expected, end_expected = _expected_end(vstream, container)
    short = None
    if frames_expected and index < 0.9 * frames_expected - 2:
        short = f"only {index} of {frames_expected} frames could be decoded"
    # the last frame lasts about one frame period (1000 s at 0.001 fps): not missing data
    elif end_expected and last_time is not None and last_time + step + max(1.0, 0.1 * end_expected) < end_expected:
        short = f"video ends at {last_time:.2f}s but the file says {end_expected:.2f}s"
    if short:
        msg = f"file is truncated or damaged: {short}"
        if strict:
            raise DamagedMediaError(msg, path)
        _damage_warning(path, [], msg)


def _damage_warning(path, skipped: list[str], extra: str | None = None) -> None:
    """Say once what a lenient decode passed over."""
    from restore.io.mux import MediaWarning

    parts = []
    if skipped:
        parts.append(f"{len(skipped)} damaged video packet{'s' if len(skipped) > 1 else ''} skipped "
                     f"(near {', '.join(skipped[:3])}{', ...' if len(skipped) > 3 else ''}): "
                     "the frames they held are missing")
    if extra:
        parts.append(extra)
    if parts:
        warnings.warn(f"{path}: " + "; ".join(parts), MediaWarning, stacklevel=3)
