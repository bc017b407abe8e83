"""`restore batch`: restore whole folders, resumably, locally or on a Ray cluster."""
from __future__ import annotations

import importlib
import json
import os
import re

import click

from restore.cli._options import NegativeValues, enhance_options, overrides_from
from restore.batch.plan import DEFAULT_PATTERNS
from restore.errors import ConfigError

HELP = """Restore whole folders, resumably, locally or on a Ray cluster.

\b
  restore batch SRC [SRC ...] --out DIR [options]   (short for `restore batch run ...`)
  restore batch status DIR [--json] [--csv FILE]

`status` (or `run`) is read as a subcommand unless a file or folder of that name exists, in
which case it is a source; write `restore batch run status ...` to be explicit.

Progress goes to stderr; the summary (or its JSON with --json) to stdout. The manifest
(OUT/.restore-batch.sqlite) records every input, so running the same command again resumes:
done items are skipped, interrupted and failed ones retried, changed ones redone.
See docs/batch.md.
"""


class _DefaultRunGroup(click.Group):
    """A group whose default subcommand is `run`, so `restore batch SRC ... --out DIR` works."""

    def parse_args(self, ctx, args):
        if args and args[0] not in ("-h", "--help"):
            if not (args[0] in self.commands and not os.path.exists(args[0])):
                args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_DefaultRunGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
def command():
    pass


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*$", re.I)


def _parse_size(value: str, option: str) -> int:
    m = _SIZE.match(value)
    if not m:
        raise ConfigError(f"{option} {value!r}: expected a size like 500M or 2G")
    return int(float(m.group(1)) * 1024 ** " kmgtp".index((m.group(2) or " ").lower()))


def _load_worker(spec: str):
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"--worker {spec!r}: expected an importable module:function") from None


def _print_summary(s) -> None:
    if s.dry_run:
        for it in s.items:
            click.echo(f"{it['action']:4}  {it['reason']:15}  {it['input']} -> {it['output']}")
        click.echo(f"dry run: {s.total - s.skipped} to do, {s.skipped} skipped, nothing written")
        return
    click.echo(f"done {s.done}, failed {s.failed}, skipped {s.skipped}"
               + (f", remaining {s.remaining}" if s.remaining else "")
               + f" | {s.wall_seconds:.1f} s wall, {s.frames_per_second:.2f} frames/s, "
               f"{s.files_per_second:.3f} files/s ({s.engine})")
    for f in s.failures:
        named = f["error"].startswith(f["path"])  # RestoreError messages name their file
        click.echo(f"  failed: {f['error'] if named else f['path'] + ': ' + f['error']}")
    if s.stopped:
        click.echo(f"stopped early ({s.stopped}); run the same command again to resume")


@command.command("run", cls=NegativeValues)
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False),
              help="Output folder: outputs mirror the source tree here; holds the manifest.")
@enhance_options(help={
    "config": "Config name (configs/*.yaml) or YAML file, for every input; the flags here override it.",
    "deblock": "Remove compression artefacts first; STRENGTH from 0 to 1, or auto (the default when "
               "given alone): estimated per file from its stream, nothing done on a clean file.",
    "device": "Where models run: auto, cpu or cuda[:N]; with --engine ray, cuda asks Ray for GPUs.",
})
@click.option("--pattern", default=DEFAULT_PATTERNS, show_default=True,
              help="Comma-separated globs (case-insensitive) picked from source folders.")
@click.option("--name-pattern", default=None,
              help="Output file name: {stem}, {ext} (with its dot), {name}, {task}, {scale}; "
                   "default: the config's output.pattern ({stem}_restored{ext}).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=None,
              help="local: worker processes (0 = in this process; default 1). ray: tasks in flight "
                   "(default: what the cluster fits).")
@click.option("--ray-address", default=None, help="Ray cluster address (e.g. auto or HOST:6379); "
              "default: RAY_ADDRESS or a new local cluster.")
@click.option("--cpus-per-task", type=float, default=1.0, show_default=True, help="Ray CPUs per item.")
@click.option("--gpus-per-task", type=float, default=None,
              help="Ray GPUs per item (default 1 with --device cuda, else 0).")
@click.option("--max-tries", type=int, default=3, show_default=True,
              help="Attempts per item, across runs, before it is left failed.")
@click.option("--retry-failed", is_flag=True, help="Retry failed items even with no tries left.")
@click.option("--min-free", default="256M", show_default=True,
              help="Free space to keep on --out, on top of each item's estimate.")
@click.option("--space-factor", type=float, default=2.0, show_default=True,
              help="Estimated output size as a multiple of the input size (disk check).")
