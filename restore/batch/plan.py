"""Discover a batch's inputs and decide where each output goes.

Sources are files or folders. Folders are walked recursively and their tree is mirrored under
`--out`; a file named directly lands at the top of `--out`. Only names matching the patterns
(case-insensitive globs) are taken from folders; a file named directly is always taken.

Inputs are only ever read. An `--out` inside a source folder is skipped while walking (so the
batch never eats its own outputs); a source inside `--out` is refused, because excluding `--out`
would exclude the whole source.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from restore import config
from restore.config import OutputConfig
from restore.errors import ConfigError, RestoreError

# what cameras, capture cards, discs and the web write, not only what we can write: an input in a
# container that cannot be written gets .mkv as its output (config.output_name)
DEFAULT_PATTERNS = ("*.mp4,*.m4v,*.mkv,*.mov,*.avi,*.webm,*.ts,*.m2ts,*.mts,*.mpg,*.mpeg,*.vob,"
                    "*.wmv,*.flv,*.3gp,*.dv,*.mxf,*.ogv")
DEFAULT_NAME_PATTERN = OutputConfig.pattern  # restore enhance's default output.pattern


@dataclass(frozen=True)
class PlanItem:
    input: Path   # absolute path of the source file (symlinks kept as given)
    rel: str      # path relative to its source root, "/"-separated (what the output mirrors)
    output: Path  # absolute path of the output file


def parse_patterns(patterns: str | None) -> list[str]:
    globs = [p.strip() for p in (patterns or DEFAULT_PATTERNS).split(",") if p.strip()]
    if not globs:
        raise ConfigError(f"--pattern {patterns!r}: no glob given (e.g. '*.mp4,*.mkv')")
    return globs


def output_name(input_name: str, name_pattern: str = DEFAULT_NAME_PATTERN, *,
                task: str = "reencode", scale: int = 1, codec: str | None = None) -> str:
    """restore.config.output_name (the same placeholders and rules as `restore enhance`), with
    errors naming --name-pattern."""
    return config.output_name(input_name, name_pattern, task=task, scale=scale, codec=codec,
                              what="--name-pattern")


def _matches(name: str, globs: list[str]) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, g.lower()) for g in globs)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def discover(sources, out_dir, *, patterns: str | None = None,
             name_pattern: str = DEFAULT_NAME_PATTERN, name_fields: dict | None = None) -> list[PlanItem]:
    """The batch's items, sorted by input path. Raises RestoreError for a missing source, a
    source inside `out_dir`, or two inputs that would write the same output.
    `name_fields`: {task, scale, codec} for the name pattern."""
    globs = parse_patterns(patterns)
    name_fields = name_fields or {}
    output_name("probe.mp4", name_pattern, **name_fields)  # validate even when nothing matches
    out_abs = Path(os.path.abspath(out_dir))
    out_real = os.path.realpath(out_abs)
    found: list[tuple[Path, str, Path]] = []  # (input, rel, root of the mirrored tree)

    for src in sources:
        src_abs = Path(os.path.abspath(src))
        if not src_abs.exists():
            raise RestoreError("no such file or folder", src)
        if src_abs.is_file():
            found.append((src_abs, src_abs.name, out_abs))
            continue
        if not src_abs.is_dir():
            raise RestoreError("not a regular file or folder", src)
        src_real = os.path.realpath(src_abs)
        if _inside(src_real, out_real):
            raise RestoreError(f"source folder is inside --out {out_dir} (its outputs would be "
                               "read back as inputs); choose an --out outside it", src)
        for dirpath, dirnames, filenames in os.walk(src_abs):
            # Prune --out (and hidden folders: temp files, .git ...) so outputs are never inputs.
            dirnames[:] = sorted(
                d for d in dirnames
                if not d.startswith(".") and os.path.realpath(os.path.join(dirpath, d)) != out_real
            )
            for fn in sorted(filenames):
                if fn.startswith(".") or not _matches(fn, globs):
                    continue
                path = Path(dirpath) / fn
                if not path.is_file():
                    continue
                rel = path.relative_to(src_abs).as_posix()
                found.append((path, rel, out_abs))

    items: dict[str, PlanItem] = {}
    by_output: dict[str, Path] = {}
    inputs_real = {os.path.realpath(p) for p, _, _ in found}
    for path, rel, root in found:
        key = str(path)
        if key in items:  # the same file reached through two sources
            continue
        out = root / Path(rel).parent / output_name(path.name, name_pattern, **name_fields)
        out_key = os.path.realpath(out)
        if out_key in inputs_real:
            raise RestoreError(f"its output {out} would overwrite an input; change --out or "
                               "--name-pattern", path)
        if out_key in by_output:
            raise RestoreError(f"writes the same output {out} as {by_output[out_key]}; batch them "
                               "separately or change --name-pattern", path)
        by_output[out_key] = path
        items[key] = PlanItem(input=path, rel=rel, output=out)
    return sorted(items.values(), key=lambda it: str(it.input))
