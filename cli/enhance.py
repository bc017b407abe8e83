"""`restore enhance INPUT`: deblock, denoise, upscale and/or interpolate into a new file.

A thin layer over restore.enhance(): every flag left out keeps the preset's value, every flag
given overrides it.
"""
from __future__ import annotations

import json
import sys

import click


class NegativeValues(click.Command):
    """`--denoise -5` would be read as an unknown option -5 (the value of --denoise is optional,
    so click never takes a token starting with "-" as its value, not even as `--denoise=-5`):
    say what is really wrong, the sign."""

    value_options = ("--denoise", "--deblock")
    ranges = {"--denoise": "noise sigma must be between 0 and 255", "--deblock": "deblock strength must be between 0 and 1"}

    def parse_args(self, ctx, args):
        fixed, i = [], 0
        while i < len(args):
            name = args[i]
            value = args[i + 1] if i + 1 < len(args) else None
            if "=" in name and name.split("=", 1)[0] in self.value_options:
                name, value = name.split("=", 1)
            elif name not in self.value_options:
                value = None
            if value is not None and value.startswith("-") and _is_number(value):
                if float(value) != 0:
                    raise click.BadParameter(f"{self.ranges[name]}, got {value}",
                                             ctx=ctx, param_hint=f"'{name}'")
                fixed += [name, "0"]  # -0 is 0
                i += 1 if "=" in args[i] else 2
                continue
            fixed.append(args[i])
            i += 1
        return super().parse_args(ctx, fixed)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class DenoiseStrength(click.ParamType):
    """`--denoise` alone means "estimate the noise"; `--denoise 15` sets the sigma."""

    name = "sigma"

    def convert(self, value, param, ctx):
        if value is None or value == "auto" or isinstance(value, (int, float)):
            return value
        try:
            sigma = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a noise sigma. --denoise takes an optional number "
                      "(0-255 scale); put INPUT before --denoise, e.g. `restore enhance clip.mp4 --denoise`",
                      param, ctx)
        if not 0 <= sigma <= 255:  # also refuses nan
            self.fail(f"noise sigma must be between 0 and 255, got {value}", param, ctx)
        return sigma


