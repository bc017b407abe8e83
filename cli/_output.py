"""Machine-readable output files, one convention for every command.

`--json` (a flag) prints JSON to stdout; `--json-file PATH` / `-o PATH` writes it; `--csv PATH`
and `--plot PATH` write their files. Every output path is checked before the command does any
work (an hour of scoring must not end in "permission denied"): it must not be one of the inputs,
must not exist unless `--overwrite`, and its folder must be writable. Files are written under a
temporary name and renamed into place (restore.io.atomic_output), so an interrupted or failed
write never leaves a partial file under the final name.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from restore.errors import ConfigError, RestoreError


def check_outputs(outputs: dict[str, str | os.PathLike | None], *, inputs: Iterable = (),
                  overwrite: bool = False) -> dict[str, Path]:
    """{option name: path or None} -> {option name: Path} of the given ones, after the checks above.

    A problem is a one-line ConfigError that names the option and the file."""
    from restore.io import check_output_path

    inputs = [Path(os.fspath(p)) for p in inputs]
    checked: dict[str, Path] = {}
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        p = Path(os.fspath(path))
        key = os.path.realpath(p)
        if key in seen:
            raise ConfigError(f"{option} {p}: the same file as {seen[key]}; give each output its own name")
        seen[key] = option
        try:
            check_output_path(p, overwrite=overwrite, input_path=inputs)
        except RestoreError as err:
            raise ConfigError(f"{option} {err}") from None
        checked[option] = p
    return checked


def write_file(path, writer: Callable[[Path], None], *, inputs: Iterable = (), overwrite: bool = False) -> None:
    """writer(tmp_path) fills a temp file next to `path`; renamed onto `path` when it returns."""
    from restore.io import atomic_output

    with atomic_output(path, overwrite=overwrite, input_path=list(inputs)) as tmp:
        writer(tmp)


def write_text(path, text: str, *, inputs: Iterable = (), overwrite: bool = False) -> None:
    def fill(tmp: Path):
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")

    write_file(path, fill, inputs=inputs, overwrite=overwrite)


def legacy_json_argument(paths: Iterable[str]) -> None:
    """`--json` used to take a file argument (`--json out.json`, `--json -`); now it is a flag, so
    that argument arrives as an input file. Say what to write instead of "no such video"."""
    for p in paths:
        if p == "-" or (str(p).lower().endswith(".json") and not os.path.exists(p)):
            raise ConfigError(f"{p}: not a video; --json is a flag now (JSON to stdout), "
                              f"write a file with --json-file {p if p != '-' else 'PATH'} (or -o)")
