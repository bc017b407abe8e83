"""Stream passthrough: remux an encoded video with the other streams of its source.

remux(video, source, out) writes `out` with the video stream of `video` plus, from `source`:
audio, subtitle and attachment streams, chapters and container metadata.

- Copied packets keep their bytes and timestamps (pts/dts in seconds are unchanged), so audio
  stays in sync with video that VideoWriter wrote on the source clock.
- Packets of the video and of the source are interleaved by time while reading both files
  once, so memory stays bounded whatever the length.
- When the output container cannot hold a stream it is converted or dropped, with a warning
  (warnings.warn(MediaWarning) and the log): PCM audio (or anything the muxer rejects) into
  MP4/MOV -> AAC (Opus for WebM); text subtitles -> mov_text (MP4/MOV), SubRip (MKV) or WebVTT
  (WebM); bitmap subtitles into MP4 -> dropped; attachments (fonts) outside Matroska ->
  dropped; a timecode track -> its start timecode set on the output's video stream (MOV and
  MP4 then write a timecode track of their own, Matroska a tag); other data streams (GPS ...)
  -> dropped.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from restore.errors import MediaError, RestoreError
from restore.io._av import ffmpeg_reason, first_video_stream, local_url, open_input
from restore.io.atomic import write_error
from restore.io.codecs import format_for

__all__ = ["remux", "MediaWarning", "MuxAction", "copy_container_metadata", "copy_stream_tags"]

log = logging.getLogger(__name__)

TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
_MP4_FAMILY = {"mp4", "mov", "ipod", "3gp", "3g2", "psp"}
_SKIP_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}
_SKIP_STREAM_TAGS = {"encoder", "duration", "vendor_id"}


_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1",
                    8: "7.1"}


class MediaWarning(UserWarning):
    """A stream of the source could not be carried over as is (converted or dropped)."""


@dataclass
class MuxAction:
    """What happened to one source stream: action is 'copy', 'convert' or 'drop'."""

    index: int
    type: str
    codec: str | None
    action: str
    detail: str = ""

    def to_dict(self) -> dict:
        return dict(index=self.index, type=self.type, codec=self.codec, action=self.action,
                    detail=self.detail)


def _warn(msg: str) -> None:
    log.warning(msg)
    warnings.warn(msg, MediaWarning, stacklevel=3)


def _shown(container) -> str:
    """The file a container reads, as the user named it (local_url's file: prefix off)."""
    name = str(container.name)
    return name[5:] if name.startswith("file:") else name


def _timecode(src) -> str | None:
    """The start timecode of the source ("01:00:00:00"): a timecode track's or stream's tag, or
    the container's."""
    for s in src.streams:
        tc = dict(s.metadata).get("timecode")
        if tc:
            return tc
    return dict(src.metadata).get("timecode")


def _muxer_accepts(out, codec_name: str) -> bool:
    try:
        return codec_name in out.supported_codecs
    except Exception:  # noqa: BLE001 - be permissive, the muxer will tell us
        return True


def _audio_target(fmt: str) -> str | None:
    if fmt in _MP4_FAMILY or fmt in ("matroska", "avi", "nut"):
        return "aac"
    if fmt == "webm":
        return "libopus" if "libopus" in av.codecs_available else None
    return "aac"


def _subtitle_target(fmt: str) -> str | None:
    if fmt in _MP4_FAMILY:
        return "mov_text"
    if fmt == "matroska":
        return "subrip"
    if fmt == "webm":
        return "webvtt"
    return None


def copy_container_metadata(source, out) -> None:
    """Container tags (title, comment, creation_time...) and chapters of `source` onto `out`."""
    if source is None:
        return
    try:
        with av.open(local_url(source)) as src:
            _copy_meta_and_chapters(src, out)
    except (av.error.FFmpegError, OSError) as err:  # cosmetic: never fail the encode for it
        log.info("could not copy metadata from %s: %s", source, err)


def _copy_meta_and_chapters(src, out) -> None:
    for k, v in dict(src.metadata).items():
        if k.lower() not in _SKIP_TAGS and not k.upper().startswith("_STATISTICS"):
            out.metadata[k] = v
    try:
        chapters = src.chapters()
        if chapters:
            out.set_chapters(chapters)
    except Exception as err:  # noqa: BLE001 - PyAV raises several types; the encode goes on
        _warn(f"{_shown(src)}: chapters not carried over ({err})")


def copy_stream_tags(src_stream, out_stream) -> None:
    for k, v in dict(src_stream.metadata).items():
        key = k.lower()
        if key in _SKIP_STREAM_TAGS or key.startswith("duration") or key.startswith("number_of") \
                or key.startswith("_statistics") or key in ("bps",) or key.startswith("bps-"):
            continue
        out_stream.metadata[k] = v
    try:
        out_stream.disposition = src_stream.disposition
    except Exception as err:  # noqa: BLE001
        _warn(f"stream #{src_stream.index}: disposition flags (default, forced...) not carried over ({err})")


class _Copy:
    def __init__(self, src_stream, out_stream):
        self.src, self.out = src_stream, out_stream

    def handle(self, packet):
        packet.stream = self.out
        yield packet

    def flush(self):
        return iter(())


class _AudioConvert:
    def __init__(self, src_stream, out, codec: str):
        cc = src_stream.codec_context
        self.src = src_stream
        self.out = out.add_stream(codec, rate=cc.sample_rate or 48000)
        channels = max(1, cc.channels or 2)
        # "2 channels" (unordered, common for PCM in MKV/WAV) is not a layout AAC accepts
        name = cc.layout.name if cc.layout is not None else ""
        if not name or "channels" in name:
            name = _DEFAULT_LAYOUTS.get(channels, "stereo")
        try:
            self.out.layout = name
        except Exception as err:  # noqa: BLE001
            _warn(f"audio stream #{src_stream.index}: channel layout {name!r} not set, the encoder's "
                  f"default is used ({err})")
        self.out.bit_rate = min(96000 * channels, 512000) if codec == "aac" else 64000 * channels
        self.out.time_base = Fraction(1, cc.sample_rate or 48000)

    def _encode(self, frames):
        for frame in frames:
            for p in self.out.encode(frame):
                yield p

    def handle(self, packet):
        try:
            frames = self.src.decode(packet)
        except av.error.FFmpegError as err:
            log.warning("audio packet pts=%s not decodable (%s): skipped", packet.pts, err)
            return
        yield from self._encode(frames)

    def flush(self):
        with contextlib.suppress(av.error.FFmpegError):
            yield from self._encode(self.src.decode(None))
        yield from self.out.encode(None)


class _SubtitleConvert:
    def __init__(self, src_stream, out, codec: str):
        self.src = src_stream
        self.out = out.add_stream(codec)
        self.out.time_base = src_stream.time_base
        # text subtitle encoders need the ASS header when the muxer opens them (before any
        # packet): the source's decoder makes one when opened
        header = None
        try:
            src_stream.codec_context.open(strict=False)
            header = src_stream.codec_context.subtitle_header
        except Exception as err:  # noqa: BLE001
            _warn(f"subtitle stream #{src_stream.index}: its style header could not be read ({err}); "
                  "a default style is used")
        self.out.codec_context.subtitle_header = header or _DEFAULT_ASS_HEADER

    def handle(self, packet):
        if packet.size == 0:
            return
        subs = self.src.codec_context.decode2(packet)
        if subs is None:
            return
        q = self.out.codec_context.encode_subtitle(subs)
        q.stream = self.out
        q.pts, q.dts, q.duration = packet.pts, packet.dts, packet.duration
        q.time_base = packet.time_base
        yield q

    def flush(self):
        return iter(())


_DEFAULT_ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\nPlayResX: 384\nPlayResY: 288\n\n[V4+ Styles]\n"
    b"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
    b"BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
    b"BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n"
    b"Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0"
    b"\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, "
    b"Text\n")


