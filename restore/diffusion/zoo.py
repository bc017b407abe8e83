"""The shipped models: weights in restore.data/weights (the repository's data/weights).

`RESTORE_WEIGHTS_DIR` points elsewhere (e.g. a training run) for evaluation of new checkpoints.
"""
from __future__ import annotations

import functools
import os
from importlib.resources import files
from pathlib import Path

from ..errors import ConfigError

SHIPPED = {
    "deblock": "deblock",
    "denoise": "denoise",
    "sr-x2": "sr-x2",
    "sr-x4": "sr-x4",
    "interp-x2": "interp-x2",
}


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
def load(name: str, device: str = "cpu"):
    """(model, meta) of a shipped model, cached per device."""
    from . import checkpoint

    if not available(name):
        raise ConfigError(f"model {name!r} has no weights in {weights_dir()} "
                          "(reinstall restore, or pick a classical method with --model classical)")
    return checkpoint.load(model_path(name), device=device)
