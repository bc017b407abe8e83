"""A network on disk: its weights as float32 safetensors, its settings as YAML beside them.

One format for every network restore writes: the diffusion models (checkpoint.py adds their
architecture, inference block and history to the YAML) and the small side networks (the
interpolator's motion refiner, the denoiser's learned fusion), whose YAML holds what rebuilds them.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file


def stem_of(path: str | Path) -> Path:
    """NAME, NAME.safetensors or NAME.yaml -> NAME."""
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".safetensors", ".yaml") else p


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_module(path_stem: str | Path, module: torch.nn.Module, meta: dict) -> None:
    """STEM.safetensors (the weights in float32) and STEM.yaml (`meta`), each written whole or not at all."""
    stem = stem_of(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()}
    _atomic_write(stem.with_suffix(".safetensors"), lambda p: save_file(tensors, str(p)))
    _atomic_write(stem.with_suffix(".yaml"), lambda p: p.write_text(yaml.safe_dump(meta, sort_keys=False)))


def read_meta(path_stem: str | Path) -> dict:
    return yaml.safe_load(stem_of(path_stem).with_suffix(".yaml").read_text())


def load_weights(path_stem: str | Path, module: torch.nn.Module) -> torch.nn.Module:
    module.load_state_dict(load_file(str(stem_of(path_stem).with_suffix(".safetensors")), device="cpu"))
    return module


def cast(module: torch.nn.Module, precision: str) -> None:
    """precision 'bf16' runs the module's layers in bfloat16 (restore.device.resolve_precision)."""
    if precision == "bf16":
        module.to(torch.bfloat16)
    elif precision != "fp32":
        raise ValueError(f"unknown precision {precision!r}")


def load_module(path_stem: str | Path, build, device: str = "cpu", precision: str = "fp32") -> torch.nn.Module:
    """build(meta) makes the network from its YAML; its weights are loaded, and it is put on
    `device` in `precision`, in eval mode."""
    net = load_weights(path_stem, build(read_meta(path_stem)))
    net.eval().to(device)
    cast(net, precision)
    return net