@click.option("--dry-run", is_flag=True, help="Show what each input would do; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also export the manifest as CSV to this file.")
@click.option("--worker", "worker_spec", default="restore.batch.workers:enhance_worker", hidden=True)
@click.pass_context
def run_cmd(ctx, sources, out, pattern, name_pattern, engine, workers, ray_address, cpus_per_task,
            gpus_per_task, max_tries, retry_failed, min_free, space_factor, dry_run, as_json, csv_path,
            worker_spec, **settings):
    """Restore every matching file under SRC into --out (resumable)."""
    from restore.batch.runner import BatchSettings, run_batch

    preset, overrides = overrides_from(settings)
    device = overrides.get("device", overrides.get("model.device"))
    # Validate the config and flags once, up front, rather than failing every item with them.
    from restore.config import load_config
    from restore.pipeline import wanted_tasks

    cfg = load_config(preset, overrides)
    if name_pattern is None:
        name_pattern = cfg.output.pattern
    name_fields = {"task": "-".join(wanted_tasks(cfg)) or "reencode", "scale": cfg.upscale.scale,
                   "codec": cfg.encode.codec}
    options = {"preset": preset, "overrides": overrides}
    # The device changes where, not what: switching it must not redo finished items.
    config = {"worker": worker_spec, "preset": preset,
              "overrides": {k: v for k, v in overrides.items() if k not in ("device", "model.device")}}
    wants_gpu = str(device or "").startswith("cuda")
    if gpus_per_task is None:
        gpus_per_task = 1.0 if engine == "ray" and wants_gpu else 0.0
    settings = BatchSettings(
        options=options, config=config, worker=_load_worker(worker_spec), patterns=pattern,
        name_pattern=name_pattern, name_fields=name_fields, engine=engine,
        workers=(1 if engine == "local" else 0) if workers is None else workers,
        ray_address=ray_address, num_cpus=cpus_per_task, num_gpus=gpus_per_task,
        max_tries=max_tries, retry_failed=retry_failed,
        space_factor=space_factor, min_free=_parse_size(min_free, "--min-free"),
        sources=[os.path.abspath(s) for s in sources])
    summary = run_batch(sources, out, settings, dry_run=dry_run,
                        log=lambda msg: click.echo(msg, err=True))
    if csv_path and not dry_run:
        from restore.batch.manifest import Manifest

        with Manifest(out, readonly=True) as m:
            n = m.export_csv(csv_path)
        click.echo(f"manifest exported: {csv_path} ({n} rows)", err=True)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        _print_summary(summary)
    if summary.exit_code:
        # SystemExit, not ctx.exit: cli.main runs click with standalone_mode=False, where click
        # turns ctx.exit(n) into a return value that cli/main.py does not pass on.
        raise SystemExit(summary.exit_code)


@command.command("status")
@click.argument("out", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Export the manifest as CSV to this file (never over the manifest; an existing "
                   "file needs --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --csv file.")
def status_cmd(out, as_json, csv_path, overwrite):
    """Show the state of the batch whose --out is OUT."""
    from restore.batch.manifest import MANIFEST_NAME, Manifest
    from restore.batch.runner import batch_status
    from restore.cli._output import check_outputs, write_file

    # the manifest and SQLite's side files are the inputs a CSV export must never replace
    manifest = os.path.join(os.path.abspath(out), MANIFEST_NAME)
    guarded = [manifest, manifest + "-wal", manifest + "-shm", manifest + "-journal"]
    check_outputs({"--csv": csv_path}, inputs=guarded, overwrite=overwrite)
    st = batch_status(out)
    if csv_path:
        with Manifest(out, readonly=True) as m:
            write_file(csv_path, m.export_csv, inputs=guarded, overwrite=overwrite)
    if as_json:
        click.echo(json.dumps(st, indent=2, default=str))
        return
    c = st["counts"]
    click.echo(f"{st['out']}: {st['total']} items: {c['done']} done, {c['failed']} failed, "
               f"{c['queued']} queued, {c['running']} running")
    click.echo(f"frames done: {st['frames_done']} in {st['seconds_done']:.1f} s of worker time")
    for f in st["failures"]:
        named = (f["error"] or "").startswith(f["path"])
        click.echo(f"  failed ({f['attempts']} tries): {f['error'] if named else f['path'] + ': ' + str(f['error'])}")
    last = st["last_run"]
    if st.get("driver"):  # the lock is held: a batch is running on this folder now
        import time

        since = f" for {time.time() - last['started_at']:.0f} s" if last else ""
        click.echo(f"running now (driver {st['driver']}{since}); `restore batch status` again for progress")
    elif last and last["summary"]:
        s = last["summary"]
        click.echo(f"last run ({last['engine']}): done {s['done']}, failed {s['failed']}, "
                   f"skipped {s['skipped']}, {s['wall_seconds']:.1f} s"
                   + (f", stopped: {s['stopped']}" if s.get("stopped") else ""))
    elif last:
        click.echo("last run: did not finish (driver killed?); run it again to resume")
