"""The enhance settings as click options, shared by `restore enhance` and `restore batch run`.

Generated from restore.config.FLAGS (name, config key, type, help), so both commands spell and
parse every setting alike, and `--set dotted.key=VALUE` reaches any config key the flags do not
cover. overrides_from() turns the parsed values into enhance()'s keyword overrides.
"""
from __future__ import annotations

import click

from restore.config import FLAGS, Flag, parse_settings


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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


class OptionalLevel(click.ParamType):
    """A flag whose value may be left out: `--denoise` / `--deblock` alone (or `auto`) estimate it
    from the video; `--denoise 15` / `--deblock 0.5` set it, within [0, hi]."""

    def __init__(self, flag: str, name: str, what: str, hi: float, example: str):
        self.flag, self.name, self.what, self.hi, self.example = flag, name, what, hi, example

    def convert(self, value, param, ctx):
        if value is None or value == "auto" or isinstance(value, (int, float)):
            return value
        try:
            level = float(value)
        except ValueError:
            self.fail(f"{value!r} is not a {self.name}. {self.flag} takes {self.example}; "
                      f"put INPUT before {self.flag}, e.g. `restore enhance clip.mp4 {self.flag}`", param, ctx)
        if not 0 <= level <= self.hi:  # also refuses nan
            self.fail(f"{self.what} must be between 0 and {self.hi:g}, got {value}", param, ctx)
        return level


OPTIONAL_TYPES = {
    "denoise": OptionalLevel("--denoise", "noise sigma", "noise sigma", 255, "an optional number (0-255 scale)"),
    "deblock": OptionalLevel("--deblock", "strength", "deblock strength", 1, "auto or a number from 0 to 1"),
}


def _click_type(f: Flag):
    if f.choices:
        return click.Choice(list(f.choices))
    if f.lo is not None or f.hi is not None:
        rng = click.IntRange if f.type is int else click.FloatRange
        return rng(f.lo, f.hi, min_open=f.lo_open)
    return f.type


def _option(f: Flag, help_text: str):
    if f.style == "optional":
        return click.option(f.option, f.name, type=OPTIONAL_TYPES[f.name], is_flag=False,
                            flag_value="auto", default=None, metavar=f.metavar, help=help_text)
    if f.style == "off":
        return click.option(f.option, "no_" + f.name, is_flag=True, help=help_text)
    return click.option(f.option, f.name, type=_click_type(f), default=None, metavar=f.metavar,
                        help=help_text)


def enhance_options(help: dict[str, str] | None = None):
    """Decorator: -c/--config, every flag of restore.config.FLAGS and --set, in that order.
    `help` replaces the help text of some (by flag name) for one command."""
    help = help or {}

    def decorate(fn):
        opts = [click.option("-c", "--config", "config", default="default", show_default=True,
                             metavar="CONFIG",
                             help=help.get("config", "Config name (configs/*.yaml) or YAML file; "
                                                     "the flags here override it."))]
        opts += [_option(f, help.get(f.name, f.help)) for f in FLAGS]
        opts.append(click.option(
            "--set", "settings", multiple=True, metavar="KEY=VALUE",
            help="Set any config key (dotted, YAML value), e.g. --set chunk.max_len=16 "
                 "--set encode.pix_fmt=yuv444p; repeatable, over the config and the flags' keys."))
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


def overrides_from(params: dict) -> tuple[str, dict]:
    """(config, keyword overrides for restore.enhance) from the values of enhance_options(),
    popped from `params`. Flags left out are not in the overrides, so the config's values stand."""
    config = params.pop("config")
    settings = parse_settings(params.pop("settings"))
    overrides = {}
    for f in FLAGS:
        if f.style == "off":
            if params.pop("no_" + f.name):
                overrides[f.name] = False
            continue
        value = params.pop(f.name)
        if value is not None:
            overrides[f.name] = f.type(value) if f.choices else value
    if "fps" in overrides and "fps_multiplier" in overrides:
        raise click.UsageError("use either --fps-multiplier or --fps, not both")
    keys = {f.key: f.option for f in FLAGS if f.name in overrides}
    for key in settings:
        if key in keys:
            raise click.UsageError(f"{keys[key]} and --set {key} set the same key: give one")
    overrides.update(settings)
    return config, overrides
