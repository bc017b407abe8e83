"""The signals a scoring run measures: both files' frame streams for a PSNR mode, and which part
of a frame each metric reads (Y for SSIM and alignment, RGB for LPIPS and the temporal metrics,
the reference format's Y plane for VMAF), with its bit depth, PSNR peak and SSIM data range.

Each file is decoded once: one stream per file carries everything the metrics need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from .psnr import crop, rgb_to_y601
from .sources import format_bits, planar_format, rgb_frames, yuv_frames


@dataclass
class Signals:
    ref: Iterator
    dist: Iterator
    luma: Callable            # item -> the Y that SSIM and the alignment compare
    rgb: Callable             # item -> RGB (PSNR y/rgb, LPIPS, temporal)
    y_plane: Callable | None  # item -> the Y plane in the reference's format (VMAF), or None
    bits: int
    peak: float               # PSNR peak
    ssim_range: float         # data range of Wang's SSIM
    ff_ssim: object | None    # ffmpeg's ssim filter (restore.io.yuv.PairFilter) when it computes SSIM


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    if img.shape[1] == width and img.shape[0] == height:
        return img
    shrink = img.shape[1] > width and img.shape[0] > height
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def open_signals(ref_path: str, dist_path: str, ref_info, dist_info, *, psnr_mode: str, ssim_mode: str,
                 want_ssim: bool, need_rgb: bool, vmaf: bool, scale_to_reference: bool, crop_border: int,
                 warn: Callable[[str], None]) -> Signals:
    """The streams of both files for `psnr_mode` (the reference's size W x H); `warn` is told of
    every conversion the numbers depend on."""
    W, H = ref_info.width, ref_info.height
    # every warning is given here, not in the helpers below: its stack level points at score()'s caller
    if psnr_mode == "yuv":
        fmt = planar_format(ref_info.pix_fmt)
        if fmt != ref_info.pix_fmt:
            warn(f"reference pixel format {ref_info.pix_fmt} is measured as planar {fmt}")
        if dist_info.pix_fmt != ref_info.pix_fmt:
            warn(f"pixel format {dist_info.pix_fmt} converted to the reference's {fmt} before scoring")
        signals = _yuv(ref_path, dist_path, fmt, W, H, ssim_mode, want_ssim, need_rgb)
    elif vmaf:
        signals = _planes_and_rgb(ref_path, dist_path, ref_info, W, H, psnr_mode, scale_to_reference, crop_border)
    else:
        signals = _rgb(ref_path, dist_path, ref_info, W, H, psnr_mode, scale_to_reference, crop_border)
    if vmaf:
        vfmt = planar_format(ref_info.pix_fmt)
        if vfmt != ref_info.pix_fmt and psnr_mode != "yuv":   # yuv mode has said so already
            warn(f"VMAF measured on the Y plane of {vfmt}, converted from the reference's {ref_info.pix_fmt}")
    return signals


def _yuv(ref_path, dist_path, fmt, W, H, ssim_mode, want_ssim, need_rgb) -> Signals:
    """The planes in the reference's planar format `fmt`, as ffmpeg's psnr filter measures them."""
    bits = format_bits(fmt)
    peak = float(2 ** bits - 1)
    # ffmpeg's SSIM runs as ffmpeg's own filter (libavfilter, in-process) on the decoded frames
    ff_ssim = None
    if want_ssim and ssim_mode == "ffmpeg":
        from restore.io.yuv import PairFilter, filter_available

        if filter_available("ssim"):
            ff_ssim = PairFilter("ssim")
    keep = ff_ssim is not None
    ref_it = yuv_frames(ref_path, fmt=fmt, width=W, height=H, want_rgb=need_rgb, keep_frame=keep)
    dist_it = yuv_frames(dist_path, fmt=fmt, width=W, height=H, want_rgb=need_rgb, keep_frame=keep)

    def y_plane(item):
        return item.planes[0]

    def rgb(item):
        return item.rgb
    return Signals(ref_it, dist_it, y_plane, rgb, y_plane, bits, peak, peak, ff_ssim)


def _planes_and_rgb(ref_path, dist_path, ref_info, W, H, psnr_mode, scale_to_reference, crop_border) -> Signals:
    """VMAF is defined on the Y plane as decoded: one decode gives the planes (in the reference's
    format) and the RGB that PSNR-Y / SSIM / LPIPS use, as restore.io.decode makes it."""
    fmt = planar_format(ref_info.pix_fmt)
    peak = 1.0 if psnr_mode == "rgb" else 255.0
    ref_it = yuv_frames(ref_path, fmt=fmt, width=W, height=H, want_rgb=True, rgb_native=True)
    dist_it = yuv_frames(dist_path, fmt=fmt, width=W, height=H, want_rgb=True, rgb_native=True)
    if scale_to_reference:
        from restore.io.yuv import YUVFrame

        dist_it = (YUVFrame(f.planes, _resize(f.rgb, W, H)) for f in dist_it)

    def rgb(item):
        return item.rgb

    def luma(item):
        return crop(rgb_to_y601(item.rgb, np.float32), crop_border)

    def y_plane(item):
        return item.planes[0]
    return Signals(ref_it, dist_it, luma, rgb, y_plane, ref_info.bit_depth, peak, 255.0, None)


def _rgb(ref_path, dist_path, ref_info, W, H, psnr_mode, scale_to_reference, crop_border) -> Signals:
    """Decoded RGB only (restore.io.decode)."""
    peak = 1.0 if psnr_mode == "rgb" else 255.0
    ref_it = rgb_frames(ref_path)
    dist_it = (_resize(f, W, H) for f in rgb_frames(dist_path)) if scale_to_reference else rgb_frames(dist_path)

    def luma(item):
        return crop(rgb_to_y601(item, np.float32), crop_border)

    def rgb(item):
        return item
    return Signals(ref_it, dist_it, luma, rgb, None, ref_info.bit_depth, peak, 255.0, None)
