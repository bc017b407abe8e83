"""probe(path) -> MediaInfo: what a media file holds, read with PyAV.

What probe guarantees (with the default require_video=True):
- the file opens, has a video stream (cover art / attached pictures do not count) and its
  first frame decodes; otherwise MediaError with one line naming the file;
- MP4/MOV-style indexes are checked against the file size, so a file cut short after its
  index (moov atom at the start) is reported as truncated here instead of silently yielding
  half the frames later. A file cut short *before* its index (moov at the end) cannot be
  opened at all. Containers without a complete index (MKV, WebM, TS) cannot be checked here;
  decode() raises MediaError at the end if far fewer frames arrive than the headers promise.

Conventions:
- rotation is the display-matrix rotation in degrees counter-clockwise, as ffprobe prints it
  (an old-style `rotate=90` tag, which means clockwise, is reported as -90), in (-180, 180].
- colour tags use FFmpeg's names ("bt709", "bt2020nc", "smpte2084", "tv", "pc"); None means
  the file does not say.
- is_vfr looks at the first `vfr_packets` (default 300) packet timestamps: the timestamps are
  variable when an interval differs from the median interval by more than 1.5 ticks and 2 %.
- frame_count is None when the container does not store it (MKV, WebM, most TS).
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from statistics import median

import av

from restore.errors import MediaError
from restore.io._av import (
    bit_depth_of,
    color_name,
    first_video_stream,
    fraction,
    open_input,
    parse_hms,
)
from restore.ops.jsonsafe import json_safe

__all__ = ["probe", "MediaInfo", "StreamInfo", "VideoStreamInfo"]

# Tags that describe the old file, not the stream content; never worth showing or copying.
_STAT_TAG = re.compile(r"^(DURATION|NUMBER_OF_FRAMES|NUMBER_OF_BYTES|BPS|_STATISTICS_.*)(-\w+)?$")


@dataclass(kw_only=True)
class StreamInfo:
    """One stream of any type (video, audio, subtitle, data, attachment)."""

    index: int
    type: str
    codec: str | None = None
    codec_long_name: str | None = None
    profile: str | None = None
    time_base: Fraction | None = None
    start_time: float | None = None
    duration: float | None = None
    bit_rate: int | None = None
    language: str | None = None
    title: str | None = None
    disposition: list[str] = field(default_factory=list)
    # audio
    sample_rate: int | None = None
    channels: int | None = None
    channel_layout: str | None = None
    sample_format: str | None = None
    # attachment
    filename: str | None = None
    mimetype: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able dict (Fractions as "num/den" strings)."""
        return {f.name: json_safe(getattr(self, f.name)) for f in fields(self)}


