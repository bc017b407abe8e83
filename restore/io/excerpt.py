"""cut(src, dest, start, seconds): a stretch of a media file by stream copy, for previews.

No re-encode: the excerpt's video is the source's own packets, so it decodes to exactly the
source's frames, with its codec, colour tags, bit depth and quantisers (what `--deblock auto`
reads) intact; audio and subtitle packets of the same stretch come along.

- Start: the video key frame at or before `start` (a stretch must begin where decoding can),
  found in one demux pass from the beginning (no decoding, and no reliance on container seeking,
  which some formats do not support).
- End: video packets in decode order until the first one shown at or after start + seconds (or
  key frame + seconds with `from_key`, for a stretch of exactly that length anywhere). The
  packets kept are a prefix of the stream in decode order, so every reference frame a kept frame
  needs is kept too, and the frames shown are a gap-free run.
- Timestamps are moved so the stretch starts at zero: by the key frame's decode time, so no
  timestamp becomes negative; audio and subtitle packets before it are dropped.
- Leading frames of an open GOP (shown before the key frame, predicted from the GOP before it)
  cannot be decoded without what was cut off, and are dropped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av

from restore.errors import MediaError, RestoreError
from restore.io._av import ffmpeg_reason, first_video_stream, local_url, open_input
from restore.io.codecs import CONTAINERS
from restore.io.mux import copy_stream_tags

__all__ = ["Excerpt", "cut"]

_COPIED = ("video", "audio", "subtitle")


@dataclass
class Excerpt:
    path: str
    start: float     # where the stretch starts on the source clock (its first key frame)
    end: float       # where it ends on the source clock (the asked end, or the video's end before it)
    frames: int      # video packets kept (about the frames the excerpt decodes to)


def _time(packet, ts) -> float | None:
    return None if ts is None or packet.time_base is None else float(ts * packet.time_base)


def cut(src, dest, start: float, seconds: float, *, from_key: bool = False,
        rotation: float = 0.0) -> Excerpt:
    """Copy [start, start + seconds) of `src`, from the key frame at or before `start`, into
    `dest` (its extension picks the container: the source's own can hold all of its streams);
    from_key: [key frame, key frame + seconds) instead, without the lead-in. rotation:
    the source's display rotation in degrees (MediaInfo's), written back on the excerpt's video.
    If the container refuses the other streams, the excerpt is written with the video alone."""
    src, dest = Path(os.fspath(src)), Path(os.fspath(dest))
    start, seconds = float(start), float(seconds)
    if seconds <= 0:
        raise ValueError(f"an excerpt needs a positive length, got {seconds!r}")
    key_pts = _key_before(src, start)
    try:
        return _copy(src, dest, key_pts, None if from_key else start + seconds, seconds, rotation, False)
    except av.error.FFmpegError:
        return _copy(src, dest, key_pts, None if from_key else start + seconds, seconds, rotation, True)


def _key_before(src: Path, start: float):
    """pts of the last video key frame at or before `start` (the first one if none is)."""
    with open_input(src) as inp:
        v = first_video_stream(inp)
        if v is None:
            raise MediaError("no video stream", src)
        key_pts = None
        for p in inp.demux(v):
            t = _time(p, p.pts)
            if t is None:
                continue
            if t > start + 1e-6 and key_pts is not None:
                break
            if p.is_keyframe and (key_pts is None or t <= start + 1e-6):
                key_pts = p.pts
    if key_pts is None:
        raise MediaError("no key frame to start an excerpt from", src)
    return key_pts


def _copy(src: Path, dest: Path, key_pts, until: float | None, seconds: float, rotation: float,
          video_only: bool) -> Excerpt:
    """until: source time where the stretch ends (None: `seconds` after the key frame)."""
    # from the top again: containers differ in whether (and how exactly) they can seek
    with open_input(src) as inp:
        v = first_video_stream(inp)
        streams = [s for s in inp.streams if s.index == v.index
                   or (not video_only and s.type in _COPIED and s.type != "video")]
        try:
            out = av.open(local_url(dest), "w", format=CONTAINERS.get(dest.suffix.lower()))
        except (av.error.FFmpegError, OSError, ValueError) as err:
            raise RestoreError(f"cannot write: {ffmpeg_reason(err)}", dest) from None
        with out:
            outs = {}
            for s in streams:
                o = out.add_stream_from_template(s, opaque=True)
                o.time_base = s.time_base
                copy_stream_tags(s, o)   # not the source's durations: they would not be the excerpt's
                outs[s.index] = o
            if rotation:
                outs[v.index].set_display_rotation(float(rotation))
            offset = first = end_time = None   # offset: seconds taken off every timestamp
            done = False
            kept = 0
            last_end = None   # end of the latest kept video frame (pts + duration)
            for p in inp.demux(*streams):
                if p.size == 0 and p.pts is None and p.dts is None:
                    continue
                t = _time(p, p.pts)
                if p.stream_index == v.index:
                    if done or (offset is None and p.pts != key_pts):
                        continue
                    if offset is None:
                        first = t
                        dts = _time(p, p.dts)
                        offset = min(first, dts) if dts is not None else first
                        until = first + seconds if until is None else max(until, first + 1e-3)
                    if t is not None and t < first - 1e-6:
                        continue   # a leading frame of an open GOP
                    if t is not None and t >= until - 1e-6:
                        done, end_time = True, t
                        continue
                    kept += 1
                    if t is not None:
                        t_end = t + (float(p.duration * p.time_base) if p.duration else 0.0)
                        last_end = t_end if last_end is None else max(last_end, t_end)
                elif offset is None or done or t is None or t < offset or t >= until:
                    continue
                shift = round(offset / p.time_base)
                p.pts = None if p.pts is None else p.pts - shift
                p.dts = None if p.dts is None else p.dts - shift
                p.stream = outs[p.stream_index]
                out.mux(p)
    if kept == 0:
        raise MediaError("no video frames to copy after the key frame", src)
    end = min(until, end_time if end_time is not None else last_end if last_end is not None else until)
    return Excerpt(path=str(dest), start=first, end=end, frames=kept)
