"""enhance(): decode -> plan chunks -> deblock -> denoise -> upscale -> interpolate -> encode.

Two streaming passes over the input, so memory stays bounded by one chunk whatever the length:

1. analysis: small grey thumbnails and key-frame flags (restore.chunks.analyse) plus the
   timestamps, then the chunk plan;
2. restoration: frames are decoded again and gathered one chunk at a time; each chunk is deblocked,
   denoised, then upscaled (each stage gets the anchors the plan names: its own restored outputs of the
   frames just before the chunk, kept from the previous chunk), then frames are interpolated
   between consecutive outputs, across chunk boundaries too, but never across a scene cut, where
   the earlier frame is repeated instead.

Frame rate: `interpolate.multiplier` M inserts M - 1 frames evenly spaced between the source
timestamps of each pair (so a variable frame rate stays variable) and M - 1 repeats of the last
frame within its duration, giving exactly M x the frames over the same duration.
`interpolate.fps` F instead resamples the timeline on a uniform grid t0 + j / F over the source
duration: each grid time falling on a source timestamp takes that frame, the others are
interpolated at their fractional position between the two source frames around them (or repeat
the earlier one at a cut). The output is then constant-rate F; F may also be lower than the source.

Everything the user can get wrong (options, input file, output path) is checked before any
output file exists; the encoder writes under a temporary name and renames at the end.

One module a job: this one checks and sets up a run (enhance) and returns its EnhanceResult;
`selection.py` picks the tasks and methods and the output name; `timeline.py` maps source frames
to output times; `runner.py` is pass 2 (the decode, restore and encode threads, and the chunk
runner that keeps the anchors); `preview.py` (restore.pipeline.preview, built on enhance) runs it
on a few seconds cut from the input and estimates the whole run's time.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import registry
from ..chunks import THUMB_SIZE, Analyser, ChunkPlan, CutDetector, plan_chunks
from ..config import EnhanceConfig, load_config
from ..errors import DamagedMediaError, MediaError, RestoreError
from .runner import encode_queue_frames, restore_pass
from .selection import default_output, select_methods, wanted_tasks
from .timeline import build_schedule

__all__ = ["EnhanceResult", "enhance", "restore_ladder", "resolve_deblock", "wanted_tasks",
           "select_methods", "default_output", "build_schedule"]


@dataclass
class EnhanceResult:
    output: str
    frames_in: int
    frames_out: int
    seconds: float
    fps: float                     # processing speed: input frames per wall-clock second
    chunks: int
    methods: dict[str, str]        # task -> method name, for the tasks that ran
    input: str = ""
    width: int = 0                 # output size
    height: int = 0
    cuts: list[int] = field(default_factory=list)
    device: str = "cpu"
    output_fps: float | None = None  # nominal output frame rate (None when unknown)
    resumed_chunks: int = 0          # chunks taken from a resume work folder instead of restored
    work_dir: str | None = None      # the resume work folder (removed on success unless kept)
    work_bytes: int = 0              # its largest size during the run
    kept_work_dir: bool = False
    cleaned: list[str] = field(default_factory=list)  # leftovers of killed runs that were removed
    warnings: list[str] = field(default_factory=list)  # also issued as MediaWarning
    seams: dict | None = None        # restore.seams.SeamReport.to_dict() with report_seams=True
    deblock: dict | None = None      # the deblock strength used and, for auto, the estimate behind it
    profile: dict = field(default_factory=dict)  # seconds: wall, model (model_<task>), overhead, ...

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------
# checks and set-up of a run
# ------------------------------------------------------------------------------------------
def _stream_warnings(src: Path, info) -> list[str]:
    """Say up front what the output will lack: only the first video stream is restored; others
    (a second angle, a picture-in-picture feed) are not carried over. Cover art is, as an
    attachment."""
    from ..io.mux import MediaWarning

    extra = [s for s in info.streams if s.type == "video" and s.index != info.video_index
             and "attached_pic" not in (s.disposition or [])]
    if not extra:
        return []
    msg = (f"{src}: has {len(extra) + 1} video streams; only stream #{info.video_index} is restored, "
           + ", ".join(f"#{s.index} ({s.codec or 'unknown codec'})" for s in extra)
           + " will not be in the output")
    warnings.warn(msg, MediaWarning, stacklevel=3)
    return [msg]


def _available_memory() -> int | None:
    """Bytes this process may still allocate: MemAvailable, or the cgroup's limit minus its use
    when that is lower (containers); None when unknown."""
    values = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    values.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            values.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(values) if values else None


def _check_memory(src: Path, cfg: EnhanceConfig, width: int, height: int, scale: int,
                  bit_depth: int) -> None:
    """One line before any work when a chunk of these frames cannot fit in memory.

    The pipeline holds about a chunk of input frames as float32 four times (decode queue, the
    chunk, its stacked copy, the denoised chunk), the upscaled chunk and its interpolated frames,
    and the encoder queue of output frames; the models tile their own working memory."""
    per_in = width * height * 3 * 4
    per_out = per_in * scale * scale
    n = cfg.chunk.max_len
    mult = cfg.interpolate.multiplier if cfg.interpolate.fps is None else 2
    queued = encode_queue_frames(per_out)
    need = n * 4 * per_in + n * mult * per_out + (queued + 2 * cfg.chunk.overlap + 2) * per_out
    avail = _available_memory()
    if avail is None or need <= 0.8 * avail:
        return
    fits = int((0.8 * avail - (queued + 2 * cfg.chunk.overlap + 2) * per_out)
               // max(1, 4 * per_in + mult * per_out))
    hint = (f"lower chunk.max_len to {fits} or less (a config key)" if fits >= max(1, cfg.chunk.min_len)
            else "these frames are too large for this machine; scale the input down first")
    raise RestoreError(f"{width}x{height} frames (x{scale} -> {width * scale}x{height * scale}) in chunks "
                       f"of {n} need about {_human(need)} of memory, {_human(avail)} available: {hint}", src)


def _human(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _check_output_dir_writable(out: Path) -> None:
    """Create and delete a temp file next to the output: os.access says yes to root anywhere,
    and places like /proc only refuse at creation time."""
    from ..io.atomic import discard_temp, temp_path_for

    discard_temp(temp_path_for(out, tag="check-"))


def _work_settings(cfg: EnhanceConfig, device: str, specs, out_dtype, precision: str = "fp32") -> dict:
    """What decides the frames handed to the encoder, for the resume work key: everything but
    the encoder's own settings (a resume may change --crf) and the output name."""
    from .. import __version__

    d = cfg.to_dict()
    d.pop("encode")
    d.pop("output")
    # Model weights retrained between a run and its resume would mix two models in one output:
    # their files' sizes and mtimes are part of the key.
    weights = {}
    for spec in specs.values():
        if spec.card:
            folder = Path(spec.card).parent
            for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.yaml")):
                with contextlib.suppress(OSError):
                    st = f.stat()
                    weights[f.name] = [st.st_size, st.st_mtime_ns]
    return {"config": d, "device": device, "precision": precision, "methods": {t: s.name for t, s in specs.items()},
            "dtype": np.dtype(out_dtype).name, "restore": __version__, "weights": weights}


