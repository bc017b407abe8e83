"""`restore enhance INPUT`: deblock, denoise, upscale and/or interpolate into a new file.

A thin layer over restore.enhance(): every flag left out keeps the config's value, every flag
given overrides it (cli/_options.py).
"""
from __future__ import annotations

import json
import sys

import click

from restore.cli._options import NegativeValues, enhance_options, overrides_from


def format_profile(p: dict) -> str:
    """One line: wall time, the models' share, and what the rest went to."""
    wall = p.get("wall", 0.0) or 1e-9
    models = ", ".join(f"{k[6:]} {v:.1f}" for k, v in p.items() if k.startswith("model_"))
    rest = ", ".join(f"{k.replace('_', ' ')} {p[k]:.1f}" for k in
                     ("setup", "analysis", "decode_wait", "encode_wait", "encode_drain", "close", "replay", "seams")
                     if p.get(k))
    return (f"profile: {wall:.1f} s wall; models {p.get('model', 0.0):.1f} s ({models or 'none'}); "
            f"everything else {p.get('overhead', 0.0):.1f} s = {100 * p.get('overhead', 0.0) / wall:.1f} % "
            f"({rest}; encoder thread busy {p.get('encode', 0.0):.1f} s, overlapped)")


EPILOG = """\b
Examples:
  restore enhance clip.mp4 --denoise                 # estimate the noise, remove it
  restore enhance web.mp4 --deblock                  # compression artefacts, strength estimated
  restore enhance web.mp4 --deblock 0.6 --scale 2    # fixed strength, then 2x upscale
  restore enhance clip.mp4 --denoise 20 --scale 2    # sigma 20, then 2x upscale
  restore enhance clip.mp4 --fps-multiplier 2 -o smooth.mp4
  restore enhance clip.mp4 --fps 60 --model classical
  restore enhance tape.mkv --config archive-vhs --crf 14
  restore enhance clip.mp4 --scale 4 --model lanczos --json

\b
The output keeps the input's audio, subtitles, timestamps, colour tags and
bit depth (10-bit stays 10-bit) unless told otherwise. Default name:
{stem}_restored{ext} next to the input (a config may change the pattern).
Configs: default, archive-vhs, sr-x2, sr-x4, fps-x2, or a path to a YAML file.
Any config key: --set KEY=VALUE, e.g. --set chunk.max_len=16.
Methods: `restore models` lists them.
"""


@click.command(cls=NegativeValues, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                                "max_content_width": 100})
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), default=None,
              help="Output file (default: the config's output.pattern next to INPUT).")
@enhance_options()
@click.option("-y", "--overwrite", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--resume", is_flag=True,
              help="Keep finished chunks in a work folder next to OUTPUT and, if an earlier run "
                   "with the same input and settings was interrupted, continue where it stopped "
                   "(the output is identical to an uninterrupted run). Needs free disk for a "
                   "lossless copy of the output frames; checked before starting.")
@click.option("--keep-temp", is_flag=True, help="With --resume: keep the work folder after success.")
@click.option("--report-seams", is_flag=True,
              help="Measure how visible chunk boundaries are: E_warp of frame pairs across "
                   "boundaries vs inside chunks (bar 1.1) and the boundary brightness step vs the "
                   "input (bar 1 level). Costs two optical flows per frame.")
@click.option("--preview", "preview_seconds", type=click.FloatRange(min=0.1, max=3600), is_flag=False,
              flag_value=3.0, default=None, metavar="[SECONDS]",
              help="Restore only SECONDS (default 3) from the middle of INPUT (or from --preview-at), "
                   "into OUTPUT's name with .preview before the extension, and estimate how long "
                   "the whole clip would take with these settings.")
@click.option("--preview-at", "preview_at", default=None, metavar="TIME",
              help="Where the preview starts: seconds or [H:]MM:SS[.s] (from the key frame at or "
                   "before it).")
@click.option("--profile", "show_profile", is_flag=True,
              help="Print where the time went: the models vs decode, encode and the rest.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary line.")
