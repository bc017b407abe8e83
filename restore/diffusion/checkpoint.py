"""Checkpoints: weights as safetensors, everything else as YAML beside them.

`<name>.safetensors` holds the EMA weights (what inference uses); training state (raw weights,
optimizer) goes to `<name>.train.pt` only while training, so shipped models stay small.
`<name>.yaml` holds the architecture, task, the `inference:` block (how restorers run the model),
training config, step, data summary, validation metrics and git commit.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch

from .modulefile import cast, load_weights, read_meta, save_module
from .precond import EDMPrecond
from .tasks import TASKS
from .unet import VideoUNet
from .windownet import WindowNet

ARCHS = {"unet": VideoUNet, "window": WindowNet}


def build_net(arch: dict, task: str):
    arch = dict(arch)
    kind = arch.pop("type", "unet")
    arch["cond_channels"] = TASKS[task].cond_channels
    return ARCHS[kind](**arch)


def build_model(meta: dict) -> EDMPrecond:
    return EDMPrecond(build_net(meta["arch"], meta["task"]))


def inference_block(meta: dict) -> dict:
    """How a restorer runs this model: window (frames per forward pass, anchors included),
    anchors (restored frames carried in front of each window), steps, start_sigma, sampler,
    sigma_floor (denoise: the level used for a clean input), optionally fuse (denoise: the scale of
    the averaging with restored neighbours, centred.py) and noise_scale (denoise: the share of the
    input's noise level the network is told, one number or a table over the level; 1 when
    absent). Checkpoints written before the block existed get it from their sampling defaults and
    training chunk length."""
    block = dict(meta.get("inference") or {})
    legacy = {
        "window": lambda: int(meta["config"]["frames"]) + 1,
        "anchors": lambda: 1,
        "steps": lambda: int(meta["sampling"]["steps"]),
        "start_sigma": lambda: float(meta["sampling"]["start_sigma"]),
        "sampler": lambda: "euler",
        "sigma_floor": lambda: float(meta.get("config", {}).get("sigma_floor", 0.004)),
    }
    for key, value in legacy.items():
        if key not in block:
            block[key] = value()
    return block


def inference_of(cfg) -> dict:
    """The `inference:` block a training config (trainconfig.TrainConfig) writes to its checkpoints."""
    return inference_block({"inference": cfg.inference, "config": {"frames": cfg.frames, "sigma_floor": cfg.sigma_floor},
                            "sampling": {"steps": cfg.default_steps, "start_sigma": cfg.default_start_sigma}})


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=os.path.dirname(__file__)).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def save(path_stem: str | Path, model: EDMPrecond, meta: dict) -> None:
    save_module(path_stem, model, meta)


def load(path_stem: str | Path, device: str = "cpu", precision: str = "fp32") -> tuple[EDMPrecond, dict]:
    """precision 'bf16' runs the network's layers in bfloat16 (restore.device.resolve_precision);
    EDMPrecond casts to and from it, so callers see fp32 either way."""
    meta = read_meta(path_stem)
    meta["inference"] = inference_block(meta)
    model = load_weights(path_stem, build_model(meta))
    model.eval().to(device)
    if str(device).startswith("cpu"):
        model = model.to(memory_format=torch.channels_last)
    cast(model.net, precision)
    return model, meta