INTERLACED = {"tt": "top field first", "bb": "bottom field first", "tb": "top field first, coded bottom first",
              "bt": "bottom field first, coded top first"}


def resolve_deinterlace(src: Path, setting: str, field_order: str | None,
                        log: Callable[[str], None] | None = None) -> str | None:
    """decode()'s deinterlace mode for input.deinterlace (auto, always, never) and the stream's
    field order; says what it does, and warns when an interlaced stream is left woven."""
    from ..io.mux import MediaWarning

    interlaced = field_order in INTERLACED
    if setting == "never" or (setting == "auto" and not interlaced):
        if interlaced:
            warnings.warn(f"{src}: interlaced ({INTERLACED[field_order]}) but restored as whole frames, "
                          "so combing stays (input.deinterlace is never)", MediaWarning, stacklevel=3)
        return None
    if log:
        what = INTERLACED.get(field_order, "not tagged interlaced")
        log(f"deinterlace: {what}{'; every frame, as asked' if setting == 'always' else ''} -> bwdif, "
            "one frame per frame")
    return "interlaced" if setting == "auto" else "all"


def _keep_or_remove(work) -> None:
    """A failed or interrupted run's resume work folder: kept when a chunk is finished (the next
    --resume run continues from it), removed when nothing is."""
    if work is None:
        return
    state = work.load()
    if state is not None and state["chunks_done"] > 0:
        work.release()
    else:
        work.remove()


