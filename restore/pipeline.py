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
"""
from __future__ import annotations

import contextlib
import inspect
import os
import queue
import shutil
import sys
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import methods as _methods  # noqa: F401  (registers the built-in methods)
from . import registry
from .chunks import THUMB_SIZE, Analyser, ChunkPlan, CutDetector, plan_chunks
from .config import EnhanceConfig, load_config, output_name
from .errors import ConfigError, MediaError, RestoreError


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
# method selection
# ------------------------------------------------------------------------------------------
def wanted_tasks(cfg: EnhanceConfig) -> list[str]:
    tasks = []
    if cfg.deblock.enabled:
        tasks.append("deblock")
    if cfg.denoise.enabled:
        tasks.append("denoise")
    if cfg.upscale.scale > 1:
        tasks.append("upscale")
    if cfg.interpolate.multiplier > 1 or cfg.interpolate.fps is not None:
        tasks.append("interpolate")
    return tasks


def select_methods(cfg: EnhanceConfig, tasks: list[str]) -> dict[str, registry.MethodSpec]:
    """Registry spec per task: the task's own method, else model.name (a family or a method
    name), else the registry default for the scale."""
    model = cfg.model.name
    all_specs = registry.methods()
    if model is not None:
        families = {s.family for s in all_specs}
        names = {s.name for s in all_specs}
        if model not in families and model not in names:
            raise ConfigError(f"unknown model {model!r} (families: {', '.join(sorted(families))}; "
                              f"methods: {', '.join(sorted(names))}; see `restore models`)")
    chosen = {}
    for task in tasks:
        scale = cfg.upscale.scale if task == "upscale" else 1
        name = getattr(cfg, task).method
        if name is None and model is not None:
            task_specs = [s for s in all_specs if s.task == task]
            if any(s.name == model for s in task_specs):
                name = model
            elif any(s.family == model for s in task_specs):
                fam = [s for s in task_specs if s.family == model and scale in s.scales]
                if not fam:
                    raise ConfigError(f"no {model} method for {task} at scale {scale}")
                default = registry.get(task, None, scale)
                name = default.name if default.family == model else fam[0].name
        chosen[task] = registry.get(task, name, scale)
    return chosen


# ------------------------------------------------------------------------------------------
# output path
# ------------------------------------------------------------------------------------------
def default_output(src: Path, cfg: EnhanceConfig, tasks: list[str]) -> Path:
    return src.with_name(output_name(src.name, cfg.output.pattern,
                                     task="-".join(tasks) or "reencode", scale=cfg.upscale.scale))


# ------------------------------------------------------------------------------------------
# timeline
# ------------------------------------------------------------------------------------------
def _last_duration(times: list[float], nominal: float | None) -> float:
    gaps = [b - a for a, b in zip(times[-6:], times[-5:]) if b > a]
    if gaps:
        return float(np.median(gaps))
    return 1.0 / nominal if nominal else 1.0 / 25


def build_schedule(times: list[float], multiplier: int, fps: float | None,
                   nominal_fps: float | None) -> list[list[tuple[float, float]]]:
    """Per source frame i: [(fraction in [0, 1), output time)] emitted in the gap after frame i.

    Fraction 0 is frame i itself; others are interpolated (or repeated at cuts/the end)."""
    n = len(times)
    ends = list(times[1:]) + [times[-1] + _last_duration(times, nominal_fps)]
    sched: list[list[tuple[float, float]]] = []
    if fps is None:
        for i in range(n):
            t0, t1 = times[i], ends[i]
            if t1 <= t0:  # duplicate or backwards timestamps: emit the frame only
                sched.append([(0.0, t0)])
                continue
            sched.append([(k / multiplier, t0 + (t1 - t0) * k / multiplier) for k in range(multiplier)])
        return sched
    step = 1.0 / fps
    start, stop = times[0], ends[-1]
    count = int(np.floor((stop - start) / step + 1e-6))
    grid = [start + j * step for j in range(max(count, 1))]
    sched = [[] for _ in range(n)]
    i = 0
    for g in grid:
        while i + 1 < n and times[i + 1] <= g + 1e-6:
            i += 1
        t0, t1 = times[i], ends[i]
        frac = 0.0 if t1 <= t0 or abs(g - t0) <= 1e-6 else min(max((g - t0) / (t1 - t0), 0.0), 1.0 - 1e-9)
        sched[i].append((frac, g))
    return sched


# ------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------
class _Progress:
    def __init__(self, progress, total: int):
        self.callback = progress if callable(progress) else None
        self.bar = None
        self.done = 0
        self.total = total
        if progress is True and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", desc="restoring", dynamic_ncols=True,
                            file=sys.stderr, smoothing=0.1)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------
# the pipeline
# ------------------------------------------------------------------------------------------
def _stream_warnings(src: Path, info) -> list[str]:
    """Say up front what the output will lack: only the first video stream is restored; others
    (a second angle, a picture-in-picture feed) are not carried over. Cover art is, as an
    attachment."""
    from .io.mux import MediaWarning

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
    queued = _encode_queue_frames(per_out)
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
    from .io.atomic import discard_temp, temp_path_for

    discard_temp(temp_path_for(out, tag="check-"))


def _takes_start_index(fn) -> bool:
    """Whether a restorer accepts start_index= (the absolute index of its first frame, from which
    diffusion restorers derive their noise seed: a resumed run then draws the same noise as an
    uninterrupted one). Older or third-party restorers do not, and are called without it."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "start_index" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _work_settings(cfg: EnhanceConfig, device: str, specs, out_dtype) -> dict:
    """What decides the frames handed to the encoder, for the resume work key: everything but
    the encoder's own settings (a resume may change --crf) and the output name."""
    from . import __version__

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
    return {"config": d, "device": device, "methods": {t: s.name for t, s in specs.items()},
            "dtype": np.dtype(out_dtype).name, "restore": __version__, "weights": weights}