@dataclass(kw_only=True)
class VideoStreamInfo(StreamInfo):
    """A video stream: geometry, rates, colour and timing facts the pipeline relies on."""

    type: str = "video"
    pix_fmt: str | None = None
    bit_depth: int | None = None
    width: int = 0
    height: int = 0
    sample_aspect_ratio: Fraction | None = None
    rotation: float = 0.0
    avg_frame_rate: Fraction | None = None
    real_frame_rate: Fraction | None = None
    is_vfr: bool = False
    frame_count: int | None = None
    color_matrix: str | None = None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_range: str | None = None
    field_order: str | None = None
    first_frame_time: float | None = None
    # HDR10 static metadata of the first frame: {"red": (x, y), "green", "blue", "white": CIE 1931
    # xy, "max_luminance", "min_luminance": cd/m2}, and (MaxCLL, MaxFALL) in cd/m2
    mastering_display: dict | None = None
    content_light: tuple[int, int] | None = None

    @property
    def frame_rate(self) -> Fraction | None:
        """Best nominal rate: the real (base) rate, else the average; None when unknown."""
        return self.real_frame_rate or self.avg_frame_rate

    @property
    def estimated_frames(self) -> int | None:
        """frame_count, or duration x average rate when the container does not store it."""
        if self.frame_count:
            return self.frame_count
        rate = self.avg_frame_rate or self.real_frame_rate
        if self.duration and rate:
            return max(1, int(round(self.duration * float(rate))))
        return None

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown: sample aspect ratio applied, then rotation."""
        w, h = self.width, self.height
        sar = self.sample_aspect_ratio
        if sar and sar != 1:
            w = int(round(w * sar))
        if round(abs(self.rotation)) % 180 == 90:
            w, h = h, w
        return w, h

    def to_dict(self) -> dict:
        d = super().to_dict()
        rate = self.frame_rate
        d["fps"] = None if rate is None else float(rate)
        d["estimated_frames"] = self.estimated_frames
        d["display_width"], d["display_height"] = self.display_size
        return d


@dataclass(kw_only=True)
class MediaInfo:
    """Everything probe() found in a file. `video` is the first video stream (or None)."""

    path: str
    container: str
    container_long_name: str | None = None
    duration: float | None = None
    start_time: float | None = None
    bit_rate: int | None = None
    size: int = 0
    streams: list[StreamInfo] = field(default_factory=list)
    chapters: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    video_index: int | None = None

    @property
    def video(self) -> VideoStreamInfo | None:
        if self.video_index is None:
            return None
        for s in self.streams:
            if s.index == self.video_index:
                return s  # type: ignore[return-value]
        return None

    def streams_of(self, kind: str) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == kind]

    @property
    def audio(self) -> list[StreamInfo]:
        return self.streams_of("audio")

    @property
    def subtitles(self) -> list[StreamInfo]:
        return self.streams_of("subtitle")

    @property
    def attachments(self) -> list[StreamInfo]:
        return self.streams_of("attachment")

    def to_dict(self) -> dict:
        d = {f.name: json_safe(getattr(self, f.name)) for f in fields(self) if f.name != "streams"}
        d["streams"] = [s.to_dict() for s in self.streams]
        return d

    def to_json(self, **kwargs) -> str:
        kwargs.setdefault("indent", 2)
        return json.dumps(self.to_dict(), **kwargs)


# ------------------------------------------------------------------------------------------
def probe(
    path: str | os.PathLike,
    *,
    require_video: bool = True,
    check_decode: bool = True,
    vfr_packets: int = 300,
) -> MediaInfo:
    """Describe a media file. Raises MediaError (one line naming the file) on bad input.

    require_video: raise "no video stream" for audio-only files (set False to describe them).
    check_decode: decode the first video frame (raises if none decodes; also reads rotation
        and colour tags carried only in the bitstream).
    vfr_packets: how many video packets to read for the VFR check (0 disables it).
    """
    p = Path(os.fspath(path))
    with open_input(p) as container:
        size = p.stat().st_size
        streams = [_stream_info(s) for s in container.streams]
        vstream = first_video_stream(container)
        fmt = container.format
        info = MediaInfo(
            path=str(p),
            container=fmt.name,
            container_long_name=fmt.long_name,
            duration=(container.duration / av.time_base) if container.duration else None,
            start_time=(container.start_time / av.time_base) if container.start_time else 0.0,
            bit_rate=container.bit_rate or None,
            size=size,
            streams=streams,
            chapters=_count_chapters(container),
            tags={k: v for k, v in dict(container.metadata).items() if not _STAT_TAG.match(k)},
            video_index=None if vstream is None else vstream.index,
        )
        if vstream is None:
            if require_video:
                kinds = sorted({s.type for s in streams})
                what = f"only {', '.join(kinds)}" if kinds else "no streams at all"
                raise MediaError(f"no video stream ({what})", p)
            return info
        _check_index_against_size(container, size, p)
        if vfr_packets or check_decode:
            _scan_video(container, vstream, info.video, p, vfr_packets, check_decode)
    return info


def _count_chapters(container) -> int:
    try:
        return len(container.chapters())
    except Exception:  # noqa: BLE001 - older PyAV has no chapters(); a count is cosmetic
        return 0


def _stream_info(s) -> StreamInfo:
    tb = fraction(s.time_base)
    meta = dict(s.metadata)
    cc = s.codec_context
    duration = None
    if s.duration and tb:
        duration = float(s.duration * tb)
    else:  # Matroska keeps per-stream durations only as a DURATION tag ("00:00:04.000000000")
        tag = next((v for k, v in meta.items() if k.upper().startswith("DURATION")), None)
        duration = parse_hms(tag)
    disp = int(getattr(s, "disposition", 0) or 0)
    common = dict(
        index=s.index,
        codec=cc.name if cc is not None else None,
        codec_long_name=(cc.codec.long_name if cc is not None else None),
        profile=getattr(s, "profile", None),
        time_base=tb,
        start_time=float(s.start_time * tb) if (s.start_time is not None and tb) else None,
        duration=duration,
        bit_rate=(cc.bit_rate if cc is not None and cc.bit_rate else None),
        language=meta.get("language") if meta.get("language") not in (None, "und") else None,
        title=meta.get("title"),
        disposition=[d.name for d in av.stream.Disposition if d.value and disp & d.value],
        tags={k: v for k, v in meta.items() if not _STAT_TAG.match(k)},
    )
    if s.type == "video":
        ccv = cc
        pix_fmt = ccv.format.name if ccv.format is not None else None
        frames = int(s.frames or 0)
        rotation = 0.0
        rotate_tag = next((v for k, v in meta.items() if k.lower() == "rotate"), None)
        if rotate_tag is not None:  # legacy tag, clockwise degrees
            try:
                rotation = _norm_angle(-float(rotate_tag))
            except ValueError:
                pass
        try:
            field_order = ccv.field_order
        except Exception:  # noqa: BLE001 - attribute missing in some PyAV builds
            field_order = None
        return VideoStreamInfo(
            **common,
            pix_fmt=pix_fmt,
            bit_depth=bit_depth_of(pix_fmt),
            width=ccv.width,
            height=ccv.height,
            sample_aspect_ratio=fraction(s.sample_aspect_ratio or ccv.sample_aspect_ratio),
            rotation=rotation,
            avg_frame_rate=fraction(s.average_rate),
            real_frame_rate=fraction(s.base_rate) or fraction(s.guessed_rate),
            frame_count=frames if frames > 0 else None,
            color_matrix=color_name("matrix", ccv.colorspace),
            color_primaries=color_name("primaries", ccv.color_primaries),
            color_transfer=color_name("transfer", ccv.color_trc),
            color_range=color_name("range", ccv.color_range),
            field_order=_FIELD_ORDER.get(field_order, field_order if isinstance(field_order, str) else None),
        )
    info = StreamInfo(type=s.type, **common)
    if s.type == "audio" and cc is not None:
        info.sample_rate = cc.sample_rate or None
        info.channels = cc.channels or None
        info.channel_layout = cc.layout.name if cc.layout is not None else None
        info.sample_format = cc.format.name if cc.format is not None else None
    elif s.type == "attachment":
        info.filename = meta.get("filename")
        info.mimetype = meta.get("mimetype") or getattr(s, "mimetype", None)
    return info


# AVFieldOrder; "progressive" vs the interlaced variants (top/bottom field first)
_FIELD_ORDER = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}


def _norm_angle(deg: float) -> float:
    deg = math.fmod(deg, 360.0)
    if deg <= -180.0:
        deg += 360.0
    elif deg > 180.0:
        deg -= 360.0
    return deg + 0.0  # no -0.0


def _check_index_against_size(container, size: int, path: Path) -> None:
    """An index entry pointing past the end of the file means the file was cut short."""
    for s in container.streams:
        try:
            entries = s.index_entries
            n = len(entries)
        except Exception:  # noqa: BLE001 - streams without an index
            continue
        if not n:
            continue
        # the entries are in time order, not file order (interleaving): check them all
        end = max(e.pos + max(e.size, 0) for e in entries)
        if end > size:
            pct = 100.0 * size / end if end else 0.0
            raise MediaError(
                f"file is truncated: its index expects {end} bytes but the file has {size} "
                f"({pct:.0f}%); re-download or re-export it", path)


def _scan_video(container, vstream, vinfo: VideoStreamInfo, path: Path, max_packets: int,
                check_decode: bool) -> None:
    """One pass over the first packets: timestamps for VFR, first decodable frame."""
    pts: list[int] = []
    first = None
    errors = 0
    n = 0
    limit = max(max_packets, 1)
    try:
        for packet in container.demux(vstream):
            if packet.size == 0 and packet.pts is None:  # flush marker at EOF
                break
            n += 1
            if packet.pts is not None and len(pts) < max_packets:
                pts.append(packet.pts)
            if check_decode and first is None:
                try:
                    frames = vstream.decode(packet)
                    if frames:
                        first = frames[0]
                except (av.error.InvalidDataError, av.error.UndefinedError, ValueError):
                    errors += 1
            if n >= limit and (first is not None or not check_decode):
                break
            if first is None and n >= limit + 1000:  # a broken stream: give up looking
                break
    except av.error.FFmpegError as err:
        # demuxing the very first packets failed: the file is damaged right at the start
        if first is None and check_decode:
            raise MediaError(f"cannot read video packets: {_reason(err)}", path) from None
    if check_decode and first is None:
        try:
            frames = vstream.decode(None)
            first = frames[0] if frames else None
        except av.error.FFmpegError:
            first = None
    if check_decode and first is None:
        detail = f" ({errors} packets rejected by the {vinfo.codec} decoder)" if errors else ""
        raise MediaError(f"video stream has no decodable frame{detail}", path)

    if first is not None:
        try:
            rot = first.rotation
        except Exception:  # noqa: BLE001 - no display matrix side data support
            rot = 0
        if rot:
            vinfo.rotation = _norm_angle(float(rot))
        # the bitstream (SPS/VUI) may say what the container did not
        vinfo.color_matrix = vinfo.color_matrix or color_name("matrix", first.colorspace)
        vinfo.color_range = vinfo.color_range or color_name("range", first.color_range)
        vinfo.color_primaries = vinfo.color_primaries or color_name("primaries", first.color_primaries)
        vinfo.color_transfer = vinfo.color_transfer or color_name("transfer", first.color_trc)
        if first.time is not None:
            vinfo.first_frame_time = float(first.time)
        vinfo.mastering_display, vinfo.content_light = hdr_metadata(first)
        if vinfo.pix_fmt is None and first.format is not None:
            vinfo.pix_fmt = first.format.name
            vinfo.bit_depth = bit_depth_of(vinfo.pix_fmt)
    vinfo.is_vfr = _is_vfr(pts)


def hdr_metadata(frame) -> tuple[dict | None, tuple[int, int] | None]:
    """HDR10 static metadata from a decoded frame's side data: FFmpeg's AVMasteringDisplayMetadata
    (display primaries R, G, B and white point as xy rationals, then max and min luminance, then
    two has_* flags) and AVContentLightMetadata (MaxCLL, MaxFALL)."""
    mastering = light = None
    try:
        entries = list(frame.side_data)
    except Exception:  # noqa: BLE001 - a PyAV without side data access: no metadata
        return None, None
    for sd in entries:
        kind = str(getattr(sd, "type", ""))
        raw = bytes(sd)
        if kind.endswith("MASTERING_DISPLAY_METADATA") and len(raw) >= 88:
            r = struct.unpack("<20i2i", raw[:88])
            q = [r[i] / r[i + 1] if r[i + 1] else 0.0 for i in range(0, 20, 2)]
            if r[20] and r[21]:   # has_primaries and has_luminance
                mastering = {"red": (q[0], q[1]), "green": (q[2], q[3]), "blue": (q[4], q[5]),
                             "white": (q[6], q[7]), "min_luminance": q[8], "max_luminance": q[9]}
        elif kind.endswith("CONTENT_LIGHT_LEVEL") and len(raw) >= 8:
            light = tuple(struct.unpack("<2I", raw[:8]))
    return mastering, light


def _reason(err: BaseException) -> str:
    from restore.io._av import ffmpeg_reason

    return ffmpeg_reason(err)


def _is_vfr(pts: list[int]) -> bool:
    if len(pts) < 3:
        return False
    ts = sorted(pts)  # packets come in decode order; B-frames reorder presentation times
    deltas = [b - a for a, b in zip(ts, ts[1:]) if b > a]
    if len(deltas) < 2:
        return False
    m = median(deltas)
    tol = max(1.5, 0.02 * m)
    return any(abs(d - m) > tol for d in deltas)