def _plan(src, out, fmt: str, *, copy_audio, copy_subtitles, copy_attachments):
    """Decide per source stream: copy, convert or drop. Returns (handlers, actions)."""
    handlers: dict[int, object] = {}
    actions: list[MuxAction] = []
    vsrc = first_video_stream(src)
    for s in src.streams:
        codec = s.codec_context.name if s.codec_context is not None else None
        act = MuxAction(s.index, s.type, codec, "drop")
        actions.append(act)
        if s.type == "video":
            if vsrc is not None and s.index == vsrc.index:
                act.action, act.detail = "replace", "re-encoded video"
            else:
                act.detail = "extra video stream (cover art or alternate angle) not carried over"
                _warn(f"{_shown(src)}: video stream #{s.index} ({codec}) not carried over")
            continue
        if s.type == "audio":
            if not copy_audio:
                act.detail = "audio copy turned off"
                continue
            if codec and not (fmt in ("mp4", "ipod") and codec.startswith("pcm_")) \
                    and _muxer_accepts(out, codec):
                o = out.add_stream_from_template(s)
                copy_stream_tags(s, o)
                handlers[s.index] = _Copy(s, o)
                act.action = "copy"
                continue
            target = _audio_target(fmt)
            if target is None or codec is None:
                act.detail = f"{fmt} cannot hold {codec} audio"
                _warn(f"{_shown(src)}: audio stream #{s.index} ({codec}) dropped: {act.detail}")
                continue
            h = _AudioConvert(s, out, target)
            copy_stream_tags(s, h.out)
            handlers[s.index] = h
            act.action, act.detail = "convert", f"{codec} -> {target} ({fmt} cannot hold {codec})"
            _warn(f"{_shown(src)}: audio stream #{s.index} converted {act.detail}")
        elif s.type == "subtitle":
            if not copy_subtitles:
                act.detail = "subtitle copy turned off"
                continue
            if codec and _muxer_accepts(out, codec) and not (fmt == "matroska" and codec == "mov_text"):
                o = out.add_stream_from_template(s)
                copy_stream_tags(s, o)
                handlers[s.index] = _Copy(s, o)
                act.action = "copy"
                continue
            target = _subtitle_target(fmt)
            if codec in TEXT_SUBTITLES and target and target in av.codecs_available:
                h = _SubtitleConvert(s, out, target)
                copy_stream_tags(s, h.out)
                handlers[s.index] = h
                act.action, act.detail = "convert", f"{codec} -> {target}"
                if fmt != "matroska":
                    _warn(f"{_shown(src)}: subtitle stream #{s.index} converted {codec} -> {target} "
                          f"({fmt} cannot hold {codec}; styling may be simplified)")
                continue
            act.detail = f"{fmt} cannot hold {codec} subtitles"
            _warn(f"{_shown(src)}: subtitle stream #{s.index} ({codec}) dropped: {act.detail}")
        elif s.type == "attachment":
            if not copy_attachments:
                act.detail = "attachment copy turned off"
                continue
            name = s.metadata.get("filename") or f"attachment{s.index}"
            if fmt != "matroska":
                act.detail = f"{fmt} cannot hold attachments"
                _warn(f"{_shown(src)}: attachment #{s.index} ({name}) dropped: {act.detail}")
                continue
            mimetype = s.metadata.get("mimetype") or getattr(s, "mimetype", None) \
                or "application/octet-stream"
            out.add_attachment(name=name, mimetype=mimetype, data=bytes(s.data))
            act.action, act.detail = "copy", name
        else:  # data / unknown
            codec = codec or getattr(s, "codec_tag", None) or "unknown"
            tc = dict(s.metadata).get("timecode")
            if tc:  # a timecode track: its start goes on the output's video (remux)
                act.action, act.detail = "convert", f"start timecode {tc} kept on the video stream"
                continue
            act.detail = f"{s.type} stream not carried over"
            _warn(f"{_shown(src)}: {s.type} stream #{s.index} ({codec}) dropped")
    return handlers, actions


