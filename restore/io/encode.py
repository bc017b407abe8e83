"""VideoWriter: encode RGB frames with the source's timestamps, colour tags and rotation, then
pass the source's audio / subtitle / attachment streams through (restore.io.mux).

    with VideoWriter("out.mp4", source="in.mp4", width=w, height=h, codec="libx264", crf=18,
                     preset="medium") as w:
        for f in decode("in.mp4"):
            w.write(f.image, f.time)

Design
- Timestamps: write(image, time) takes seconds on the source clock. The stream time base is
  fine enough to hold the source's ticks and in-between times exactly (1/lcm(source ticks,
  90000, 1/fps)), so a variable frame rate stays variable and a frame-rate multiplication just
  writes the in-between times. Matroska/WebM always store milliseconds.
- Colour: RGB -> YUV uses the output matrix and range; the matrix / primaries / transfer /
  range tags, the rotation (display matrix) and the sample aspect ratio come from the
  source's probe unless given explicitly. Untagged sources stay untagged (and are converted
  with FFmpeg's default BT.601 limited range, the same assumption decode() made).
- Pixel format: `pix_fmt`, or chosen from `bit_depth` (default: the source's, clamped to the codec):
  yuv420p / yuv420p10le (x265 also 12-bit), FFV1 stores planar RGB (bgr0, gbrp10le, gbrp12le,
  gbrp16le) so it is exactly lossless for our RGB frames. Odd sizes: 4:2:0 needs even width and
  height, so with an automatic pixel format the writer switches to 4:4:4 (yuv444p...) and keeps
  the exact size; an explicit 4:2:0 pix_fmt or an encoder without 4:4:4 (SVT-AV1) gives a
  ConfigError. Nothing is ever padded or cropped silently.
- Two stages: the video is encoded to a hidden temp file in the destination directory, then
  remuxed with the source's other streams into a second temp file that is atomically renamed
  to the final name: one transaction, restore.io.atomic.StagedOutput. On an exception every
  temp file is removed.
- Codec names, encoder speed presets, CRF ranges and containers are checked against the
  catalogue in restore.io.codecs.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from restore.errors import ConfigError, RestoreError
from restore.io._av import bit_depth_of, color_value, ffmpeg_reason, local_url
from restore.io.atomic import StagedOutput, check_output_path, write_error
from restore.io.codecs import container_refusal, format_for, resolve_codec, resolve_crf, resolve_encoder_preset
from restore.io.mux import MediaWarning, copy_container_metadata, remux
from restore.ops.frames import from_float

__all__ = ["VideoWriter"]

log = logging.getLogger(__name__)

def _subsampled(pix_fmt: str) -> tuple[bool, bool]:
    """(horizontal, vertical) chroma subsampling of a pixel format."""
    fmt = av.VideoFormat(pix_fmt, 4, 4)
    comps = [c for c in fmt.components if c.is_chroma]
    if not comps:
        return False, False
    return comps[0].width < 4, comps[0].height < 4


def _is_rgb(pix_fmt: str) -> bool:
    return bool(av.VideoFormat(pix_fmt).is_rgb)


def _choose_time_base(source_tb: Fraction | None, fps: Fraction | None) -> Fraction:
    """1/N with N a multiple of 90000, of the source's clock and of the frame period's
    denominator: source ticks, 1/fps steps and common in-between times are all exact."""
    den = 90000
    if source_tb:
        den = math.lcm(den, source_tb.denominator)
    if fps:
        den = math.lcm(den, fps.numerator)  # period = fps.denominator / fps.numerator
    if den > 1 << 22:  # absurd clocks: 1/90000 (11 us) is fine enough for any real rate
        den = 90000
    if fps:
        # MP4/MOV store a sample's duration in 32 bits: one frame period must fit (--fps 0.001
        # is 1000 s a frame). A very low rate drops the source clock, then 90 kHz.
        limit = (1 << 31) - 1
        for coarser in (math.lcm(90000, fps.numerator), fps.numerator):
            if den / fps <= limit:
                break
            den = coarser
    return Fraction(1, den)


# PQ (HDR10) and HLG, as colour tags name them
HDR_TRANSFERS = ("smpte2084", "arib-std-b67")


class VideoWriter:
    """Encode frames to `path` (see the module doc). Use as a context manager.

    source: input file (path or its MediaInfo is probed) whose timestamps clock, colour tags,
        rotation, sample aspect ratio, audio/subtitle/attachment streams, chapters and
        metadata carry over.
    width, height: frame size (None: taken from the first frame).
    codec: libx264 | libx265 | libsvtav1 | ffv1 (aliases h264, hevc, av1). crf, preset: rate
        control / speed (preset names of x264 for every codec; SVT-AV1 also takes 0..13).
    bit_depth: 8, 10 (12, 16 where the codec can); None: the source's depth, clamped to the
        deepest the codec stores (8 without a source).
    pix_fmt: explicit pixel format (overrides bit_depth), checked against the encoder.
    fps: nominal output rate (default: the source's); used for the codec's rate control and
        for write() calls without a time.
    copy_audio / copy_subtitles / copy_attachments: pass those streams of the source through.
    color_matrix / color_primaries / color_transfer / color_range / rotation /
        sample_aspect_ratio: override what the source says.
    options: extra encoder options (FFmpeg AVOptions, strings).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        source=None,
        width: int | None = None,
        height: int | None = None,
        codec: str = "libx264",
        crf: int | None = None,
        preset: str | int | None = "medium",
        bit_depth: int | None = None,
        pix_fmt: str | None = None,
        fps: float | Fraction | None = None,
        time_base: Fraction | None = None,
        copy_audio: bool = True,
        copy_subtitles: bool = True,
        copy_attachments: bool = True,
        overwrite: bool = False,
        color_matrix: str | None = None,
        color_primaries: str | None = None,
        color_transfer: str | None = None,
        color_range: str | None = None,
        rotation: float | None = None,
        sample_aspect_ratio: Fraction | None = None,
        options: dict | None = None,
    ):
        from restore.io.probe import MediaInfo, probe

        self.path = Path(os.fspath(path))
        self.spec = resolve_codec(codec)
        self.preset = resolve_encoder_preset(self.spec, preset)
        self.crf = resolve_crf(self.spec, crf)
        self.overwrite = overwrite
        self.copy_audio, self.copy_subtitles, self.copy_attachments = (
            bool(copy_audio), bool(copy_subtitles), bool(copy_attachments))
        self.options = {str(k): str(v) for k, v in (options or {}).items()}

        if isinstance(source, MediaInfo):
            self.source_info = source
        elif source is not None:
            self.source_info = probe(source)
        else:
            self.source_info = None
        self.source = None if self.source_info is None else Path(self.source_info.path)
        sv = self.source_info.video if self.source_info is not None else None

        check_output_path(self.path, overwrite=overwrite, input_path=self.source)
        self._check_container()

        # pixel format / bit depth (size-dependent checks happen when the size is known)
        if pix_fmt is not None:
            self._explicit_pix_fmt = True
            self.pix_fmt = self._check_pix_fmt(pix_fmt)
            self.bit_depth = bit_depth_of(self.pix_fmt) or 8
        else:
            self._explicit_pix_fmt = False
            # default: keep the source's depth (clamped below to what the codec can store)
            want = bit_depth if bit_depth is not None else (
                sv.bit_depth if sv and (sv.bit_depth or 8) > 8 else 8)
            try:
                want = int(want)
            except (TypeError, ValueError):
                raise ConfigError(f"bit_depth must be an integer, got {bit_depth!r}") from None
            if want not in self.spec.formats:
                if bit_depth is not None:
                    raise ConfigError(f"bit_depth {bit_depth} is not supported by {self.spec.name} "
                                      f"(choose from: {', '.join(map(str, self.spec.formats))})")
                want = max(d for d in self.spec.formats if d <= want) if any(
                    d <= want for d in self.spec.formats) else min(self.spec.formats)
            self.bit_depth = want
            self.pix_fmt = self.spec.formats[want]

        # colour tags: explicit > source > unspecified
        def pick(kind, explicit, from_source):
            value = explicit if explicit is not None else from_source
            try:
                return color_value(kind, value)
            except ValueError:
                raise ConfigError(f"unknown colour {kind} {value!r}") from None

        self.color_matrix = pick("matrix", color_matrix, sv.color_matrix if sv else None)
        self.color_primaries = pick("primaries", color_primaries, sv.color_primaries if sv else None)
        self.color_transfer = pick("transfer", color_transfer, sv.color_transfer if sv else None)
        self.color_range = pick("range", color_range, sv.color_range if sv else None)
        self.rotation = float(rotation if rotation is not None else (sv.rotation if sv else 0.0))
        self.sample_aspect_ratio = (Fraction(sample_aspect_ratio) if sample_aspect_ratio is not None
                                    else (sv.sample_aspect_ratio if sv else None))
        self.hdr_params = self._hdr_params(sv)

        if fps is not None:
            try:
                self.fps = Fraction(fps).limit_denominator(1001000)
                if self.fps <= 0:
                    raise ValueError
            except (TypeError, ValueError, ZeroDivisionError):
                raise ConfigError(f"fps must be a positive number, got {fps!r}") from None
        else:
            self.fps = (sv.frame_rate if sv and sv.frame_rate else None) or Fraction(25)
        self.time_base = (Fraction(time_base) if time_base is not None
                          else _choose_time_base(sv.time_base if sv else None, self.fps))

        self.width = None if width is None else int(width)
        self.height = None if height is None else int(height)
        if self.width is not None and self.height is not None:
            self._settle_size(self.width, self.height)

        self.frames_written = 0
        self.mux_report: list = []
        self._output: StagedOutput | None = None  # the output transaction, from the first frame
        self._out = None
        self._stream = None
        self._last_pts: int | None = None
        self._first_time: float | None = None
        self._last_time: float | None = None
        self._closed = False

    # -------------------------------------------------------------------------------- setup
    def _check_container(self) -> None:
        ext = self.path.suffix.lower()
        if not ext:
            raise ConfigError("output file needs an extension (.mp4, .mkv, .mov, .webm)", self.path)
        try:
            fmt = av.ContainerFormat(format_for(self.path), "w")
        except (ValueError, av.error.FFmpegError):
            raise ConfigError(f"unknown output container {ext!r} (use .mp4, .mkv, .mov or .webm)",
                              self.path) from None
        self.container_format = fmt.name
        refusal = container_refusal(self.spec.name, fmt.name)
        if refusal:
            raise ConfigError(refusal, self.path)

    def _check_pix_fmt(self, pix_fmt: str) -> str:
        supported = [f.name for f in (av.Codec(self.spec.name, "w").video_formats or [])]
        if pix_fmt not in supported:
            raise ConfigError(f"pix_fmt {pix_fmt!r} is not supported by {self.spec.name} "
                              f"(choose from: {', '.join(supported)})")
        return pix_fmt

    def _settle_size(self, width: int, height: int) -> None:
        if width < 1 or height < 1:
            raise ConfigError(f"invalid frame size {width}x{height}")
        sub_w, sub_h = _subsampled(self.pix_fmt)
        odd = (sub_w and width % 2) or (sub_h and height % 2)
        if odd:
            alt = self.spec.formats_444.get(self.bit_depth)
            if self._explicit_pix_fmt or alt is None:
                hint = (f"use pix_fmt {alt!r}" if alt else "use libx264 or ffv1")
                raise ConfigError(f"{self.pix_fmt} needs an even width and height but the frames "
                                  f"are {width}x{height}; {hint}")
            log.info("%dx%d is odd: using %s instead of %s to keep the exact size",
                     width, height, alt, self.pix_fmt)
            self.pix_fmt = alt
        self.width, self.height = width, height

    def _open(self, width: int, height: int) -> None:
        try:
            self._open_inner(width, height)
        except BaseException as err:
            self._abort(err)
            raise

    def _open_inner(self, width: int, height: int) -> None:
        self._settle_size(width, height)
        # the video goes to a stage file when the source's other streams are muxed in at close()
        self._output = StagedOutput(self.path, overwrite=self.overwrite, input_path=self.source,
                                    stage_tag="video-" if self._needs_remux() else None)
        target = self._output.stage_tmp or self._output.final_tmp
        try:
            self._out = av.open(local_url(target), "w", format=format_for(self.path))
        except (av.error.FFmpegError, OSError) as err:
            raise RestoreError(f"cannot write: {ffmpeg_reason(err)}", self.path) from None
        if self._output.stage_tmp is None:
            copy_container_metadata(self.source, self._out)
        s = self._out.add_stream(self.spec.name, rate=self.fps)
        s.width, s.height = self.width, self.height
        s.pix_fmt = self.pix_fmt
        s.time_base = self.time_base
        cc = s.codec_context
        cc.time_base = self.time_base
        cc.framerate = self.fps
        if self.sample_aspect_ratio:
            cc.sample_aspect_ratio = self.sample_aspect_ratio
        rgb = _is_rgb(self.pix_fmt)
        if rgb:
            cc.colorspace = 0  # AVCOL_SPC_RGB: no matrix for planar RGB
            cc.color_range = 2
        else:
            if self.color_matrix is not None:
                cc.colorspace = self.color_matrix
            if self.color_range is not None:
                cc.color_range = self.color_range
        if self.color_primaries is not None:
            cc.color_primaries = self.color_primaries
        if self.color_transfer is not None:
            cc.color_trc = self.color_transfer
        opts = self._encoder_options()
        cc.options = opts
        if self.spec.name == "ffv1":
            cc.gop_size = 1
        if self.rotation:
            s.set_display_rotation(self.rotation)
        self._stream = s

    def _hdr_params(self, sv) -> tuple[str, str] | None:
        """HDR10 static metadata of the source (mastering display, content light level) as the
        encoder's own parameters, when the output keeps the source's PQ / HLG transfer in 10 bits
        or more; libx264 and FFV1 cannot write it, which is said once (MediaWarning)."""
        if sv is None or not (sv.mastering_display or sv.content_light):
            return None
        if sv.color_transfer not in HDR_TRANSFERS or self.bit_depth < 10 \
                or self.color_transfer != color_value("transfer", sv.color_transfer):
            return None
        # encoder -> (its parameters key, mastering-display key, light-level key, how it writes
        # a chromaticity and a luminance: x265 in units of 1/50000 and 1/10000 cd/m2, SVT-AV1 plain)
        writers = {"libx265": ("x265-params", "master-display", "max-cll",
                               lambda v: str(round(v * 50000)), lambda v: str(round(v * 10000))),
                   "libsvtav1": ("svtav1-params", "mastering-display", "content-light",
                                 lambda v: f"{v:.5f}", lambda v: f"{v:.4f}")}
        if self.spec.name in writers:
            key, md_key, cll_key, xy, lum = writers[self.spec.name]
            md, cll = sv.mastering_display, sv.content_light
            parts = ["hdr10=1"] if self.spec.name == "libx265" else []
            if md:
                parts.append(f"{md_key}=" + "".join(
                    f"{tag}({xy(md[k][0])},{xy(md[k][1])})"
                    for tag, k in (("G", "green"), ("B", "blue"), ("R", "red"), ("WP", "white")))
                    + f"L({lum(md['max_luminance'])},{lum(md['min_luminance'])})")
            if cll:
                parts.append(f"{cll_key}={cll[0]},{cll[1]}")
            return key, ":".join(parts)
        warnings.warn(f"{self.source}: its HDR10 mastering-display / light-level metadata cannot be "
                      f"written by {self.spec.name}; use --codec libx265 or libsvtav1 to keep it",
                      MediaWarning, stacklevel=3)
        return None

    def _needs_remux(self) -> bool:
        info = self.source_info
        if info is None:
            return False
        for st in info.streams:
            if st.type == "audio" and self.copy_audio:
                return True
            if st.type == "subtitle" and self.copy_subtitles:
                return True
            if st.type == "attachment" and self.copy_attachments:
                return True
            if st.tags.get("timecode"):   # the start timecode goes on the video in remux
                return True
        return bool(info.chapters) or bool(info.tags.get("timecode"))

    def _encoder_options(self) -> dict:
        opts: dict[str, str] = {}
        name = self.spec.name
        if self.crf is not None:
            opts["crf"] = str(self.crf)
        if self.preset is not None:
            opts["preset"] = self.preset
        if name == "libx265":
            opts["x265-params"] = "log-level=error"
        if self.hdr_params:   # joined to what the encoder's own parameters already say
            key, value = self.hdr_params
            opts[key] = ":".join(filter(None, (opts.get(key), value)))
        if name == "ffv1":
            opts.update({"level": "3", "slicecrc": "1"})
        if name == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only; SVT prints a banner otherwise
        opts.update(self.options)
        return opts

    # -------------------------------------------------------------------------------- writing
    def write(self, image: np.ndarray, time: float | None = None) -> None:
        """Encode one RGB frame (H, W, 3) uint8 / uint16 (or float in [0, 1]) shown at `time`
        seconds on the source clock (default: frame number / fps). Times must increase."""
        if self._closed:
            raise RuntimeError("VideoWriter is closed")
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
        if arr.dtype.kind == "f":
            arr = from_float(arr, np.uint16 if self.bit_depth > 8 else np.uint8)
        if arr.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"expected uint8, uint16 or float image, got {arr.dtype}")
        h, w = arr.shape[:2]
        if self._out is None:
            self._open(self.width or w, self.height or h)
        if (w, h) != (self.width, self.height):
            raise ValueError(f"frame {self.frames_written} is {w}x{h}, the writer expects "
                             f"{self.width}x{self.height}")
        if time is None:
            time = float(self.frames_written / self.fps)
        pts = int(round(Fraction(float(time)) / self.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            if pts == self._last_pts and float(time) > float(self._last_pts * self.time_base) - 1e-9:
                pts = self._last_pts + 1  # two distinct times rounded onto one tick
            else:
                raise ValueError(f"frame times must increase: {time!r} after "
                                 f"{float(self._last_pts * self.time_base)!r}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr),
                                           format="rgb48le" if arr.dtype == np.uint16 else "rgb24")
        if _is_rgb(self.pix_fmt):
            out = frame.reformat(format=self.pix_fmt)
        else:
            # RGB is full range; YUV gets the output matrix and range (tv when unspecified)
            out = frame.reformat(format=self.pix_fmt, dst_colorspace=self.color_matrix,
                                 dst_color_range=self.color_range or 1)
            if self.color_range is None:
                out.color_range = 0
        out.pts = pts
        out.time_base = self.time_base
        self._encode(out)
        self._last_pts = pts
        t = float(pts * self.time_base)
        self._first_time = t if self._first_time is None else self._first_time
        self._last_time = t
        self.frames_written += 1

    def _encode(self, frame) -> None:
        try:
            packets = self._stream.encode(frame)
        except (av.error.FFmpegError, ValueError) as err:
            where = "could not start" if self.frames_written == 0 else "failed"
            hint = ("; frames this small may be below the encoder's minimum (libx264 and ffv1 "
                    "take any size)") if min(self.width, self.height) < 64 else ""
            raise ConfigError(f"{self.spec.name} {where} for {self.width}x{self.height} "
                              f"{self.pix_fmt}: {ffmpeg_reason(err)}{hint}", self.path) from None
        try:
            for p in packets:
                self._out.mux(p)
        except (av.error.FFmpegError, OSError) as err:
            self._abort(err)
            raise write_error(err, self.path) from None

    # -------------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Flush, mux the source's other streams and rename into place."""
        if self._closed:
            return
        self._closed = True
        if self._out is None:
            raise RestoreError("no frames were written", self.path)
        try:
            self._encode(None)
            try:
                self._out.close()
            except (av.error.FFmpegError, OSError) as err:
                raise write_error(err, self.path) from None
            self._out = None
            if self._output.stage_tmp is not None:
                start, end = self._written_range_if_partial()
                self.mux_report = remux(
                    self._output.stage_tmp, self.source, self._output.final_tmp,
                    copy_audio=self.copy_audio, copy_subtitles=self.copy_subtitles,
                    copy_attachments=self.copy_attachments, rotation=self.rotation,
                    start=start, end=end)
        except RestoreError as err:
            self._abort(err)
            # name the file the user asked for, not our hidden temp file
            raise type(err)(err.message, self.path) from None
        except BaseException as err:
            self._abort(err)
            raise
        output, self._output = self._output, None
        output.commit()  # atomic rename, temp video removed

    def _written_range_if_partial(self) -> tuple[float | None, float | None]:
        """(start, end) seconds to trim the passthrough streams to, when the frames written
        cover only part of the source video (a preview); (None, None) for a full encode, so
        audio that runs past the video is kept as in the source."""
        sv = self.source_info.video if self.source_info is not None else None
        if sv is None or self._first_time is None or self._last_time is None:
            return None, None
        period = float(1 / (sv.frame_rate or self.fps))
        src_first = sv.first_frame_time if sv.first_frame_time is not None else (sv.start_time or 0.0)
        start = end = None
        if self._first_time > src_first + 1.5 * period:
            start = self._first_time
        if sv.duration:
            src_last = (sv.start_time or 0.0) + sv.duration - period
            if self._last_time < src_last - 1.5 * period:
                end = self._last_time + period
        return start, end

    def _abort(self, err: BaseException | None = None) -> None:
        self._closed = True
        if self._out is not None:
            with contextlib.suppress(Exception):
                self._out.close()
            self._out = None
        if self._output is not None:
            output, self._output = self._output, None
            with contextlib.suppress(BaseException):
                output.abort(err)

    def abort(self) -> None:
        """Give up: remove every temp file, leave nothing under the final name."""
        self._abort()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._abort(exc)
            return False
        self.close()
        return False

    def __del__(self):  # a writer dropped without close() must not leave temp files
        if getattr(self, "_output", None) is not None and not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self._abort()
