"""`restore train`: train a conditional video diffusion model from a YAML config."""
from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import click

from restore.diffusion.zoo import NAMES


def _config_path(value: str) -> Path:
    path = Path(value)
    if path.exists() or path.suffix in (".yaml", ".yml"):
        return path
    return Path(str(files("restore.configs").joinpath("train", f"{value}.yaml")))


@click.command("train")
@click.option("--config", "config", required=True, metavar="FILE|NAME",
              help="Training YAML (e.g. configs/train/sr-x2.yaml) or a bundled name (configs/train/NAME.yaml): "
                   f"{', '.join(NAMES)}.")
@click.option("--data", "data", multiple=True, metavar="PATH",
              help="Train on your own footage instead of the config's sources: a video file, a folder of frames, "
                   "or a folder/glob of still images (repeatable).")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Where checkpoints and the CSV log go.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in the output directory.")
@click.option("--iters", type=click.IntRange(min=1), help="Stop after this many optimiser steps.")
@click.option("--max-minutes", type=click.FloatRange(min=0.01), help="Stop after this much wall time.")
@click.option("--device", default=None, help="auto, cpu or cuda[:N] (default: the config's, usually auto).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Set any config key (YAML value; dotted into a mapping), e.g. --set patch=96 "
                   "--set inference.steps=4; an unknown key is an error. With --resume this starts a "
                   "new training phase, recorded in the checkpoint's history.")
def command(config, data, out_dir, resume, iters, max_minutes, device, settings):
    """Train a restoration model (denoise, sr, interp) with on-the-fly degradations.

    Checkpoints (safetensors + YAML metadata) and a CSV log are written to the output directory
    every few hundred steps; Ctrl-C saves one before stopping, and --resume continues from it.

    \b
    Examples:
      restore train --config configs/train/sr-x2.yaml
      restore train --config denoise --data ~/footage/ --out-dir runs/my-denoiser --max-minutes 60
      restore train --config configs/train/sr-x2.yaml --resume
      restore train --config interp-x2 --resume --max-minutes 154 --set patch=96 --set interp_max_stride=3
    """
    from restore.config import parse_settings
    from restore.diffusion.train import train
    from restore.diffusion.trainconfig import load_train_config

    overrides = parse_settings(settings, _config_path(config))
    if data:
        overrides["sources"] = [_source_for(p) for p in data]
    for key, value in (("out_dir", out_dir), ("iters", iters), ("max_minutes", max_minutes), ("device", device)):
        if value is not None:
            overrides[key] = value
    cfg = load_train_config(_config_path(config), overrides)
    stem = train(cfg, resume=resume, log=lambda msg: click.echo(msg, err=True))
    click.echo(str(stem))


def _consecutive(numbers: list[int], max_gap: int = 3) -> bool:
    return all(b - a <= max_gap for a, b in zip(numbers, numbers[1:]))


def _source_for(path: str) -> dict:
    from restore.diffusion.data import IMAGE_EXT, VIDEO_EXT
    from restore.errors import ConfigError

    p = Path(path).expanduser()
    if p.is_file() and p.suffix.lower() in VIDEO_EXT:
        return {"path": str(p), "kind": "video"}
    if p.is_dir():
        images = sorted(f.stem for f in p.iterdir() if f.suffix.lower() in IMAGE_EXT)
        if not images:  # a folder of sequences, one sub-folder of frames each
            return {"path": str(p / "*"), "kind": "frames"}
        # Files numbered in a run (00001.png, im1.png, frame_0007.jpg) are the frames of one
        # sequence; anything else, numbers far apart included (100075.png, 101085.png), is photos.
        numbered = [re.fullmatch(r"(.*?)(\d+)", n) for n in images]
        if all(numbered) and len({m.group(1) for m in numbered}) == 1 and _consecutive(
                sorted(int(m.group(2)) for m in numbered)):
            return {"path": str(p), "kind": "frames"}
        return {"path": str(p / "*"), "kind": "images"}
    if any(ch in path for ch in "*?["):
        return {"path": path, "kind": "images"}
    raise ConfigError("not a video file, a folder of frames or a folder of images", path)
