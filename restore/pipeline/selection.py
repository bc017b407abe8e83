"""Which tasks a config asks for, which registered method runs each, and the default output name."""
from __future__ import annotations

from pathlib import Path

from .. import methods as _methods  # noqa: F401  (registers the built-in methods)
from .. import registry
from ..config import EnhanceConfig, output_name
from ..errors import ConfigError


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


def default_output(src: Path, cfg: EnhanceConfig, tasks: list[str]) -> Path:
    return src.with_name(output_name(src.name, cfg.output.pattern, task="-".join(tasks) or "reencode",
                                     scale=cfg.upscale.scale, codec=cfg.encode.codec))
