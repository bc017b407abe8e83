"""`restore` command line: a thin click layer over the Python API.

Each subcommand lives in its own module (cli/<name>.py, exposing a click command called
`command`) and is imported only when used, so `restore --help` stays fast and a problem in one
command's optional dependency cannot break the others.
"""
from __future__ import annotations

import importlib
import signal
import sys
import warnings

import click

from restore import __version__
from restore.errors import RestoreError

# name -> (module, short help shown in `restore --help`)
COMMANDS = {
    "info": ("restore.cli.info", "Show the streams, codecs, frame rate and colour tags of a media file."),
    "enhance": ("restore.cli.enhance", "Denoise, upscale and/or interpolate a video into a new file."),
    "score": ("restore.cli.score", "Score distorted videos against a reference: PSNR, SSIM, LPIPS."),
    "compare": ("restore.cli.compare", "Rate-quality curves and BD-rate between encodes of one reference."),
    "batch": ("restore.cli.batch", "Restore whole folders, resumably, locally or on a Ray cluster."),
    "models": ("restore.cli.models", "List the restoration methods and shipped models."),
    "train": ("restore.cli.train", "Train a restoration diffusion model from a YAML config."),
    "bench": ("restore.cli.bench", "Benchmark our models against classical methods and peers on every task."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module = importlib.import_module(COMMANDS[name][0])
        return module.command

    def format_commands(self, ctx, formatter):
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="restore")
def cli():
    """Restore degraded video: remove noise, raise resolution and frame rate, measure quality.

    \b
    Examples:
      restore info clip.mp4
      restore enhance clip.mp4 --denoise --scale 2
      restore score reference.mp4 restored.mp4 --lpips
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, `docker stop`, systemd) handled like Ctrl-C: the code unwinds the
    same way, so temp files are removed; the exit status is 143 (128 + SIGTERM)."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # Library warnings (a dropped stream, a converted subtitle) are for the user: one line each,
    # without Python's file:line prefix.
    click.echo(f"restore: warning: {message}", err=True)


def main(argv=None) -> int:
    from restore.device import keep_freed_memory

    keep_freed_memory()  # full-resolution buffers are reused, not page-faulted in again per chunk
    old = None
    try:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding application): leave signals alone
        pass
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _main(argv)
    except Terminated:  # arrived while _main was already handling something else
        click.echo("restore: terminated", err=True)
        return 143
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _main(argv) -> int:
    try:
        # With standalone_mode=False click returns ctx.exit(n)'s code instead of exiting.
        rv = cli.main(args=argv, prog_name="restore", standalone_mode=False)
    except RestoreError as err:
        click.echo(f"restore: error: {err}", err=True)
        return err.exit_code
    except click.exceptions.Abort as err:
        if isinstance(err.__context__, Terminated):
            click.echo("restore: terminated", err=True)
            return 143
        click.echo("restore: interrupted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except Terminated:
        click.echo("restore: terminated", err=True)
        return 143
    except KeyboardInterrupt:
        click.echo("restore: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
