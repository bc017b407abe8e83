"""Tasks of the benchmark and the methods that compete on them, behind one contract:

    spatial method:      f(frames_u8 (T, H, W, 3)) -> uint8 (T, H*s, W*s, 3)   (one call = one clip, one shot)
    interpolate method:  f(first_u8, second_u8 (N, H, W, 3), t=0.5) -> uint8 (N, H, W, 3) at time t

Our methods come from the registry (restore.registry), every one registered for the task by its
registry name, so a model registered later shows up without a change here; peers come from
restore.eval.peers. Registry methods get the true noise sigma as their strength (non-blind, like
DVDnet) and their float outputs are rounded to 8 bits, as the video a user gets would be.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from restore.errors import RestoreError

DEFAULT_TASKS = ("denoise15", "denoise25", "denoise50", "sr2", "sr4", "interp")
# `--tasks deblock`: the compression-artefact protocols of issue #14 (x264 CRF 18 is the no-harm row).
DEBLOCK_TASKS = ("deblock-x264crf18", "deblock-x264crf23", "deblock-x264crf30", "deblock-x264crf37",
                 "deblock-x265crf32")


class BenchError(RestoreError):
    """Bad benchmark arguments (one line)."""


@dataclass(frozen=True)
class Task:
    name: str                 # as given on the command line: denoise25, sr4, interp
    kind: str                 # registry task: deblock, denoise, upscale, interpolate
    sigma: float | None = None
    scale: int = 1
    codec: str | None = None  # compression tasks: libx264 / libx265 at `crf`, restored blind
    crf: int | None = None
    factor: int = 2           # interpolation: the frame-rate multiplier (times k / factor between pairs)

    @property
    def label(self) -> str:
        if self.kind == "deblock":
            return (f"compression artefacts, {self.codec} CRF {self.crf} (blind: strength estimated from the "
                    "stream, as --deblock auto)")
        if self.codec:
            return f"compression artefacts, {self.codec} CRF {self.crf} (blind: strength estimated)"
        if self.kind == "denoise":
            return f"denoising, sigma {self.sigma:g}"
        if self.kind == "upscale":
            return f"super-resolution x{self.scale} (BI)"
        if self.factor == 2:
            return "interpolation x2 (t = 1/2)"
        times = ", ".join(f"{k}/{self.factor}" for k in range(1, self.factor))
        return f"interpolation x{self.factor} (t = {times})"


def parse_task(name: str) -> Task:
    name = name.strip().lower()
    if m := re.fullmatch(r"denoise(\d+(?:\.\d+)?)", name):
        sigma = float(m.group(1))
        if not 0 < sigma <= 255:
            raise BenchError(f"--tasks {name}: noise sigma must be in (0, 255]")
        return Task(name, "denoise", sigma=sigma)
    if m := re.fullmatch(r"sr(\d)", name):
        scale = int(m.group(1))
        if scale not in (2, 3, 4):
            raise BenchError(f"--tasks {name}: scale must be 2, 3 or 4")
        return Task(name, "upscale", scale=scale)
    if name in ("interp", "interp2"):
        return Task("interp", "interpolate")
    if m := re.fullmatch(r"interp(\d)", name):
        factor = int(m.group(1))
        if factor not in (3, 4):
            raise BenchError(f"--tasks {name}: interpolation factor must be 2, 3 or 4")
        return Task(name, "interpolate", factor=factor)
    if m := re.fullmatch(r"deblock-(x264|x265)crf(\d+)", name):
        crf = int(m.group(2))
        if not 0 <= crf <= 51:
            raise BenchError(f"--tasks {name}: CRF must be in 0..51")
        return Task(name, "deblock", codec="lib" + m.group(1), crf=crf)
    if m := re.fullmatch(r"(x264|x265)crf(\d+)", name):
        crf = int(m.group(2))
        if not 0 <= crf <= 51:
            raise BenchError(f"--tasks {name}: CRF must be in 0..51")
        return Task(name, "denoise", codec="lib" + m.group(1), crf=crf)
    raise BenchError(f"--tasks: unknown task {name!r} (denoise<sigma>, sr2, sr4, interp, interp3, interp4, "
                     f"x264crf<N>, x265crf<N>, deblock-x264crf<N>, deblock-x265crf<N>, "
                     f"deblock = {','.join(DEBLOCK_TASKS)}; default {','.join(DEFAULT_TASKS)})")


def parse_tasks(names) -> list[Task]:
    if isinstance(names, str):
        names = names.split(",")
    expanded = []
    for n in names:
        expanded += list(DEBLOCK_TASKS) if n.strip().lower() == "deblock" else [n]
    tasks = [parse_task(n) for n in expanded if n.strip()]
    if not tasks:
        raise BenchError("--tasks: no task given")
    return list(dict.fromkeys(tasks))


@dataclass
class Candidate:
    """One method on one task. `make()` builds the callable (weights loaded, not timed); `skip`
    is the reason it cannot run here (listed in the report, never dropped)."""
    name: str
    family: str               # "ours" (registry, diffusion), "classical" (registry) or "peer"
    description: str
    make: Callable[[], Callable] | None = None
    params: dict = field(default_factory=dict)
    skip: str | None = None


def _spatial(restorer) -> Callable[[np.ndarray], np.ndarray]:
    from restore.ops.frames import from_float, to_float

    def run(frames_u8: np.ndarray) -> np.ndarray:
        return from_float(restorer(to_float(frames_u8)), np.uint8)

    return run


def _interpolator(interp) -> Callable:
    from restore.ops.frames import from_float, to_float

    def run(first_u8: np.ndarray, second_u8: np.ndarray, t: float = 0.5) -> np.ndarray:
        return from_float(interp(to_float(first_u8), to_float(second_u8), t), np.uint8)

    return run


def _per_frame(method: Callable) -> Callable:
    """The same spatial method called on one frame at a time: no temporal context, no anchors."""
    def run(frames_u8: np.ndarray) -> np.ndarray:
        return np.concatenate([method(frames_u8[i:i + 1]) for i in range(len(frames_u8))])

    return run


def registry_candidates(task: Task, device: str, steps=None, per_frame: bool = False,
                        deblock_estimate=None, precision: str = "fp32") -> list[Candidate]:
    """Every registry method of the task (at its scale). `steps`: sampling step counts to run our
    (non-classical) models at, each as its own row `name@k` (a steps sweep); None = their default.
    `per_frame`: also run our models on denoise/upscale one frame per call, as rows `name:per-frame`
    (what the clip-joint call gains in E_warp and PSNR over frame-by-frame processing).
    `deblock_estimate`: the deblock tasks' DamageEstimate of the encoded stream; each deblock
    method gets its auto strength from it (damage.auto_strength, as `restore enhance --deblock`
    does); where that is below 1, our models also get a row `name:full` at strength 1."""
    import restore.methods  # noqa: F401  (registers the built-in methods)
    from restore.methods.damage import auto_strength
    from restore.registry import MethodOptions, methods

    out = []
    for spec in methods(task.kind):
        if task.kind == "upscale" and task.scale not in spec.scales:
            continue
        family = "classical" if spec.family == "classical" else "ours"
        variants = [(spec.name, None)] if family == "classical" or not steps else [(f"{spec.name}@{k}", int(k)) for k in steps]
        auto = auto_strength(deblock_estimate, spec.blind) if deblock_estimate is not None else None
        for name, k in variants:
            strength = task.sigma if task.kind == "denoise" else auto if task.kind == "deblock" else None
            damage = deblock_estimate.strength if task.kind == "deblock" and deblock_estimate is not None else None
            opts = MethodOptions(strength=strength, scale=task.scale, device=device, steps=k,
                                 precision=precision, extra={"damage": damage} if damage is not None else {})

            def make(spec=spec, opts=opts):
                fn = spec.factory(opts)
                return _interpolator(fn) if task.kind == "interpolate" else _spatial(fn)

            params = {}
            if task.kind == "deblock":
                params = {"strength (auto)": auto} if auto is not None else {"strength": "estimated"}
            if task.kind == "denoise":
                params = {"strength (true sigma)": task.sigma} if task.sigma is not None else {"strength": "estimated"}
            if k is not None:
                params["steps"] = k
            out.append(Candidate(name, family, spec.description, make, params))
            if task.kind == "deblock" and family == "ours" and (auto is None or auto < 1):
                full = MethodOptions(strength=1.0, device=device, steps=k, precision=precision)
                out.append(Candidate(f"{name}:full", family, spec.description + " (strength 1)",
                                     lambda spec=spec, full=full: _spatial(spec.factory(full)), {"strength": 1.0}))
            if per_frame and family == "ours" and task.kind != "interpolate":
                out.append(Candidate(f"{name}:per-frame", family, spec.description + " (one frame per call)",
                                     lambda make=make: _per_frame(make()), {**params, "frames per call": 1}))
    return out


def selected(name: str, wanted: set[str] | None) -> bool:
    """--methods filter: a name, or the base name of a variant (diffusion selects diffusion@4 and
    diffusion:per-frame)."""
    return wanted is None or name in wanted or base_name(name) in wanted


def base_name(name: str) -> str:
    return name.split(":")[0].split("@")[0]


def peer_candidates(task: Task, ctx, dataset, wanted: set[str] | None = None) -> list[Candidate]:
    out = []
    for peer in ctx.peers:
        if not peer.supports(task) or not selected(peer.name, wanted):
            continue  # not probed either: a probe may start a process
        reason = peer.unsuited(task) or ctx.peer_reason(peer)
        if reason:
            out.append(Candidate(peer.name, "peer", peer.description, skip=reason))
            continue
        out.append(Candidate(peer.name, "peer", peer.description,
                             make=lambda peer=peer: peer.build(task, ctx, dataset),
                             params=peer.params(task, ctx, dataset)))
    return out
