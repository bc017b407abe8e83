"""Test media helpers: synthetic moving content and small clips written with PyAV.

Usage from any test module::

    from tests.media import make_clip, synthetic_frames

    frames = synthetic_frames(40, width=96, height=64, cuts=[20])  # hard scene cut at frame 20
    path = make_clip(tmp_path / "clip.mp4", frames, fps=25)          # H.264 yuv420p
    path = make_clip(tmp_path / "vfr.mkv", 30, times=[...])           # 30 generated frames, VFR
    path = make_clip(tmp_path / "a.mkv", frames, codec="ffv1")        # lossless RGB (bgr0)

`make_clip` keeps everything explicit so a test states exactly what it feeds the code under test.
Extra streams that PyAV cannot easily encode (subtitles, attachments) are added with the
ffmpeg CLI by `add_streams`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import av
import numpy as np

__all__ = [
    "synthetic_frame",
    "iter_synthetic_frames",
    "synthetic_frames",
    "make_clip",
    "make_audio_only",
    "add_streams",
    "ffprobe_json",
    "FFMPEG",
    "FFPROBE",
]

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")


# --------------------------------------------------------------------------------------------
# synthetic content
# --------------------------------------------------------------------------------------------
def _shot_params(shot: int, seed: int) -> dict:
    """Deterministic look of one shot: background gradient colours, shape colours, motion."""
    rng = np.random.default_rng(seed * 1000 + shot)
    return {
        "c0": rng.uniform(0.05, 0.95, 3),
        "c1": rng.uniform(0.05, 0.95, 3),
        "angle": rng.uniform(0, 2 * np.pi),
        "shapes": [
            {
                "colour": rng.uniform(0, 1, 3),
                "pos": rng.uniform(0.15, 0.85, 2),
                "vel": rng.uniform(-0.02, 0.02, 2),
                "radius": rng.uniform(0.08, 0.2),
                "square": bool(rng.integers(0, 2)),
            }
            for _ in range(3)
        ],
    }


def synthetic_frame(
    t: int,
    width: int = 128,
    height: int = 96,
    *,
    shot: int = 0,
    shot_start: int = 0,
    seed: int = 0,
    dtype=np.uint8,
) -> np.ndarray:
    """One RGB frame (H, W, 3) of smooth gradient background plus moving discs / squares.

    Frames of the same `shot` change smoothly with `t` (slow gradient drift, shapes move a few
    pixels per frame); different shots look completely different (a hard scene cut).
    `dtype` uint8 (0..255) or uint16 (0..65535, uses the extra precision).
    """
    p = _shot_params(shot, seed)
    k = t - shot_start
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u = xx / max(width - 1, 1)
    v = yy / max(height - 1, 1)
    a = p["angle"] + 0.01 * k
    g = 0.5 + 0.5 * np.sin(2.0 * ((u - 0.5) * np.cos(a) + (v - 0.5) * np.sin(a)) + 0.05 * k)
    img = p["c0"][None, None, :] * (1 - g[..., None]) + p["c1"][None, None, :] * g[..., None]
    for s in p["shapes"]:
        cx, cy = s["pos"] + s["vel"] * k
        cx = abs((cx % 2.0) - 1.0) if not 0 <= cx <= 1 else cx  # bounce back into the frame
        cy = abs((cy % 2.0) - 1.0) if not 0 <= cy <= 1 else cy
        r = s["radius"]
        du = (u - cx) * width / max(min(width, height), 1)
        dv = (v - cy) * height / max(min(width, height), 1)
        if s["square"]:
            d = np.maximum(np.abs(du), np.abs(dv))
        else:
            d = np.sqrt(du * du + dv * dv)
        # soft edge over ~1.5 px so the content stays band-limited (codec friendly)
        edge = 1.5 / max(min(width, height), 1)
        m = np.clip((r - d) / edge + 0.5, 0.0, 1.0)
        img = img * (1 - m[..., None]) + s["colour"][None, None, :] * m[..., None]
    img = np.clip(img, 0.0, 1.0)
    if np.dtype(dtype) == np.uint16:
        return np.round(img * 65535.0).astype(np.uint16)
    if np.dtype(dtype) == np.uint8:
        return np.round(img * 255.0).astype(np.uint8)
    if np.dtype(dtype) == np.float32:
        return img.astype(np.float32)
    raise ValueError(f"unsupported dtype {dtype!r}")


def iter_synthetic_frames(
    n: int,
    width: int = 128,
    height: int = 96,
    *,
    cuts: Iterable[int] = (),
    seed: int = 0,
    dtype=np.uint8,
) -> Iterator[np.ndarray]:
    """Yield `n` frames; a hard scene cut happens at every frame index in `cuts`."""
    cuts = sorted(set(int(c) for c in cuts if 0 < int(c) < n))
    shot, start = 0, 0
    for t in range(n):
        if shot < len(cuts) and t == cuts[shot]:
            shot, start = shot + 1, t
        yield synthetic_frame(t, width, height, shot=shot, shot_start=start, seed=seed, dtype=dtype)


def synthetic_frames(
    n: int,
    width: int = 128,
    height: int = 96,
    *,
    cuts: Iterable[int] = (),
    seed: int = 0,
    dtype=np.uint8,
) -> np.ndarray:
    """(T, H, W, 3) array of `iter_synthetic_frames` (small sizes only, it is all in memory)."""
    return np.stack(list(iter_synthetic_frames(n, width, height, cuts=cuts, seed=seed, dtype=dtype)))


# --------------------------------------------------------------------------------------------
# clips
# --------------------------------------------------------------------------------------------
_DEFAULT_PIX_FMT = {
    # (codec, is16bit) -> pix_fmt
    ("libx264", False): "yuv420p",
    ("libx264", True): "yuv420p10le",
    ("libx265", False): "yuv420p",
    ("libx265", True): "yuv420p10le",
    ("libsvtav1", False): "yuv420p",
    ("libsvtav1", True): "yuv420p10le",
    ("libvpx-vp9", False): "yuv420p",
    ("libvpx-vp9", True): "yuv420p10le",
    ("mpeg4", False): "yuv420p",
    ("ffv1", False): "bgr0",  # lossless RGB: decode gives back exactly the input
    ("ffv1", True): "gbrp16le",
    ("prores_ks", False): "yuv422p10le",
    ("prores_ks", True): "yuv422p10le",
}


def make_clip(
    path: str | os.PathLike,
    frames: np.ndarray | Sequence[np.ndarray] | int,
    *,
    fps: float | Fraction = 25,
    width: int = 128,
    height: int = 96,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    times: Sequence[float] | None = None,
    time_base: Fraction | None = None,
    crf: int | None = None,
    gop: int | None = None,
    cuts: Iterable[int] = (),
    seed: int = 0,
    audio: bool = False,
    audio_codec: str = "aac",
    audio_rate: int = 48000,
    audio_channels: int = 2,
    color_matrix: str | int | None = None,
    color_primaries: str | int | None = None,
    color_transfer: str | int | None = None,
    color_range: str | int | None = None,
    rotation: float | None = None,
    sample_aspect_ratio: Fraction | None = None,
    options: dict | None = None,
) -> Path:
    """Write a small test clip with PyAV and return its path.

    frames: a (T, H, W, 3) uint8 / uint16 array (or list of frames), or an int count of
        `synthetic_frames(count, width, height, cuts=cuts, seed=seed)`.
    fps: nominal rate. `times` (seconds, one per frame, increasing) makes the timestamps
        explicit, e.g. for variable frame rate; otherwise frame i is at i / fps.
    codec / pix_fmt: encoder and its pixel format (default: yuv420p, 10-bit for uint16 frames;
        FFV1 uses planar RGB so the round trip is exact).
    audio: add a sine tone of the clip's duration, `audio_codec` "aac" (MP4/MKV) or
        "pcm_s16le" (MKV/MOV).
    color_*: tags written into the stream ("bt709", "bt2020nc", "smpte2084", "tv", "pc", ...
        or the FFmpeg integer values).
    rotation: display rotation in degrees (display matrix side data).
    """
    path = Path(path)
    if isinstance(frames, (int, np.integer)):
        frames = synthetic_frames(int(frames), width, height, cuts=cuts, seed=seed)
    frames = [np.ascontiguousarray(f) for f in frames]
    if not frames:
        raise ValueError("make_clip needs at least one frame")
    h, w = frames[0].shape[:2]
    deep = frames[0].dtype == np.uint16
    src_fmt = "rgb48le" if deep else "rgb24"
    if pix_fmt is None:
        pix_fmt = _DEFAULT_PIX_FMT.get((codec, deep), "yuv420p10le" if deep else "yuv420p")
    fps = Fraction(fps).limit_denominator(1001000)
    if times is not None and len(times) != len(frames):
        raise ValueError(f"{len(times)} times for {len(frames)} frames")
    if time_base is None:
        time_base = Fraction(1, 90000) if times is not None else 1 / fps

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = pix_fmt
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        opts = dict(options or {})
        if crf is not None:
            opts["crf"] = str(crf)
        if codec == "libx264":
            opts.setdefault("preset", "ultrafast")
        if codec == "libx265":
            opts.setdefault("preset", "ultrafast")
            opts.setdefault("x265-params", "log-level=error")
        if codec == "libsvtav1":
            opts.setdefault("preset", "12")
            os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT prints a banner otherwise
        if gop is not None:
            vs.codec_context.gop_size = int(gop)
        vs.codec_context.options = opts
        cc = vs.codec_context
        if color_matrix is not None:
            cc.colorspace = _color_value("colorspace", color_matrix)
        if color_primaries is not None:
            cc.color_primaries = _color_value("primaries", color_primaries)
        if color_transfer is not None:
            cc.color_trc = _color_value("trc", color_transfer)
        if color_range is not None:
            cc.color_range = _color_value("range", color_range)
        if sample_aspect_ratio is not None:
            cc.sample_aspect_ratio = Fraction(sample_aspect_ratio)
        if rotation is not None:
            vs.set_display_rotation(float(rotation))

        astream = None
        if audio:
            astream = out.add_stream(audio_codec, rate=audio_rate)
            astream.layout = "stereo" if audio_channels == 2 else "mono"

        for i, img in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(img, format=src_fmt)
            t = float(times[i]) if times is not None else i / fps
            vf.pts = int(round(Fraction(t).limit_denominator(10**9) / time_base))
            vf.time_base = time_base
            if color_range is not None:
                vf.color_range = _color_value("range", color_range)
            if color_matrix is not None:
                vf.colorspace = _color_value("colorspace", color_matrix)
            for p in vs.encode(vf):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)

        if astream is not None:
            if times is not None:
                dur = float(times[-1]) + (float(times[-1] - times[-2]) if len(times) > 1 else 1 / float(fps))
            else:
                dur = len(frames) / float(fps)
            _write_tone(out, astream, dur, audio_rate, audio_channels)
    return path


def _write_tone(out, astream, seconds: float, rate: int, channels: int) -> None:
    n_total = int(round(seconds * rate))
    fmt = astream.codec_context.format.name if astream.codec_context.format else "fltp"
    frame_size = astream.codec_context.frame_size or 1024
    pos = 0
    while pos < n_total:
        n = min(frame_size, n_total - pos)
        t = (np.arange(pos, pos + n) / rate).astype(np.float64)
        tone = 0.2 * np.sin(2 * np.pi * 440.0 * t)
        chans = np.stack([tone * (1 + 0.1 * c) for c in range(channels)])
        if fmt in ("s16", "s16p"):
            data = np.round(chans * 32767).astype(np.int16)
            if fmt == "s16":
                data = data.T.reshape(1, -1)
        else:
            data = chans.astype(np.float32)
            if fmt == "flt":
                data = data.T.reshape(1, -1)
        af = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format=fmt, layout="stereo" if channels == 2 else "mono"
        )
        af.sample_rate = rate
        af.pts = pos
        af.time_base = Fraction(1, rate)
        for p in astream.encode(af):
            out.mux(p)
        pos += n
    for p in astream.encode(None):
        out.mux(p)


_COLOR_NAMES = {
    "colorspace": {"rgb": 0, "gbr": 0, "bt709": 1, "unknown": 2, "unspecified": 2, "fcc": 4,
                   "bt470bg": 5, "smpte170m": 6, "smpte240m": 7, "ycgco": 8, "bt2020nc": 9,
                   "bt2020_ncl": 9, "bt2020c": 10, "bt2020_cl": 10},
    "primaries": {"bt709": 1, "unknown": 2, "unspecified": 2, "bt470m": 4, "bt470bg": 5,
                  "smpte170m": 6, "smpte240m": 7, "film": 8, "bt2020": 9, "smpte428": 10,
                  "smpte431": 11, "smpte432": 12},
    "trc": {"bt709": 1, "unknown": 2, "unspecified": 2, "gamma22": 4, "gamma28": 5,
            "smpte170m": 6, "smpte240m": 7, "linear": 8, "iec61966-2-4": 11, "bt1361e": 12,
            "iec61966-2-1": 13, "srgb": 13, "bt2020-10": 14, "bt2020-12": 15,
            "smpte2084": 16, "pq": 16, "smpte428": 17, "arib-std-b67": 18, "hlg": 18},
    "range": {"unknown": 0, "unspecified": 0, "tv": 1, "mpeg": 1, "limited": 1, "pc": 2,
              "jpeg": 2, "full": 2},
}


def _color_value(kind: str, value: str | int) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        return _COLOR_NAMES[kind][str(value).lower()]
    except KeyError:
        raise ValueError(f"unknown {kind} {value!r}") from None


def make_audio_only(path: str | os.PathLike, seconds: float = 1.0, codec: str = "aac",
                    rate: int = 48000) -> Path:
    """A file with one audio stream and no video (an .mp4/.m4a/.mkv by its extension)."""
    path = Path(path)
    with av.open(str(path), "w") as out:
        a = out.add_stream(codec, rate=rate)
        a.layout = "stereo"
        _write_tone(out, a, seconds, rate, 2)
    return path


def add_streams(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    srt: str | None = None,
    ass: bool = False,
    attachment: str | os.PathLike | None = None,
    attachment_mimetype: str = "application/x-truetype-font",
) -> Path:
    """Copy `src` to `dst` with the ffmpeg CLI, adding a subtitle track and/or an attachment.

    srt: SubRip text (e.g. "1\\n00:00:00,000 --> 00:00:00,500\\nhello\\n"); with `ass=True` it is
    converted to ASS. attachment: a file attached as a font (Matroska only).
    """
    if FFMPEG is None:
        raise RuntimeError("ffmpeg CLI is needed for add_streams")
    dst = Path(dst)
    cmd = [FFMPEG, "-v", "error", "-y", "-i", os.fspath(src)]
    tmp_srt = None
    if srt is not None:
        tmp_srt = dst.with_name(dst.stem + ".tmp.srt")
        tmp_srt.write_text(srt)
        cmd += ["-i", str(tmp_srt)]
    cmd += ["-map", "0"]
    if srt is not None:
        cmd += ["-map", "1"]
    cmd += ["-c", "copy"]
    if srt is not None:
        cmd += ["-c:s", "ass" if ass else ("mov_text" if dst.suffix.lower() in (".mp4", ".mov", ".m4v") else "srt")]
    if attachment is not None:
        cmd += ["-attach", os.fspath(attachment), "-metadata:s:t", f"mimetype={attachment_mimetype}"]
    cmd += [str(dst)]
    try:
        subprocess.run(cmd, check=True, capture_output=True)
    finally:
        if tmp_srt is not None:
            tmp_srt.unlink(missing_ok=True)
    return dst


def ffprobe_json(path: str | os.PathLike, *extra: str) -> dict:
    """`ffprobe -show_format -show_streams` (plus `extra` args) as a dict, for cross-checks."""
    import json

    if FFPROBE is None:
        raise RuntimeError("ffprobe is not installed")
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-of", "json", "-show_format", "-show_streams", *extra, os.fspath(path)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def make_hdr10_clip(path: str | os.PathLike, frames: int = 6, width: int = 64, height: int = 48) -> Path:
    """10-bit HEVC tagged BT.2020 / PQ with HDR10 static metadata: mastering display (BT.2020-ish
    primaries, D65, 1000 / 0.0001 cd/m2) and content light level (MaxCLL 1000, MaxFALL 400)."""
    md = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"
    return make_clip(path, frames, width=width, height=height, codec="libx265", pix_fmt="yuv420p10le",
                     color_matrix="bt2020nc", color_primaries="bt2020", color_transfer="smpte2084",
                     options={"x265-params": f"log-level=error:hdr10=1:master-display={md}:max-cll=1000,400"})