def resolve_deblock(src: Path, strength: float | None, log: Callable[[str], None] | None = None) -> tuple[float | None, dict]:
    """The deblock strength of a run: the given one, or (None = auto) the estimate from the
    stream (restore.methods.damage): once per video, so it cannot flicker from chunk to chunk."""
    if strength is not None:
        info = {"strength": float(strength), "auto": False}
        if log:
            log(f"deblock: strength {strength:g}")
        return float(strength), info
    from .methods.damage import estimate_from_stream

    try:
        est = estimate_from_stream(src)
    except Exception as err:  # noqa: BLE001 - the probe only informs a default: fall back to the frames
        if log:
            log(f"deblock: auto -> estimated from the frames ({type(err).__name__} reading the stream)")
        return None, {"strength": None, "auto": True, "basis": "frames"}
    if log:
        log(f"deblock: auto -> {est.describe()}" + ("; nothing to remove, frames left untouched"
                                                   if est.strength <= 0 else ""))
    return est.strength, {"auto": True, **est.to_dict()}


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
    from .device import resolve_device
    from .io import VideoWriter, check_output_path, decode, probe
    from .io.atomic import sweep_stale_temps
    from .ops.frames import from_float, to_float
    from .io.workdir import WorkDir, estimate_bytes, work_key

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
        strength, deblock_info = resolve_deblock(src, cfg.deblock.strength, log)
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
            scale=scale if task == "upscale" else 1, device=device, steps=cfg.model.steps,
            start_sigma=cfg.model.start_sigma, seed=cfg.model.seed, tile=cfg.model.tile)
        return specs[task].factory(opts)

    _check_memory(src, cfg, video.width, video.height, scale, writer.bit_depth)
    stages = {task: build(task) for task in specs}

    profile: dict[str, float] = {"setup": time.perf_counter() - started}  # probe, checks, model load
    seams = None
    work = None
    saved = None
    if resume:
        work = WorkDir(out, work_key(src, _work_settings(cfg, device, specs, out_dtype)))
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
                from .seams import SeamMeter

                seams = SeamMeter(plan)
            _restore_pass(src, out, plan, times, schedule, stages, writer, out_dtype, work,
                          done_chunks, progress, decode, to_float, from_float, seams=seams,
                          profile=profile)
    except BaseException:
        if work is not None:
            if work.load() is not None and work.load()["chunks_done"] > 0:
                work.release()  # kept: the next --resume run continues from it
            else:
                work.remove()  # nothing finished yet: nothing worth keeping
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
        methods={t: s.name for t, s in specs.items()}, input=str(src),
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
    from .metrics.ladder import encode_ladder, parse_encode

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