def resolve_deblock(src: Path, strength: float | None, log: Callable[[str], None] | None = None,
                    blind: bool = False) -> tuple[float | None, dict]:
    """The deblock strength of a run: the given one, or (None = auto) from the estimate of the
    stream (restore.methods.damage): once per video, so it cannot flicker from chunk to chunk.
    `blind`: the method judges the damage itself (damage.auto_strength: full on any lossy stream)."""
    if strength is not None:
        info = {"strength": float(strength), "auto": False}
        if log:
            log(f"deblock: strength {strength:g}")
        return float(strength), info
    from ..methods.damage import auto_strength, estimate_from_stream

    try:
        est = estimate_from_stream(src)
    except Exception as err:  # noqa: BLE001 - the probe only informs a default: fall back to the frames
        if log:
            log(f"deblock: auto -> estimated from the frames ({type(err).__name__} reading the stream)")
        return None, {"strength": None, "auto": True, "basis": "frames"}
    s = auto_strength(est, blind)
    if log:
        text = est.describe()
        if s != est.strength:
            text = f"strength {s:g}: a blind model on a {'lossy' if s > 0 else 'lossless'} stream (damage {text})"
        log(f"deblock: auto -> {text}" + ("; nothing to remove, frames left untouched" if s <= 0 else ""))
    return s, {"auto": True, **est.to_dict(), "damage": est.strength, "strength": s}