def _timed(packets, seq):
    """(seconds, tie-breaker, packet) for heapq.merge; missing timestamps keep the last time."""
    last = float("-inf")
    for p in packets:
        ts = p.dts if p.dts is not None else p.pts
        if ts is not None and p.time_base is not None:
            last = float(ts * p.time_base)
        yield (last, seq, next(_counter), p)


_counter = itertools.count()


def _video_packets(vin, vstream, vout):
    for p in vin.demux(vstream):
        if p.size == 0 and p.dts is None:
            continue
        p.stream = vout
        yield p


def _inside(p, start, end) -> bool:
    """Does packet p overlap [start, end] seconds (None: open)? Untimed packets are kept."""
    if p.pts is None or p.time_base is None:
        return True
    t0 = float(p.pts * p.time_base)
    t1 = t0 + float((p.duration or 0) * p.time_base)
    return (start is None or t1 >= start) and (end is None or t0 <= end)


def _source_packets(src, handlers, start=None, end=None):
    streams = [src.streams[i] for i in sorted(handlers) if src.streams[i].type != "attachment"]
    if streams:
        for p in src.demux(*streams):
            if p.size == 0 and p.dts is None and p.pts is None:
                continue
            if not _inside(p, start, end):
                continue
            h = handlers.get(p.stream_index)
            if h is not None:
                yield from h.handle(p)
    for i in sorted(handlers):
        yield from handlers[i].flush()


