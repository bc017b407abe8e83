"""The codec catalogue: encoders, their speed presets and CRF ranges, and output containers.

Tables and the functions that check a user's choice against them; no encoding happens here
(restore.io.encode does that). A "preset" in this module is always an encoder speed preset
(x264's names); the configuration files that restore.config loads are called config presets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from restore.errors import ConfigError

__all__ = ["EncoderSpec", "ENCODERS", "ALIASES", "X26X_PRESETS", "SVT_PRESETS", "CONTAINERS",
           "available_encoders", "resolve_codec", "resolve_encoder_preset", "resolve_crf",
           "format_for"]

X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                "slower", "veryslow", "placebo")
# SVT-AV1 presets are numbers (0 slowest .. 12 fastest); map the familiar x264 names onto them.
SVT_PRESETS = {"placebo": 1, "veryslow": 2, "slower": 4, "slow": 6, "medium": 8, "fast": 9,
               "faster": 10, "veryfast": 11, "superfast": 12, "ultrafast": 12}


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    description: str
    crf_range: tuple[int, int] | None  # None: lossless, no CRF
    default_crf: int | None
    formats: dict  # bit depth -> default pix_fmt
    formats_444: dict  # bit depth -> pix_fmt without chroma subsampling (odd sizes)


ENCODERS: dict[str, EncoderSpec] = {
    "libx264": EncoderSpec("libx264", "H.264 / AVC (x264)", (0, 51), 18,
                           {8: "yuv420p", 10: "yuv420p10le"},
                           {8: "yuv444p", 10: "yuv444p10le"}),
    "libx265": EncoderSpec("libx265", "H.265 / HEVC (x265)", (0, 51), 20,
                           {8: "yuv420p", 10: "yuv420p10le", 12: "yuv420p12le"},
                           {8: "yuv444p", 10: "yuv444p10le", 12: "yuv444p12le"}),
    "libsvtav1": EncoderSpec("libsvtav1", "AV1 (SVT-AV1)", (1, 63), 30,
                             {8: "yuv420p", 10: "yuv420p10le"}, {}),
    "ffv1": EncoderSpec("ffv1", "FFV1 lossless (planar RGB)", None, None,
                        {8: "bgr0", 10: "gbrp10le", 12: "gbrp12le", 16: "gbrp16le"},
                        {8: "bgr0", 10: "gbrp10le", 12: "gbrp12le", 16: "gbrp16le"}),
}
ALIASES = {"h264": "libx264", "x264": "libx264", "avc": "libx264",
           "h265": "libx265", "hevc": "libx265", "x265": "libx265",
           "av1": "libsvtav1", "svtav1": "libsvtav1", "svt-av1": "libsvtav1"}


def available_encoders() -> list[str]:
    """The ENCODERS this PyAV build actually has."""
    return [name for name in ENCODERS if name in av.codecs_available]


def resolve_codec(codec: str) -> EncoderSpec:
    """The EncoderSpec of a codec name or alias (h264, hevc, av1...), available in this build."""
    key = str(codec).strip().lower()
    key = ALIASES.get(key, key)
    if key not in ENCODERS:
        raise ConfigError(f"unknown codec {codec!r} (choose from: {', '.join(ENCODERS)})")
    if key not in av.codecs_available:
        raise ConfigError(f"codec {codec!r} is not available in this PyAV/FFmpeg build "
                          f"(available: {', '.join(available_encoders())})")
    return ENCODERS[key]


def resolve_encoder_preset(spec: EncoderSpec, preset) -> str | None:
    """The encoder speed preset to pass to `spec` (x264 names for every codec, SVT-AV1 also 0..13);
    None for a codec without speed presets. ConfigError for a name the codec does not know."""
    if preset is None:
        return None
    text = str(preset).strip().lower()
    if spec.name in ("libx264", "libx265"):
        if text not in X26X_PRESETS:
            raise ConfigError(f"unknown preset {preset!r} for {spec.name} "
                              f"(choose from: {', '.join(X26X_PRESETS)})")
        return text
    if spec.name == "libsvtav1":
        if text.isdigit() and 0 <= int(text) <= 13:
            return text
        if text in SVT_PRESETS:
            return str(SVT_PRESETS[text])
        raise ConfigError(f"unknown preset {preset!r} for libsvtav1 "
                          f"(0..13 or one of: {', '.join(SVT_PRESETS)})")
    # FFV1 has no speed presets; accept the common names so one --preset works for every codec
    if text not in X26X_PRESETS and not text.isdigit():
        raise ConfigError(f"unknown preset {preset!r} (choose from: {', '.join(X26X_PRESETS)})")
    return None


def resolve_crf(spec: EncoderSpec, crf) -> int | None:
    """The CRF to pass to `spec`: its default for None, None for a lossless codec; ConfigError when
    out of the codec's range."""
    if spec.crf_range is None:
        return None  # lossless codec: CRF does not apply
    if crf is None:
        return spec.default_crf
    try:
        value = int(crf)
        if value != float(crf):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"crf must be an integer, got {crf!r}") from None
    lo, hi = spec.crf_range
    if not lo <= value <= hi:
        raise ConfigError(f"crf {value} out of range for {spec.name} ({lo}..{hi})")
    return value


# output file extension -> FFmpeg muxer
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
              ".webm": "webm", ".avi": "avi", ".nut": "nut", ".ts": "mpegts", ".m2ts": "mpegts"}


def format_for(path: Path) -> str:
    """FFmpeg muxer name for an output path, from its extension; ConfigError for an unknown one."""
    ext = path.suffix.lower()
    if ext in CONTAINERS:
        return CONTAINERS[ext]
    raise ConfigError(f"unknown output container {ext or path.name!r} "
                      f"(use {', '.join(sorted(CONTAINERS))})", path)


def container_refusal(codec: str, fmt: str) -> str | None:
    """Why the muxer `fmt` cannot hold the encoder `codec`'s video (one line), or None if it can."""
    name = resolve_codec(codec).name
    if fmt == "webm" and name != "libsvtav1":
        return f"{name} cannot be stored in WebM (use libsvtav1, or .mkv)"
    if name == "ffv1" and fmt not in ("matroska", "mov", "avi", "nut"):
        return "ffv1 needs a .mkv (or .mov) output"
    if fmt == "mpegts" and name not in ("libx264", "libx265"):
        return f"{name} cannot be stored in MPEG-TS (use libx264 or libx265, or .mkv)"
    return None


def output_extension(input_ext: str, codec: str | None = None) -> str:
    """The extension a default output keeps: the input's, where we can write that container (with
    `codec` in it); else .mkv, which holds every encoder here."""
    fmt = CONTAINERS.get(input_ext.lower())
    if fmt is None or (codec is not None and container_refusal(codec, fmt)):
        return ".mkv"
    return input_ext