def enhance(input, output=None, *, preset="default", overwrite: bool = False,
            progress: bool | Callable[[int, int], None] = False, resume: bool = False,
            keep_temp: bool = False, report_seams: bool = False,
            log: Callable[[str], None] | None = None, **overrides) -> EnhanceResult:
    """Restore `input` into `output` (default: the config's output.pattern next to the input).

    preset: the config, a configs/ name or a YAML path; overrides: the flat keys of restore.config.ALIASES
    (denoise, scale, fps_multiplier, fps, model, device, codec, crf, encoder_preset, ...) or
    dotted config keys ("chunk.max_len"). progress: True for a tqdm bar on a terminal, or a
    callable(done_frames, total_frames).
    resume: keep every finished chunk in a work folder next to the output
    (restore.io.workdir) and continue from it if an earlier run with the same input and
    settings was interrupted; the folder is removed on success unless keep_temp.
    report_seams: measure how visible the chunk boundaries are (restore.seams) into
    result.seams.
    log: called with one-line notes for the user (the deblock estimate), or None.
    deblock (override): True / "auto" estimates the damage from the stream (bits per pixel and
    the decoder's quantisers; restore.methods.damage) and does nothing on a clean input; a number
    in [0, 1] sets the strength. Strength 0 does not run the method: frames pass bit-exactly.
    """
    from ..device import resolve_device, resolve_precision
    from ..io import VideoWriter, check_output_path, decode, probe
    from ..io.atomic import sweep_stale_temps
    from ..ops.frames import from_float, to_float
    from ..io.workdir import WorkDir, estimate_bytes, work_key

    started = time.perf_counter()
    cfg = load_config(preset, overrides)
    src = Path(os.fspath(input))
    info = probe(src)  # MediaError for missing, empty, corrupt, audio-only, undecodable input
    video = info.video
    notes = _stream_warnings(src, info)
    tasks = wanted_tasks(cfg)
    out = Path(os.fspath(output)) if output is not None else default_output(src, cfg, tasks)
    check_output_path(out, overwrite=overwrite, input_path=src)
    _check_output_dir_writable(out)
    device = resolve_device(cfg.model.device)
    precision = resolve_precision(cfg.model.precision, device)
    specs = select_methods(cfg, tasks)
    scale = cfg.upscale.scale
    multiplier = cfg.interpolate.multiplier
    nominal = float(video.frame_rate) if video.frame_rate else None
    out_fps = cfg.interpolate.fps or (nominal * multiplier if nominal else None)
    # Constructing the writer validates codec, preset, CRF, pixel format, container and size
    # (odd sizes switch to 4:4:4); it creates no file before the first frame is written.
    writer = VideoWriter(
        out, source=info, width=video.width * scale, height=video.height * scale,
        codec=cfg.encode.codec, crf=cfg.encode.crf, preset=cfg.encode.preset,
        bit_depth=cfg.encode.bit_depth, pix_fmt=cfg.encode.pix_fmt, fps=out_fps,
        copy_audio=cfg.encode.copy_audio, copy_subtitles=cfg.encode.copy_subtitles,
        overwrite=overwrite)
    out_dtype = np.uint16 if writer.bit_depth > 8 else np.uint8
    # Temp files of an earlier run that was killed (SIGKILL, power cut) writing this output;
    # those of a live run hold a lock and stay.
    cleaned = sweep_stale_temps(out)

    deblock_info = None
    if "deblock" in specs:
        strength, deblock_info = resolve_deblock(src, cfg.deblock.strength, log, blind=specs["deblock"].blind)
        if strength is not None and strength <= 0:
            del specs["deblock"]  # nothing to remove: the method is not even built
            deblock_info["ran"] = False
        else:
            deblock_info["ran"] = True
    strengths = {"denoise": cfg.denoise.strength,
                 "deblock": deblock_info["strength"] if deblock_info else None}

    def build(task):
        opts = registry.MethodOptions(
            strength=strengths.get(task),
            scale=scale if task == "upscale" else 1, device=device, precision=precision, steps=cfg.model.steps,
            start_sigma=cfg.model.start_sigma, seed=cfg.model.seed, tile=cfg.model.tile,
            extra={"damage": deblock_info.get("damage")} if task == "deblock" and deblock_info else {})
        return specs[task].factory(opts)

    deinterlace = resolve_deinterlace(src, cfg.input.deinterlace, video.field_order, log)
    if deinterlace:
        decode = functools.partial(decode, deinterlace=deinterlace)
    if cfg.input.on_error == "skip":
        decode = functools.partial(decode, strict=False)
    _check_memory(src, cfg, video.width, video.height, scale, writer.bit_depth)
    stages = {task: build(task) for task in specs}

    profile: dict[str, float] = {"setup": time.perf_counter() - started}  # probe, checks, model load
    seams = None
    work = None
    saved = None
    if resume:
        work = WorkDir(out, work_key(src, _work_settings(cfg, device, specs, out_dtype, precision)))
        work.acquire()
    try:
        if work is not None:
            cleaned += work.sweep_others()
            saved = work.load()
        if saved is not None:
            plan = ChunkPlan.from_json(saved["meta"]["plan"])
            times = [float(t) for t in saved["meta"]["times"]]
            done_chunks = saved["chunks_done"]
        else:
            # Pass 1: thumbnails, key flags, timestamps.
            t0 = time.perf_counter()
            ch = cfg.chunk
            analyser = Analyser(CutDetector(ch.cut_floor, ch.cut_ratio, ch.cut_window))
            times = []
            for f in decode(src, size=THUMB_SIZE, gray=True):
                analyser.add(f.image, f.key)
                times.append(float(f.time))
            if not times:
                raise MediaError("no decodable video frames", src)
            plan = plan_chunks(analyser.result(), ch.min_len, ch.max_len, ch.overlap)
            done_chunks = 0
            profile["analysis"] = time.perf_counter() - t0
        schedule = build_schedule(times, multiplier, cfg.interpolate.fps, nominal)
        if work is not None and saved is None:
            need = estimate_bytes(sum(len(s) for s in schedule), writer.width, writer.height,
                                  np.dtype(out_dtype).itemsize)
            free = shutil.disk_usage(work.path).free
            if free < need + (256 << 20):
                raise RestoreError(
                    f"not enough free disk for --resume: its work folder needs about "
                    f"{need / 2**30:.1f} GiB (a lossless copy of the output frames), "
                    f"{free / 2**30:.1f} GiB free in {work.path.parent}; free some space or run "
                    "without --resume", out)
            work.start({"plan": plan.to_json(), "times": times, "input": str(src)})

        with warnings.catch_warnings():
            if notes:  # said once above, up front; the muxer would say it again at the end
                warnings.filterwarnings("ignore", message=r".*video stream #\d+ .*not carried over")
            if report_seams:
                from ..seams import SeamMeter

                seams = SeamMeter(plan)
            restore_pass(src, out, plan, times, schedule, stages, writer, out_dtype, work,
                          done_chunks, progress, decode, to_float, from_float, seams=seams,
                          profile=profile)
    except DamagedMediaError as err:
        _keep_or_remove(work)
        raise DamagedMediaError(f"{err.message}; --on-error skip restores the rest, without the "
                                "damaged frames", src) from None
    except BaseException:
        _keep_or_remove(work)
        raise
    work_bytes = 0
    if work is not None:
        work_bytes = work.peak_bytes
        if keep_temp:
            work.release()
        else:
            work.remove()
    seconds = time.perf_counter() - started
    profile["wall"] = seconds
    profile["model"] = sum(v for k, v in profile.items() if k.startswith("model_"))
    profile["overhead"] = seconds - profile["model"]
    return EnhanceResult(
        output=str(out), frames_in=len(times), frames_out=writer.frames_written, seconds=seconds,
        fps=len(times) / seconds if seconds > 0 else 0.0, chunks=len(plan),
        methods={**({"deinterlace": "bwdif"} if deinterlace else {}), **{t: s.name for t, s in specs.items()}},
        input=str(src),
        width=writer.width, height=writer.height, cuts=list(plan.cuts), device=device,
        output_fps=out_fps, resumed_chunks=done_chunks,
        work_dir=None if work is None else str(work.path), work_bytes=work_bytes,
        kept_work_dir=bool(work is not None and keep_temp), cleaned=cleaned, warnings=notes,
        seams=None if seams is None else seams.report().to_dict(), profile=profile, deblock=deblock_info)


