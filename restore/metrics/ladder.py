"""Encode ladders for `restore compare`: parse `--encode CODEC:CRF,...` and name the outputs.

The encoding itself (one decode feeding every encoder, no RGB round trip) and the bitrate
measurement are video I/O: restore.io.transcode.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

_CODEC_EXT = {"libx264": ".mp4", "libx265": ".mp4", "libsvtav1": ".mkv", "libvpx-vp9": ".mkv", "libaom-av1": ".mkv"}


@dataclass
class EncodeSpec:
    codec: str
    crf: int

    @property
    def label(self) -> str:
        return self.codec


def parse_encode(text: str) -> list[EncodeSpec]:
    """'libx264:18,23,28,33' -> four EncodeSpecs."""
    codec, sep, values = text.partition(":")
    codec = codec.strip()
    if not sep or not codec or not values.strip():
        raise ConfigError(f"--encode {text!r}: expected CODEC:CRF,CRF,... e.g. libx264:18,23,28,33")
    try:
        crfs = [int(v) for v in values.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--encode {text!r}: CRF values must be integers") from None
    from ..io.transcode import encoder_exists

    if not encoder_exists(codec):
        raise ConfigError(f"--encode {text!r}: encoder {codec!r} is not available in this FFmpeg build")
    return [EncodeSpec(codec, c) for c in crfs]


def encode_ladder(reference, specs: list[EncodeSpec], out_dir, *, preset: str = "medium") -> list[Path]:
    """Encode `reference` once per spec into out_dir; returns the output paths in spec order."""
    from ..io.transcode import encode_many

    ref = os.fspath(reference)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(ref).stem
    jobs = [(spec.codec, spec.crf, out_dir / f"{stem}_{spec.codec}_crf{spec.crf}{_CODEC_EXT.get(spec.codec, '.mkv')}")
            for spec in specs]
    return encode_many(ref, jobs, preset=preset)