# Frames the decoder may run ahead of the restorer, and output frames the restorer may run ahead
# of the encoder: bounded, so memory stays a few chunks whatever the video's length.
DECODE_AHEAD_CHUNKS = 1
ENCODE_QUEUE_FRAMES = 64
ENCODE_QUEUE_BYTES = 256 << 20


def _encode_queue_frames(frame_bytes: int) -> int:
    """Output frames (float32) the encoder queue holds: 64, fewer for big frames (4K: 2 GiB)."""
    return max(4, min(ENCODE_QUEUE_FRAMES, ENCODE_QUEUE_BYTES // max(1, frame_bytes)))


class _Stop(Exception):
    """Raised inside a pipeline thread when the main thread gives up."""


def _put(q: queue.Queue, item, stop: threading.Event, other: "_Worker | None" = None) -> None:
    """q.put that gives up when the run stops or the thread at the other end died."""
    while True:
        if stop.is_set():
            raise _Stop()
        if other is not None:
            other.check()
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _Worker(threading.Thread):
    """A pipeline thread whose exception is handed to the main thread (check())."""

    def __init__(self, name, target):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self):
        try:
            self._target_fn()
        except _Stop:
            pass
        except BaseException as err:  # handed over, re-raised in the main thread
            self.error = err

    def check(self) -> None:
        if self.error is not None:
            err, self.error = self.error, None
            raise err


def _restore_pass(src, out, plan, times, schedule, stages, writer, out_dtype, work, done_chunks,
                  progress, decode, to_float, from_float, seams=None, profile=None) -> None:
    """Pass 2: replay the chunks a work folder already holds, restore the rest chunk by chunk,
    interpolate, encode.

    Three threads overlap: a decoder (source frames into a queue at most one chunk ahead), the
    restorer (this thread: the model stages and interpolation) and an encoder (output frames from
    a bounded queue into the final encoder and the work folder's segments, plus the chunk
    commits, in order). Models and codecs release the GIL, so a fast method is not held up by
    I/O. Only the encoder thread touches the writers until it has been joined."""
    profile = profile if profile is not None else {}
    bar = _Progress(progress, len(times))
    stop = threading.Event()
    todo = plan.chunks[done_chunks:]
    in_q: queue.Queue = queue.Queue(maxsize=max(1, DECODE_AHEAD_CHUNKS * plan.max_len))
    out_q: queue.Queue = queue.Queue(maxsize=_encode_queue_frames(writer.width * writer.height * 12))
    enc_busy = [0.0]

    def decoder():
        frames = decode(src)
        try:
            skip = todo[0].start if todo else 0
            need = todo[-1].end if todo else 0
            n = 0
            # Frames before the first chunk left to do are decoded and dropped: their restored
            # anchors come from the work folder, and seeking is not frame-exact in every format.
            if need:
                for f in frames:
                    if n >= skip:
                        _put(in_q, to_float(f.image), stop)
                    n += 1
                    if n >= need:
                        break
            _put(in_q, None, stop)
        finally:
            frames.close()

    def encoder():
        seg = None
        seg_times: list[float] = []
        try:
            while True:
                try:
                    item = out_q.get(timeout=0.1)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                t0 = time.perf_counter()
                kind = item[0]
                if kind == "frame":
                    frame = from_float(item[1], out_dtype)
                    writer.write(frame, item[2])
                    if seg is not None:
                        seg.write(frame)
                        seg_times.append(item[2])
                elif kind == "segment":
                    seg, seg_times = _segment_writer(work, item[1], writer, out_dtype), []
                elif kind == "commit":
                    if seg.frames_written:
                        seg.close()
                    else:
                        seg.abort()
                    seg = None
                    work.commit(item[1], seg_times, item[2])
                elif kind == "end":
                    return
                enc_busy[0] += time.perf_counter() - t0
        finally:
            if seg is not None:
                seg.abort()

    dec = _Worker("restore-decode", decoder)
    enc = _Worker("restore-encode", encoder)

    def stop_threads():
        stop.set()
        for th in (enc, dec):
            if th.is_alive():
                th.join()

    try:
        with writer:
            try:
                _restore_chunks(src, plan, times, schedule, stages, writer, work, done_chunks, todo,
                                decode, bar, profile, seams, stop, in_q, out_q, dec, enc)
                t0 = time.perf_counter()
                enc.join()
                enc.check()
                profile["encode_drain"] = time.perf_counter() - t0
                dec.join()
                dec.check()
            finally:
                # Error or Ctrl-C included: the threads stop before `with writer` removes the
                # files they might still be writing.
                stop_threads()
            t0 = time.perf_counter()
        profile["close"] = time.perf_counter() - t0  # flush, remux of audio/subtitles, rename
        profile["encode"] = enc_busy[0]
    finally:
        stop_threads()
        bar.close()


def _restore_chunks(src, plan, times, schedule, stages, writer, work, done_chunks, todo, decode,
                    bar, profile, seams, stop, in_q, out_q, dec, enc) -> None:
    """The restorer thread's part of _restore_pass."""
    def emit(img: np.ndarray, t: float) -> None:
        t0 = time.perf_counter()
        _put(out_q, ("frame", img, t), stop, enc)
        profile["encode_wait"] = profile.get("encode_wait", 0.0) + time.perf_counter() - t0

    runner = _ChunkRunner(plan, stages.get("denoise"), stages.get("upscale"),
                          stages.get("interpolate"), schedule, emit, seams=seams, profile=profile,
                          deblocker=stages.get("deblock"))
    if done_chunks:
        t0 = time.perf_counter()
        _replay(work, done_chunks, writer, decode)
        runner.load_state(work.state())
        bar.update(plan.chunks[done_chunks - 1].end)
        profile["replay"] = time.perf_counter() - t0
    dec.start()
    enc.start()
    decoded = todo[0].start if todo else 0
    for chunk in todo:
        buf = []
        t0 = time.perf_counter()
        while len(buf) < len(chunk):
            dec.check()
            try:
                img = in_q.get(timeout=0.1)
            except queue.Empty:
                if not dec.is_alive():
                    dec.check()
                    break
                continue
            if img is None:
                break
            buf.append(img)
            decoded += 1
        profile["decode_wait"] = profile.get("decode_wait", 0.0) + time.perf_counter() - t0
        if len(buf) < len(chunk):
            raise MediaError(f"decoded {decoded} frames on the second pass but {len(times)} "
                             "on the first", src)
        if work is not None:
            _put(out_q, ("segment", chunk.index), stop, enc)
        runner.run(chunk, np.stack(buf))
        if work is not None:
            _put(out_q, ("commit", chunk.index, runner.state()), stop, enc)
        bar.update(len(chunk))
    runner.finish()
    _put(out_q, ("end",), stop, enc)


def _segment_writer(work, k: int, writer, out_dtype):
    from .io import VideoWriter

    # FFV1 stores planar RGB exactly (bgr0 for 8 bits, gbrp16le for 16): the frames read back
    # are the very arrays given to the final encoder.
    return VideoWriter(work.segment_path(k), codec="ffv1", width=writer.width, height=writer.height,
                       bit_depth=16 if np.dtype(out_dtype).itemsize > 1 else 8, fps=25,
                       copy_audio=False, copy_subtitles=False, copy_attachments=False, overwrite=True)


def _replay(work, done_chunks: int, writer, decode) -> None:
    """Feed the frames of the committed chunks to the final encoder, with their exact times."""
    for k in range(done_chunks):
        times = work.times(k)
        if not len(times):
            continue
        n = 0
        for f in decode(work.segment_path(k)):
            if n >= len(times):
                break
            writer.write(f.image, float(times[n]))
            n += 1
        if n != len(times):
            raise MediaError(f"resume work folder is damaged (chunk {k}: {n} of {len(times)} frames); "
                             f"delete {work.path} and run again", work.output)


class _Timed:
    """A restorer that adds its wall time to profile["model_<task>"] (the profile's split between
    the model and everything else is what `restore enhance --profile` reports)."""

    def __init__(self, fn, profile: dict, name: str):
        self.fn, self.profile, self.key = fn, profile, f"model_{name}"

    def __call__(self, *args, **kw):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kw)
        finally:
            self.profile[self.key] = self.profile.get(self.key, 0.0) + time.perf_counter() - t0