# ------------------------------------------------------------------------------------------
# restore ladder (`restore compare --restore-ladder`)
# ------------------------------------------------------------------------------------------
def restore_ladder(reference, spec_text: str, out_dir, *, overrides: dict, preset: str = "medium",
                   label: str | None = None, log: Callable[[str], None] | None = None) -> list[tuple]:
    """What restoration buys in bitrate: BD-rate of (encode, then restore) against (encode only) over a
    CRF ladder, on the same reference (the API behind `restore compare REF --restore-ladder ...`).

    Both curves go through the same code path: every ladder encode is run through restore.enhance twice,
    once with the restoration asked for and once with no task at all, both into lossless FFV1 (planar
    RGB). The anchor is then the encode exactly as a player shows it, after the same YUV -> RGB
    conversion the restored frames went through, so the BD numbers measure the restoration and nothing
    else; the rate of both points is the encode's own video bitrate (restoration happens at the
    receiving end and costs no bits).

    Encode `reference` per `spec_text` ('libx264:23,27,32,37'), restore each encode with the
    enhance `overrides` (e.g. {"deblock": "auto"}), and return compare() items:
    [(anchor label, pass-through path, encode path), ..., (test label, restored path, encode path), ...]."""
    from ..metrics.ladder import encode_ladder, parse_encode

    specs = parse_encode(spec_text)
    out_dir = Path(out_dir)
    encodes = encode_ladder(reference, specs, out_dir, preset=preset)
    tasks = "+".join(k for k in ("deblock", "denoise") if overrides.get(k) not in (None, False)) or "restored"
    anchor = specs[0].label
    test = label or f"{anchor}+{tasks}"
    anchors, tests = [], []
    for spec, enc in zip(specs, encodes):
        plain = out_dir / f"{enc.stem}_plain.mkv"
        restored = out_dir / f"{enc.stem}_{tasks}.mkv"
        enhance(enc, plain, codec="ffv1", overwrite=True)
        res = enhance(enc, restored, codec="ffv1", overwrite=True, **overrides)
        if log is not None:
            note = ""
            if res.deblock:
                d = res.deblock
                note = f" (deblock strength {d['strength']:.2f}" + (" auto" if d.get("auto") else "") + ")"
            log(f"{spec.codec} CRF {spec.crf}: restored{note}")
        anchors.append((anchor, str(plain), str(enc)))
        tests.append((test, str(restored), str(enc)))
    return anchors + tests
