"""preview(): restore a few seconds of a clip with the settings of a full run, and say how long
the full run would take, before committing hours to it.

The stretch is cut from the source by stream copy (restore.io.excerpt: same codec, quantisers,
colour tags, audio and subtitles, timestamps from zero) into a temporary file, which enhance()
then restores like any input, so the preview is what the full run would produce there (the first
chunk of a preview has no restored frames before it to anchor on, as at the start of a clip). It
is written next to where the full run's output would go, as NAME.preview.EXT, and never over the
full run's output.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..config import load_config
from ..errors import ConfigError, RestoreError
from .selection import default_output, wanted_tasks

DEFAULT_SECONDS = 3.0


@dataclass
class PreviewResult:
    output: str
    start: float                  # where the stretch starts on the source clock (a key frame)
    seconds: float                # its length in the source
    frames: int                   # source frames restored
    wall: float                   # seconds the preview took, the cut included
    total_frames: int | None      # the whole clip's frames (from its header or duration)
    estimate: float | None        # seconds the whole clip would take at the preview's pace
    enhance: dict                 # the preview run's EnhanceResult.to_dict()

    def to_dict(self) -> dict:
        return asdict(self)


def preview_path(out: Path) -> Path:
    """clip_restored.mp4 -> clip_restored.preview.mp4"""
    return out.with_name(f"{out.stem}.preview{out.suffix}")


def preview(input, output=None, *, seconds: float = DEFAULT_SECONDS, at: float | None = None,
            preset="default", overwrite: bool = False, progress=False, report_seams: bool = False,
            log: Callable[[str], None] | None = None, **overrides) -> PreviewResult:
    """Restore `seconds` of `input` from `at` (seconds on the source clock; default: the middle
    of the clip) with the settings enhance(input, output, preset=..., **overrides) would use,
    into preview_path(output or the default output). overwrite: replace an existing preview."""
    from ..io import check_output_path, probe
    from ..io.codecs import format_for
    from ..io.excerpt import cut
    from . import enhance  # the package, never the other way round

    started = time.perf_counter()
    if not seconds > 0:
        raise ConfigError(f"preview length must be positive, got {seconds!r}")
    src = Path(os.fspath(input))
    info = probe(src)
    cfg = load_config(preset, overrides)
    out = Path(os.fspath(output)) if output is not None else default_output(src, cfg, wanted_tasks(cfg))
    target = check_output_path(preview_path(out), overwrite=overwrite, input_path=src)
    format_for(target)   # an unknown container is said before the cut, not after
    video = info.video
    duration = video.duration or info.duration
    first = video.first_frame_time or 0.0
    if at is not None and at < 0:
        raise ConfigError(f"preview start must be 0 or later, got {at:g} s")
    if duration and at is not None and at >= first + duration:
        raise RestoreError(f"preview start {at:g} s is past the end of the video ({first + duration:.2f} s)", src)
    # the middle by default, as a stretch of `seconds` from the key frame before it; a start
    # asked for is kept, with the frames from the key frame before it as a lead-in
    from_key = at is None
    if at is None:
        at = first + max(0.0, (duration or 0.0) - seconds) / 2
    total = video.estimated_frames
    whole = duration is not None and duration <= seconds and at <= first + 1e-6
    with tempfile.TemporaryDirectory(prefix="restore-preview-") as tmp:
        if whole:
            excerpt, start, length = src, first, duration
        else:
            suffix = src.suffix.lower() if src.suffix.lower() in (".mp4", ".m4v", ".mov", ".mkv", ".webm") else ".mkv"
            part = cut(src, Path(tmp) / f"excerpt{suffix}", at, seconds, from_key=from_key,
                       rotation=video.rotation)
            excerpt, start, length = Path(part.path), part.start, part.end - part.start
        if log:
            log(f"preview: {length:.1f} s from {_clock(start)} -> {target}")
        try:
            res = enhance(excerpt, target, preset=preset, overwrite=overwrite, progress=progress,
                          report_seams=report_seams, log=log, **overrides)
        except RestoreError as err:
            if err.path is None or Path(err.path) != excerpt:
                raise
            # name the user's file, not our temporary excerpt
            raise type(err)(err.message, src) from None
    per_frame = (res.seconds - res.profile.get("setup", 0.0)) / max(1, res.frames_in)
    estimate = res.profile.get("setup", 0.0) + per_frame * total if total else None
    return PreviewResult(output=res.output, start=start, seconds=length, frames=res.frames_in,
                         wall=time.perf_counter() - started, total_frames=total, estimate=estimate,
                         enhance=res.to_dict())


def _clock(t: float) -> str:
    """Seconds as H:MM:SS.s (or M:SS.s under an hour)."""
    m, s = divmod(max(0.0, t), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def human_duration(seconds: float) -> str:
    """About how long: '45 s', '12 min', '3 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
