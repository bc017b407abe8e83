"""The shipped models: weights in restore.data/weights (the repository's data/weights).

MODELS is the one table of their names and what they serve. Two vocabularies meet here: the
*task* is what `restore enhance` does (restore.registry.TASKS: deblock, denoise, upscale,
interpolate); the *model name* is a file stem of data/weights and of configs/train (deblock,
denoise, sr-x2, sr-x4, interp-x2). The CLI, `restore models`, the benchmarks and the model
cards take the names from here.

`RESTORE_WEIGHTS_DIR` points elsewhere (e.g. a training run) for evaluation of new checkpoints.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from ..errors import ConfigError
from ..registry import TASKS


@dataclass(frozen=True)
class ShippedModel:
    name: str         # weights data/weights/<name>.safetensors, trained by configs/train/<name>.yaml
    task: str         # the enhance task it serves (restore.registry.TASKS)
    train_task: str   # what the network learns (restore.diffusion.tasks.TASKS: denoise, sr, interp)
    scale: int = 1    # upscale: the factor; interpolate: frames out per frame in, as trained


MODELS: tuple[ShippedModel, ...] = (
    ShippedModel("deblock", "deblock", "denoise"),
    ShippedModel("denoise", "denoise", "denoise"),
    ShippedModel("denoise-aligned", "denoise", "denoise"),  # the `diffusion-aligned` method's (centred.py)
    ShippedModel("sr-x2", "upscale", "sr", 2),
    ShippedModel("sr-x4", "upscale", "sr", 4),
    ShippedModel("interp-x2", "interpolate", "interp", 2),
)
assert all(m.task in TASKS for m in MODELS)
NAMES: tuple[str, ...] = tuple(m.name for m in MODELS)
SHIPPED = {m.name: m for m in MODELS}


def model_name(task: str, scale: int = 1) -> str:
    """The shipped model's name for a task (and, for upscale, a scale): ("upscale", 2) -> "sr-x2"."""
    for m in MODELS:
        if m.task == task and (task != "upscale" or m.scale == scale):
            return m.name
    raise ConfigError(f"no shipped model for {task}" + (f" x{scale}" if task == "upscale" else ""))


def models_for(task: str) -> list[ShippedModel]:
    return [m for m in MODELS if m.task == task]


def weights_dir() -> Path:
    env = os.environ.get("RESTORE_WEIGHTS_DIR")
    return Path(env) if env else Path(str(files("restore.data").joinpath("weights")))


def model_path(name: str) -> Path:
    return weights_dir() / f"{name}.safetensors"


def card_path(name: str) -> Path:
    return weights_dir() / f"{name}.md"


def available(name: str) -> bool:
    return model_path(name).exists() and model_path(name).with_suffix(".yaml").exists()


@functools.lru_cache(maxsize=8)
def load(name: str, device: str = "cpu", precision: str = "fp32"):
    """(model, meta) of a shipped model, cached per device and precision."""
    from . import checkpoint

    if not available(name):
        raise ConfigError(f"model {name!r} has no weights in {weights_dir()} "
                          "(reinstall restore, or pick a classical method with --model classical)")
    return checkpoint.load(model_path(name), device=device, precision=precision)


@functools.lru_cache(maxsize=4)
def load_motion(name: str, device: str = "cpu", precision: str = "fp32"):
    """The interpolator's motion refiner (restore.diffusion.motionnet) named by its `inference:`
    block, from the same weights folder."""
    from .motionnet import load_refiner

    path = weights_dir() / f"{name}.safetensors"
    if not (path.exists() and path.with_suffix(".yaml").exists()):
        raise ConfigError(f"motion model {name!r} has no weights in {weights_dir()} "
                          "(reinstall restore, or pick the classical interpolator with --model classical)")
    return load_refiner(path, device=device, precision=precision)


@functools.lru_cache(maxsize=4)
def load_fusenet(name: str, device: str = "cpu", precision: str = "fp32"):
    """A restorer's learned fusion of restored frames (restore.diffusion.fusenet) named by its
    `inference:` block, from the same weights folder."""
    from .fusenet import load_fusenet as load_net

    path = weights_dir() / f"{name}.safetensors"
    if not (path.exists() and path.with_suffix(".yaml").exists()):
        raise ConfigError(f"fusion model {name!r} has no weights in {weights_dir()} "
                          "(reinstall restore, or pick a classical method with --model classical)")
    return load_net(path, device=device, precision=precision)