class DeblockStrength(click.ParamType):
    """`--deblock` alone (or `--deblock auto`) estimates the damage; `--deblock 0.5` sets it."""

    name = "strength"

    def convert(self, value, param, ctx):
        if value is None or value == "auto" or isinstance(value, (int, float)):
            return value
        try:
            s = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a strength. --deblock takes auto or a number from 0 to 1; "
                      "put INPUT before --deblock, e.g. `restore enhance clip.mp4 --deblock`", param, ctx)
        if not 0 <= s <= 1:  # also refuses nan
            self.fail(f"deblock strength must be between 0 and 1, got {value}", param, ctx)
        return s


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
{stem}_restored{ext} next to the input (presets may change the pattern).
Presets: default, archive-vhs, sr-x2, sr-x4, fps-x2, or a path to a YAML file.
Methods: `restore models` lists them.
"""


@click.command(cls=NegativeValues, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"],
                                                "max_content_width": 100})
@click.argument("input", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), default=None,
              help="Output file (default: the preset's name pattern next to INPUT).")
@click.option("--deblock", type=DeblockStrength(), is_flag=False, flag_value="auto", default=None,
              metavar="[auto|STRENGTH]",
              help="Remove compression artefacts (blocking, ringing, mosquito noise) first; STRENGTH "
                   "from 0 (untouched) to 1 (full), or auto (the default when given alone): estimated "
                   "from the stream's quantisers / bitrate, nothing done on a clean input.")
@click.option("--denoise", type=DenoiseStrength(), is_flag=False, flag_value="auto", default=None,
              metavar="[SIGMA]", help="Remove noise; SIGMA is its strength on the 0-255 scale "
                                      "(estimated from the video when omitted).")
@click.option("--scale", type=click.Choice(["1", "2", "4"]), default=None,
              help="Upscale by this factor (1 turns a preset's upscaling off).")
@click.option("--fps-multiplier", type=click.IntRange(1, 16), default=None, metavar="N",
              help="Make N frames of every frame by interpolation (scene cuts repeat a frame).")
@click.option("--fps", type=click.FloatRange(0, 1000, min_open=True), default=None, metavar="F",
              help="Resample to a constant F frames per second instead (interpolating between "
                   "source frames).")
@click.option("--model", default=None, metavar="NAME",
              help="Method family (classical, diffusion) or method name used for every task.")
@click.option("--deblock-method", default=None, metavar="NAME", help="Deblocker for this run only.")
@click.option("--denoise-method", default=None, metavar="NAME", help="Denoiser for this run only.")
@click.option("--upscale-method", default=None, metavar="NAME", help="Upscaler for this run only.")
@click.option("--interp-method", default=None, metavar="NAME", help="Interpolator for this run only.")
@click.option("-c", "--config", "preset", default="default", show_default=True, metavar="PRESET",
              help="Preset name or YAML file; the flags here override it.")
@click.option("--device", default=None, metavar="auto|cpu|cuda[:N]", help="Where models run [default: auto].")
@click.option("--codec", default=None, help="Video encoder: libx264, libx265, libsvtav1 or ffv1.")
@click.option("--crf", type=int, default=None, metavar="N", help="Constant rate factor (lower = better, bigger).")
@click.option("--preset", "encoder_preset", default=None, metavar="NAME",
              help="Encoder speed preset (ultrafast ... veryslow; SVT-AV1 also 0-13).")
@click.option("--bit-depth", type=click.Choice(["8", "10"]), default=None,
              help="Output bit depth [default: the source's].")
@click.option("--steps", type=click.IntRange(1), default=None, metavar="N", help="Diffusion sampling steps.")
@click.option("--start-sigma", type=click.FloatRange(0, 1), default=None, metavar="S",
              help="Diffusion start noise level for upscaling/interpolation (data in [-1, 1]; "
                   "the model's tuned default when omitted). Higher: more freedom, less fidelity.")
@click.option("--seed", type=int, default=None, metavar="N", help="Random seed for diffusion sampling.")
@click.option("--tile", type=click.IntRange(16), default=None, metavar="PX",
              help="Process frames in tiles of this many pixels (less memory).")
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
@click.option("--profile", "show_profile", is_flag=True,
              help="Print where the time went: the models vs decode, encode and the rest.")
@click.option("--no-copy-audio", is_flag=True, help="Drop the audio streams.")
@click.option("--no-copy-subtitles", is_flag=True, help="Drop the subtitle streams.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no summary line.")
def command(input, output, deblock, denoise, scale, fps_multiplier, fps, model, deblock_method, denoise_method,
            upscale_method,
            interp_method, preset, device, codec, crf, encoder_preset, bit_depth, steps, start_sigma, seed, tile,
            overwrite, resume, keep_temp, report_seams, show_profile, no_copy_audio, no_copy_subtitles,
            as_json, quiet):
    """Deblock, denoise, upscale and/or interpolate INPUT into a new video file.

    Tasks run in the order deblock, denoise, upscale, interpolate, chunk by chunk, with chunks cut at
    scene changes and source key frames.
    """
    if fps is not None and fps_multiplier is not None:
        raise click.UsageError("use either --fps-multiplier or --fps, not both")
    overrides = {
        "deblock": deblock, "deblock_method": deblock_method, "denoise": denoise, "scale": None if scale is None else int(scale),
        "fps_multiplier": fps_multiplier, "fps": fps, "model": model,
        "denoise_method": denoise_method, "upscale_method": upscale_method,
        "interp_method": interp_method, "device": device, "codec": codec, "crf": crf,
        "encoder_preset": encoder_preset, "bit_depth": None if bit_depth is None else int(bit_depth),
        "steps": steps, "start_sigma": start_sigma, "seed": seed, "tile": tile,
        "copy_audio": False if no_copy_audio else None,
        "copy_subtitles": False if no_copy_subtitles else None,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    from restore.pipeline import enhance

    show_bar = not quiet and sys.stderr.isatty()
    if keep_temp and not resume:
        raise click.UsageError("--keep-temp keeps the --resume work folder: give --resume too")
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
                   f"{result.width}x{result.height}, {result.chunks} chunks, {methods}; "
                   f"{result.seconds:.1f} s ({result.fps:.1f} frames/s on {result.device})")