def remux(
    video: str | os.PathLike,
    source: str | os.PathLike | None,
    out_path: str | os.PathLike,
    *,
    copy_audio: bool = True,
    copy_subtitles: bool = True,
    copy_attachments: bool = True,
    rotation: float | None = None,
    start: float | None = None,
    end: float | None = None,
) -> list[MuxAction]:
    """Write `out_path` = video stream of `video` + the other streams of `source`.

    start / end (seconds on the source clock): keep only source packets overlapping this
    range, for outputs that cover part of the source (previews); None keeps everything.
    Writes `out_path` directly (callers wrap it in atomic_output). Returns what happened to each
    source stream; conversions and drops are also reported as MediaWarning."""
    video, out_path = Path(os.fspath(video)), Path(os.fspath(out_path))

    with contextlib.ExitStack() as stack:
        vin = stack.enter_context(open_input(video))
        vstream = first_video_stream(vin)
        if vstream is None:
            raise MediaError("no video stream to mux", video)
        src = stack.enter_context(open_input(source)) if source is not None else None
        try:
            out = stack.enter_context(av.open(local_url(out_path), "w", format=format_for(out_path)))
        except (av.error.FFmpegError, OSError) as err:
            raise RestoreError(f"cannot write: {ffmpeg_reason(err)}", out_path) from None
        fmt = out.format.name
        # opaque: reuse the decoder's description; a decoder-only codec (libdav1d) has no
        # encoder to build a fresh context from, and we only copy packets anyway
        vout = out.add_stream_from_template(vstream, opaque=True)
        vout.time_base = vstream.time_base
        if rotation:
            vout.set_display_rotation(float(rotation))
        handlers, actions = {}, []
        if src is not None:
            _copy_meta_and_chapters(src, out)
            handlers, actions = _plan(src, out, fmt, copy_audio=copy_audio,
                                      copy_subtitles=copy_subtitles,
                                      copy_attachments=copy_attachments)
            tc = _timecode(src)
            if tc and start is None:   # a part of the source (a preview) does not start there
                vout.metadata["timecode"] = tc
                if vstream.average_rate:   # MOV's timecode track counts frames: it needs the rate
                    vout.rate = vstream.average_rate
        streams = [_timed(_video_packets(vin, vstream, vout), 0)]
        if src is not None and handlers:
            streams.append(_timed(_source_packets(src, handlers, start, end), 1))
        try:
            for _, _, _, packet in heapq.merge(*streams):
                out.mux(packet)
        except av.error.FFmpegError as err:
            if isinstance(err, OSError):   # the disk, not the streams
                raise write_error(err, out_path) from None
            raise MediaError(f"muxing failed: {ffmpeg_reason(err)}", out_path) from None
    return actions