def command(input, output, overwrite, resume, keep_temp, report_seams, preview_seconds, preview_at,
            show_profile, as_json, quiet, **settings):
    """Deblock, denoise, upscale and/or interpolate INPUT into a new video file.

    Tasks run in the order deblock, denoise, upscale, interpolate, chunk by chunk, with chunks cut at
    scene changes and source key frames.
    """
    preset, overrides = overrides_from(settings)
    from restore.pipeline import enhance

    show_bar = not quiet and sys.stderr.isatty()
    if keep_temp and not resume:
        raise click.UsageError("--keep-temp keeps the --resume work folder: give --resume too")
    if preview_at is not None and preview_seconds is None:
        preview_seconds = 3.0
    if preview_seconds is not None:
        if resume:
            raise click.UsageError("--preview restores a few seconds and keeps no work folder: "
                                   "leave out --resume")
        _preview(input, output, preview_seconds, _parse_time(preview_at), preset, overwrite, show_bar,
                 report_seams, show_profile, as_json, quiet, overrides)
        return
    result = enhance(input, output, preset=preset, overwrite=overwrite, progress=show_bar,
                     resume=resume, keep_temp=keep_temp, report_seams=report_seams,
                     log=None if quiet or as_json else (lambda msg: click.echo(msg, err=True)), **overrides)
    if not quiet and not as_json:
        if result.cleaned:
            click.echo(f"removed {len(result.cleaned)} leftover(s) of an interrupted run", err=True)
        if result.resumed_chunks:
            click.echo(f"resumed: {result.resumed_chunks} of {result.chunks} chunks were already done",
                       err=True)
        if result.work_dir:
            what = f"kept at {result.work_dir}" if result.kept_work_dir else "removed"
            click.echo(f"resume work folder: {result.work_bytes / 2**20:.1f} MiB at most, {what}",
                       err=True)
    if result.seams is not None and not as_json:
        from restore.seams import SeamReport

        click.echo(SeamReport(**result.seams).summary())
    if show_profile and not as_json:
        click.echo(format_profile(result.profile))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif not quiet:
        methods = ", ".join(f"{t} {m}" for t, m in result.methods.items())
        if result.deblock and not result.deblock.get("ran", True):
            methods = ", ".join(filter(None, ["deblock skipped (strength 0)", methods]))
        methods = methods or "re-encode only"
        click.echo(f"wrote {result.output}: {result.frames_in} -> {result.frames_out} frames, "
                   f"{result.width}x{result.height}, {result.chunks} chunk{'' if result.chunks == 1 else 's'}, {methods}; "
                   f"{result.seconds:.1f} s ({result.fps:.1f} frames/s on {result.device})")


def _parse_time(text):
    """'90', '1:30', '0:01:30.5' -> seconds; None stays None."""
    if text is None:
        return None
    try:
        parts = [float(x) for x in str(text).strip().split(":")]
        if len(parts) > 3 or any(x < 0 for x in parts):
            raise ValueError
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected seconds or [H:]MM:SS[.s]",
                                 param_hint="--preview-at") from None
    seconds = 0.0
    for x in parts:
        seconds = seconds * 60 + x
    return seconds


def _preview(input, output, seconds, at, preset, overwrite, show_bar, report_seams, show_profile,
             as_json, quiet, overrides):
    from restore.pipeline.preview import human_duration, preview

    res = preview(input, output, seconds=seconds, at=at, preset=preset, overwrite=overwrite,
                  progress=show_bar, report_seams=report_seams,
                  log=None if quiet or as_json else (lambda msg: click.echo(msg, err=True)), **overrides)
    run = res.enhance
    if run.get("seams") is not None and not as_json:
        from restore.seams import SeamReport

        click.echo(SeamReport(**run["seams"]).summary())
    if show_profile and not as_json:
        click.echo(format_profile(run["profile"]))
    if as_json:
        click.echo(json.dumps(res.to_dict(), indent=2))
    elif not quiet:
        whole = (f"the whole clip ({res.total_frames} frames) would take about {human_duration(res.estimate)} "
                 f"on {run['device']} at this pace" if res.estimate is not None
                 else "the clip's length is unknown, so no estimate for the whole run")
        click.echo(f"wrote {res.output}: {res.seconds:.1f} s from {res.start:.1f} s, {res.frames} frames, "
                   f"{run['width']}x{run['height']}, in {res.wall:.1f} s; {whole}")
