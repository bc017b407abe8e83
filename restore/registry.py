"""Registry of restoration methods, by task and name.

The pipeline only ever asks the registry for "the denoiser called X", so diffusion models and
classical baselines plug in the same way and new ones need no pipeline change.

Tasks and the callables their factories return:

- "deblock", "denoise" and "upscale": SpatialRestorer
      restorer(frames, anchors=None) -> frames_out
      frames:  float32 array (T, H, W, 3) in [0, 1], consecutive frames of one chunk (one shot)
      anchors: None or float32 (A, H*s, W*s, 3), already-restored frames that immediately precede
               frames[0] (the chunk planner's anchors); methods may ignore them.
      returns  float32 (T, H*s, W*s, 3) in [0, 1], s = restorer.scale (1 for deblock, denoise)
      deblock methods take MethodOptions.strength in [0, 1] (None = estimate from the frames):
      output = input + strength * (restored - input), and strength 0 returns the input unchanged.
- "interpolate": Interpolator
      interp(first, second, t) -> middle
      first, second: float32 (N, H, W, 3) in [0, 1], N consecutive pairs; t: float in (0, 1)
      returns float32 (N, H, W, 3), the frames at time t between each pair.

Factories take one MethodOptions and return the callable.

This module is a leaf: it knows no method. The plugin package restore.methods registers the
built-in ones when it is imported (its __init__ is the discovery), so code that asks for a method
imports restore.methods first; registering a (task, name) twice is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import ConfigError

# In pipeline order: compression artefacts first (they are a property of the stored video, and
# the denoiser and upscaler were trained on artefact-free noise / downscaling), then noise, size,
# frame rate.
TASKS = ("deblock", "denoise", "upscale", "interpolate")


@dataclass
class MethodOptions:
    strength: float | None = None  # denoise: noise sigma on the 0-255 scale; deblock: 0-1; None = estimate
    scale: int = 1                 # upscale factor
    device: str = "cpu"            # resolved device ("cpu", "cuda", "cuda:1")
    precision: str = "fp32"        # resolved network number format (restore.device.resolve_precision)
    steps: int | None = None       # diffusion sampling steps; None = the model's default
    start_sigma: float | None = None  # diffusion starting noise level; None = the model's default
    seed: int = 0
    tile: int | None = None        # spatial tile size in pixels; None = automatic
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    task: str
    name: str
    factory: Callable[[MethodOptions], Callable]
    description: str
    family: str  # "classical" or "diffusion"
    scales: tuple[int, ...] = (1,)
    card: str | None = None  # path of the model card (diffusion models)
    # deblock: the method judges the damage itself (a blind model), so `auto` runs it at full
    # strength on any lossy stream instead of scaling it by the estimated damage
    blind: bool = False
    models: tuple[str, ...] = ()  # the shipped models (restore.diffusion.zoo names) behind it


_REGISTRY: dict[tuple[str, str], MethodSpec] = {}
_DEFAULTS: dict[str, list[str]] = {}


def register(task: str, name: str, *, description: str, family: str,
             scales: tuple[int, ...] = (1,), default: bool = False, card: str | None = None,
             blind: bool = False, models: tuple[str, ...] = ()):
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")

    def deco(factory):
        if (task, name) in _REGISTRY:
            raise ValueError(f"{task} method {name!r} is already registered "
                             f"(by {_REGISTRY[(task, name)].factory.__module__})")
        _REGISTRY[(task, name)] = MethodSpec(task, name, factory, description, family, scales, card, blind,
                                              tuple(models))
        order = _DEFAULTS.setdefault(task, [])
        if default:
            order.insert(0, name)
        else:
            order.append(name)
        return factory

    return deco


def methods(task: str | None = None) -> list[MethodSpec]:
    return [s for (t, _), s in _REGISTRY.items() if task is None or t == task]


def get(task: str, name: str | None = None, scale: int = 1) -> MethodSpec:
    """The method `name` for `task`, or the task's default that supports `scale`."""
    if name is None:
        for candidate in _DEFAULTS.get(task, []):
            spec = _REGISTRY[(task, candidate)]
            if scale in spec.scales:
                return spec
        raise ConfigError(f"no method for task {task!r} at scale {scale}")
    spec = _REGISTRY.get((task, name))
    if spec is None:
        names = ", ".join(s.name for s in methods(task)) or "none"
        raise ConfigError(f"unknown {task} method {name!r} (available: {names})")
    if scale not in spec.scales:
        raise ConfigError(f"{task} method {name!r} does not support scale {scale} "
                          f"(supports {', '.join(map(str, spec.scales))})")
    return spec
