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
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from restore.errors import MediaError
from restore.io._av import bit_depth_of, ffmpeg_reason, first_video_stream, open_input

__all__ = ["YUVFrame", "decode_yuv"]


@dataclass(slots=True)
class YUVFrame:
    planes: tuple[np.ndarray, ...]   # Y, U, V (or Y alone for grey): uint8 / uint16 code values
    rgb: np.ndarray | None           # (H, W, 3) uint8 / uint16 full scale, when asked for


def _planes(frame) -> tuple[np.ndarray, ...]:
    wide = (bit_depth_of(frame.format.name) or 8) > 8
    dtype = np.dtype("<u2") if wide else np.dtype(np.uint8)
    out = []
    for p in frame.planes:
        a = np.frombuffer(memoryview(p), dtype=dtype).reshape(p.height, p.line_size // dtype.itemsize)
        out.append(a[:, :p.width].copy())   # drop the line padding; own the memory (frames are reused)
    return tuple(out)


def decode_yuv(path, *, fmt: str, width: int, height: int, rgb: bool = False,
               rgb_native: bool = False, threads: bool = True) -> Iterator[YUVFrame]:
    """Yield every frame of the first video stream as planes in `fmt` at width x height.

    rgb: also give the RGB image (rgb24, or rgb48le for > 8-bit sources). rgb_native: take it
    from the frame as decoded (its own size), not from the converted planes, so a caller that
    resizes RGB itself gets the same pixels as from restore.io.decode.
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
                    frame = frame.reformat(width=width, height=height, format=fmt, interpolation="BICUBIC")
                image = None
                if rgb:
                    src = native if rgb_native else frame
                    deep = (bit_depth_of(src.format.name) or 8) > 8
                    image = src.to_ndarray(format="rgb48le" if deep else "rgb24")
                yield YUVFrame(_planes(frame), image)
                index += 1
        except av.error.FFmpegError as err:
            raise MediaError(f"decoding failed after frame {index}: {ffmpeg_reason(err)}", p) from None
        if index == 0:
            raise MediaError("video stream has no decodable frame", p)
    finally:
        container.close()