class _ChunkRunner:
    """Runs the spatial stages on a chunk, keeps anchors, and emits interpolated output frames."""

    def __init__(self, plan: ChunkPlan, denoiser, upscaler, interpolator, schedule, emit, *,
                 seams=None, profile: dict | None = None, deblocker=None):
        self.plan = plan
        named = (("deblock", deblocker), ("denoise", denoiser), ("upscale", upscaler), ("interpolate", interpolator))
        self._indexed = {name: fn is not None and _takes_start_index(fn) for name, fn in named}
        self.profile = profile if profile is not None else {}
        self.deblocker, self.denoiser, self.upscaler, self.interpolator = (
            None if fn is None else _Timed(fn, self.profile, name) for name, fn in named)
        self.schedule = schedule
        self.emit = emit
        self.seams = seams  # restore.seams.SeamMeter, or None
        self.keep = max(plan.overlap, 0)
        self.tails: dict[str, dict[int, np.ndarray]] = {"deblock": {}, "denoise": {}, "upscale": {}}
        self.prev: tuple[int, np.ndarray] | None = None  # last restored frame not yet emitted

    def state(self) -> dict[str, np.ndarray]:
        """Everything the next chunk needs (anchors, held frame), as exact arrays (resume)."""
        d: dict[str, np.ndarray] = {}
        for name, tail in self.tails.items():
            idx = sorted(tail)
            d[f"{name}_idx"] = np.asarray(idx, dtype=np.int64)
            if idx:
                d[f"{name}_frames"] = np.stack([tail[i] for i in idx])
        if self.prev is not None:
            d["prev_idx"] = np.asarray([self.prev[0]], dtype=np.int64)
            d["prev_frame"] = self.prev[1]
        return d

    def load_state(self, d: dict[str, np.ndarray]) -> None:
        for name in self.tails:
            idx = [int(i) for i in d.get(f"{name}_idx", [])]
            frames = d.get(f"{name}_frames")
            self.tails[name] = {i: frames[n] for n, i in enumerate(idx)} if idx else {}
        self.prev = (int(d["prev_idx"][0]), d["prev_frame"]) if "prev_idx" in d else None

    def _stage(self, name, fn, chunk, frames):
        if fn is None:
            return frames
        tail = self.tails[name]
        anchors = None
        if chunk.anchors and all(a in tail for a in chunk.anchors):
            anchors = np.stack([tail[a] for a in chunk.anchors])
        kw = {"start_index": chunk.start} if self._indexed[name] else {}
        out = np.asarray(fn(frames, anchors=anchors, **kw), dtype=np.float32)
        if out.shape[0] != frames.shape[0]:
            raise RuntimeError(f"{name} method returned {out.shape[0]} frames for {frames.shape[0]}")
        self.tails[name] = {chunk.start + i: out[i] for i in range(max(0, len(out) - self.keep), len(out))}
        return out

    def run(self, chunk, frames: np.ndarray) -> None:
        inputs = frames
        frames = self._stage("deblock", self.deblocker, chunk, frames)
        frames = self._stage("denoise", self.denoiser, chunk, frames)
        frames = self._stage("upscale", self.upscaler, chunk, frames)
        if self.seams is not None:
            t0 = time.perf_counter()
            self.seams.add_chunk(chunk.start, inputs, frames)
            self.profile["seams"] = self.profile.get("seams", 0.0) + time.perf_counter() - t0
        # Pairs (i, i+1) whose gap can now be filled: the held frame from the previous chunk and
        # every pair inside this chunk. The chunk's last frame waits for the next chunk.
        seq = ([self.prev] if self.prev is not None else []) + \
              [(chunk.start + i, frames[i]) for i in range(len(frames))]
        self._fill(seq)
        self.prev = seq[-1]

    def finish(self) -> None:
        if self.prev is not None:
            i, img = self.prev
            for _frac, t in self.schedule[i]:  # after the last frame: repeats within its duration
                self.emit(img, t)
            self.prev = None

    def _fill(self, seq) -> None:
        from .ops.flow import FLOW_CACHE_BYTES, flow_cache, pair_flow_bytes

        pairs = list(zip(seq, seq[1:]))
        # One interpolator call per run of consecutive same-shot pairs at one fraction (see
        # _interp_calls), then emit in timeline order. The flow cache makes every fraction of a
        # pair after the first reuse its DIS flow, whichever interpolator estimates it.
        middles: dict[tuple[int, float], np.ndarray] = {}
        if self.interpolator is not None and pairs:
            h, w = pairs[0][0][1].shape[:2]
            with flow_cache(FLOW_CACHE_BYTES):
                for t, run in self._interp_calls(pairs, max(1, FLOW_CACHE_BYTES // pair_flow_bytes(h, w))):
                    first = np.stack([pairs[k][0][1] for k, _ in run])
                    second = np.stack([pairs[k][1][1] for k, _ in run])
                    kw = {"start_index": pairs[run[0][0]][0][0]} if self._indexed["interpolate"] else {}
                    mids = np.asarray(self.interpolator(first, second, t, **kw), dtype=np.float32)
                    for (k, frac), m in zip(run, mids):
                        middles[(k, frac)] = m
        for k, ((i, a), _) in enumerate(pairs):
            for frac, t in self.schedule[i]:
                # fraction 0 is the frame itself; at a scene cut the earlier frame is repeated
                self.emit(middles.get((k, frac), a) if frac > 0 else a, t)

    def _interp_calls(self, pairs, segment: int) -> list[tuple[float, list[tuple[int, float]]]]:
        """Interpolator calls for `pairs`: (t, [(pair position, its exact fraction), ...]).

        The Interpolator contract treats the pairs of one call as consecutive pairs of one shot
        (diffusion interpolators restore them as one temporal window), so a call gets a run of
        consecutive pairs that all want the same fraction: with --fps-multiplier every pair of a
        shot, with --fps (fractions differ from pair to pair) often a single pair. Pairs are
        taken in segments of at most `segment` same-shot pairs, whose flows all fit the flow
        cache, and all fractions of a segment are done before the next one: a cyclic scan over
        more pairs than an LRU holds would never hit it.
        """
        calls: list[tuple[float, list[tuple[int, float]]]] = []
        segments: list[list[int]] = []
        for k, ((i, _), (j, _)) in enumerate(pairs):
            if self.plan.shot_of(i) != self.plan.shot_of(j):
                segments.append([])  # never across a cut: the earlier frame is repeated there
                continue
            if not segments or len(segments[-1]) >= segment or (segments[-1] and segments[-1][-1] != k - 1):
                segments.append([])
            segments[-1].append(k)
        for ks in segments:
            # fractions equal to 1e-6 are one t: --fps grids give the same fraction with float noise
            wanted = [{round(f, 6): f for f, _t in self.schedule[pairs[k][0][0]] if f > 0} for k in ks]
            order = list(dict.fromkeys(key for w in wanted for key in w))
            for key in order:
                run: list[tuple[int, float]] = []
                for k, w in zip(ks, wanted):
                    if key in w:
                        run.append((k, w[key]))
                    elif run:
                        calls.append((run[0][1], run))
                        run = []
                if run:
                    calls.append((run[0][1], run))
        return calls
