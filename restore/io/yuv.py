"""decode_yuv(path, fmt, width, height) -> streaming iterator of YUVFrame: a video's own planes.

restore.io.decode hands out RGB, which is what restoration works on. Quality metrics of
compressed video (ffmpeg's psnr / ssim filters, VMAF) are defined on the decoded YUV code values
instead, and an RGB round trip would change them. This decodes once and gives both: the planes
in `fmt` at width x height (as decoded when the stream already is in that format and size,
otherwise through swscale bicubic, as ffmpeg's auto-inserted scaler does) and, when asked, the
RGB image of the same decoded frame, converted exactly as restore.io.decode converts it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from restore.errors import MediaError
from restore.io._av import bit_depth_of, ffmpeg_reason, first_video_stream, open_input, reformat

__all__ = ["YUVFrame", "decode_yuv", "PairFilter", "filter_available"]


def filter_available(name: str) -> bool:
    """Whether the FFmpeg libraries PyAV was built with have the filter `name`."""
    return name in av.filter.filters_available


@dataclass(slots=True)
class YUVFrame:
    planes: tuple[np.ndarray, ...]   # Y, U, V (or Y alone for grey): uint8 / uint16 code values
    rgb: np.ndarray | None           # (H, W, 3) uint8 / uint16 full scale, when asked for
    frame: object | None = None      # the av.VideoFrame the planes came from, when asked for


def _planes(frame) -> tuple[np.ndarray, ...]:
    wide = (bit_depth_of(frame.format.name) or 8) > 8
    dtype = np.dtype("<u2") if wide else np.dtype(np.uint8)
    out = []
    for p in frame.planes:
        a = np.frombuffer(memoryview(p), dtype=dtype).reshape(p.height, p.line_size // dtype.itemsize)
        # a view, not a copy: the memoryview holds the plane and so the frame's refcounted buffer,
        # which the decoder cannot recycle while we hold it (checked: views of a whole clip held
        # to the end equal copies taken at once). Read-only so no metric can alter a shared plane.
        a = a[:, :p.width]
        a.flags.writeable = False
        out.append(a)
    return tuple(out)


def decode_yuv(path, *, fmt: str, width: int, height: int, rgb: bool = False,
               rgb_native: bool = False, threads: bool = True, keep_frame: bool = False,
               planes: bool = True) -> Iterator[YUVFrame]:
    """Yield every frame of the first video stream as planes in `fmt` at width x height.

    rgb: also give the RGB image (rgb24, or rgb48le for > 8-bit sources). rgb_native: take it
    from the frame as decoded (its own size), not from the converted planes, so a caller that
    resizes RGB itself gets the same pixels as from restore.io.decode. keep_frame: attach the
    av.VideoFrame (in `fmt`, at width x height) for PairFilter. planes=False skips copying the
    planes out (for callers that only use the frame or the RGB).
    Errors (unreadable file, no video stream, damaged data) are MediaError naming the file.
    """
    p = Path(os.fspath(path))
    container = open_input(p)
    try:
        stream = first_video_stream(container)
        if stream is None:
            raise MediaError("no video stream", p)
        if threads:
            stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in container.decode(stream):
                native = frame
                if frame.format.name != fmt or frame.width != width or frame.height != height:
                    # an RGB reference to TV-range YUV, as ffmpeg measures it against an encode
                    frame = reformat(frame, fmt, width=width, height=height, interpolation="BICUBIC")
                image = None
                if rgb:
                    src = native if rgb_native else frame
                    deep = (bit_depth_of(src.format.name) or 8) > 8
                    image = src.to_ndarray(format="rgb48le" if deep else "rgb24")
                yield YUVFrame(_planes(frame) if planes else (), image, frame if keep_frame else None)
                index += 1
        except av.error.FFmpegError as err:
            raise MediaError(f"decoding failed after frame {index}: {ffmpeg_reason(err)}", p) from None
        if index == 0:
            raise MediaError("video stream has no decodable frame", p)
    finally:
        container.close()


class PairFilter:
    """A two-input libavfilter filter (ffmpeg's `ssim`, `psnr`, ...) run in-process on decoded
    frame pairs: the C/SIMD code ffmpeg's own command line runs, on frames decoded once here.

        f = PairFilter("ssim")
        for i, (dist, ref) in enumerate(pairs):     # av.VideoFrames, same format and size
            for index, meta in f.push(i, dist, ref): ...   # meta: the filter's frame metadata
        for index, meta in f.close(): ...

    The filter syncs its inputs on timestamps, so results can come out a frame late; each comes
    with the index it was pushed with. Input 0 is ffmpeg's "main" (distorted), 1 the reference.
    """

    def __init__(self, name: str, args: str | None = None):
        self.name, self.args = name, args
        self._graph = None
        self._tb = Fraction(1, 1000)

    def _build(self, frame):
        from av.filter import Graph

        g = Graph()
        kw = dict(width=frame.width, height=frame.height, format=frame.format.name, time_base=self._tb)
        self._srcs = (g.add_buffer(**kw), g.add_buffer(**kw))
        node = g.add(self.name, self.args) if self.args else g.add(self.name)
        self._sink = g.add("buffersink")
        self._srcs[0].link_to(node, 0, 0)
        self._srcs[1].link_to(node, 0, 1)
        node.link_to(self._sink)
        g.configure()
        self._graph = g

    def _drain(self):
        out = []
        while True:
            try:
                f = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return out
            out.append((int(f.pts), dict(f.metadata)))

    def push(self, index: int, main, ref) -> list[tuple[int, dict]]:
        if self._graph is None:
            self._build(ref)
        for src, f in zip(self._srcs, (main, ref)):
            f.pts, f.time_base = index, self._tb
            src.push(f)
        return self._drain()

    def close(self) -> list[tuple[int, dict]]:
        if self._graph is None:
            return []
        for src in self._srcs:
            src.push(None)
        return self._drain()
