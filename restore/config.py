"""Enhancement settings: YAML configs (configs/*.yaml) validated into typed dataclasses.

A config is a built-in name (`default`, `archive-vhs`, `sr-x2`, `sr-x4`, `fps-x2`) or a path to a
YAML file. Every config is laid over the dataclass defaults below (configs/default.yaml spells them
out), then keyword overrides (the command-line flags and `--set`) are laid over the config. Unknown keys and
bad values raise ConfigError naming the file and the key, e.g.
`configs/foo.yaml: unknown key 'chunk.maxlen'`.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import string
import types
import typing
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Union

from .device import PRECISIONS
from .errors import ConfigError


@dataclass
class InputConfig:
    deinterlace: str = "auto"       # auto (when the stream is tagged interlaced), always, never
    on_error: str = "stop"          # damaged video data: stop with an error, or skip it and go on


@dataclass
class DeblockConfig:
    enabled: bool = False
    strength: float | None = None   # 0 (untouched) to 1 (full correction); None = estimate from the stream
    method: str | None = None


@dataclass
class DenoiseConfig:
    enabled: bool = False
    strength: float | None = None   # noise sigma on the 0-255 scale; None = estimate per chunk
    method: str | None = None       # registry name; None = the default (or model.name)


@dataclass
class UpscaleConfig:
    scale: int = 1                  # 1 (off), 2 or 4
    method: str | None = None


@dataclass
class InterpolateConfig:
    multiplier: int = 1             # frames out per frame in; 1 = off
    fps: float | None = None        # target frame rate instead of a multiplier (timestamps resampled)
    method: str | None = None


@dataclass
class ChunkConfig:
    min_len: int = 8
    max_len: int = 32
    overlap: int = 2                # anchor frames carried from the previous chunk of a shot
    cut_floor: float = 15.0         # scene cut: thumbnail difference above this (0-255 scale) ...
    cut_ratio: float = 3.0          # ... and above cut_ratio x the median of its neighbours
    cut_window: int = 8             # neighbours on each side in that median


@dataclass
class EncodeConfig:
    codec: str = "libx264"
    crf: int | None = None          # None = the encoder's default (x264 18, x265 20, SVT-AV1 30)
    preset: str | None = None       # encoder speed preset; None = the encoder's default
    pix_fmt: str | None = None      # None = yuv420p, or yuv420p10le for deep sources
    bit_depth: int | None = None    # 8 or 10; None = keep the source's
    copy_audio: bool = True
    copy_subtitles: bool = True


@dataclass
class ModelConfig:
    name: str | None = None         # a method family ("classical", "diffusion") or method name for all tasks
    device: str = "auto"
    precision: str = "auto"         # networks' number format on the CPU: auto (bf16 where native), fp32, bf16
    steps: int | None = None
    start_sigma: float | None = None  # diffusion start noise level (SR, interpolation); None = the model's
    seed: int = 0
    tile: int | None = None


@dataclass
class OutputConfig:
    pattern: str = "{stem}_restored{ext}"  # placeholders: {stem} {ext} {name} {task} {scale}


@dataclass
class EnhanceConfig:
    input: InputConfig = field(default_factory=InputConfig)
    deblock: DeblockConfig = field(default_factory=DeblockConfig)
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)
    upscale: UpscaleConfig = field(default_factory=UpscaleConfig)
    interpolate: InterpolateConfig = field(default_factory=InterpolateConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------------------------
# typed loading
# ------------------------------------------------------------------------------------------
def _type_name(tp) -> str:
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if args:
        return " or ".join(names.get(a, str(a)) for a in args) + " or null"
    return names.get(tp, str(tp))


def _coerce(value, tp):
    """value checked against a field type; returns the value or raises ValueError."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a)
            except ValueError:
                pass
        raise ValueError(f"expected {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):  # nan passes every "< 0" check; inf breaks arithmetic
                raise ValueError(f"expected a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str) and value:
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # e.g. an SVT-AV1 preset written as a number
    raise ValueError(f"expected {_type_name(tp)}, got {value!r}")


def _merge(obj, data: dict, source: str, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"'{prefix.rstrip('.') or 'top level'}' must be a mapping of keys to values", source)
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"unknown key '{dotted}'", source)
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            _merge(getattr(obj, key), value if value is not None else {}, source, dotted + ".")
            continue
        try:
            setattr(obj, key, _coerce(value, tp))
        except ValueError as err:
            raise ConfigError(f"bad value for '{dotted}': {err}", source) from None


def validate(cfg: EnhanceConfig, source: str) -> EnhanceConfig:
    """Checks that span one value's range or several keys; raises ConfigError naming the key."""
    def bad(key, msg):
        raise ConfigError(f"bad value for '{key}': {msg}", source)

    if cfg.input.on_error not in ON_ERROR:
        bad("input.on_error", f"must be one of {', '.join(ON_ERROR)}, got {cfg.input.on_error!r}")
    if cfg.input.deinterlace not in DEINTERLACE:
        bad("input.deinterlace", f"must be one of {', '.join(DEINTERLACE)}, got {cfg.input.deinterlace!r}")
    if cfg.deblock.strength is not None and not 0 <= cfg.deblock.strength <= 1:
        bad("deblock.strength", f"a strength between 0 and 1 (or null: estimate), got {cfg.deblock.strength}")
    if cfg.denoise.strength is not None and not 0 <= cfg.denoise.strength <= 255:
        bad("denoise.strength", f"a noise sigma between 0 and 255, got {cfg.denoise.strength}")
    if cfg.upscale.scale not in (1, 2, 4):
        bad("upscale.scale", f"must be 1, 2 or 4, got {cfg.upscale.scale}")
    if not 1 <= cfg.interpolate.multiplier <= 16:
        bad("interpolate.multiplier", f"must be between 1 and 16, got {cfg.interpolate.multiplier}")
    if cfg.interpolate.fps is not None:
        if not 0 < cfg.interpolate.fps <= 1000:
            bad("interpolate.fps", f"must be above 0 and at most 1000, got {cfg.interpolate.fps}")
        if cfg.interpolate.multiplier != 1:
            bad("interpolate.fps", "set either interpolate.fps or interpolate.multiplier, not both")
    c = cfg.chunk
    if c.min_len < 1:
        bad("chunk.min_len", f"must be at least 1, got {c.min_len}")
    if c.max_len < c.min_len:
        bad("chunk.max_len", f"must be at least chunk.min_len ({c.min_len}), got {c.max_len}")
    # A chunk is held in memory as float32 frames (and the planner's search is quadratic in it):
    # the cap keeps both bounded whatever the config says.
    if c.max_len > MAX_CHUNK_LEN:
        bad("chunk.max_len", f"must be at most {MAX_CHUNK_LEN} frames, got {c.max_len}")
    if c.cut_window > MAX_CHUNK_LEN:
        bad("chunk.cut_window", f"must be at most {MAX_CHUNK_LEN}, got {c.cut_window}")
    if not 0 <= c.overlap <= c.max_len:
        bad("chunk.overlap", f"must be between 0 and chunk.max_len ({c.max_len}), got {c.overlap}")
    if c.cut_floor < 0 or c.cut_ratio < 1 or c.cut_window < 1:
        key = "chunk.cut_floor" if c.cut_floor < 0 else "chunk.cut_ratio" if c.cut_ratio < 1 else "chunk.cut_window"
        bad(key, "cut_floor must be >= 0, cut_ratio >= 1 and cut_window >= 1")
    e = cfg.encode
    from .io.codecs import resolve_codec, resolve_encoder_preset

    try:
        spec = resolve_codec(e.codec)
    except ConfigError as err:
        bad("encode.codec", str(err))
    if e.crf is not None and spec.crf_range is not None:
        lo, hi = spec.crf_range
        if not lo <= e.crf <= hi:
            bad("encode.crf", f"must be between {lo} and {hi} for {spec.name}, got {e.crf}")
    if e.preset is not None:
        try:
            resolve_encoder_preset(spec, e.preset)
        except ConfigError as err:
            bad("encode.preset", str(err))
    if e.bit_depth not in (None, 8, 10):
        bad("encode.bit_depth", f"must be 8 or 10, got {e.bit_depth}")
    m = cfg.model
    if m.device.lower() != "auto" and m.device.lower() != "cpu" and not m.device.lower().startswith("cuda"):
        bad("model.device", f"must be auto, cpu or cuda[:N], got {m.device!r}")
    if m.precision not in PRECISIONS:
        bad("model.precision", f"must be one of {', '.join(PRECISIONS)}, got {m.precision!r}")
    if m.steps is not None and m.steps < 1:
        bad("model.steps", f"must be at least 1, got {m.steps}")
    if m.start_sigma is not None and not 0 <= m.start_sigma <= 1:
        bad("model.start_sigma", f"must be between 0 and 1, got {m.start_sigma}")
    if m.tile is not None and m.tile < 16:
        bad("model.tile", f"must be at least 16 pixels, got {m.tile}")
    check_name_pattern(cfg.output.pattern, OUTPUT_FIELDS, lambda msg: bad("output.pattern", msg))
    if "/" in cfg.output.pattern or os.sep in cfg.output.pattern:
        bad("output.pattern", "must be a file name, not a path (use -o for another folder)")
    try:
        output_name("probe.mp4", cfg.output.pattern, what=None)
    except ConfigError as err:
        bad("output.pattern", str(err))
    return cfg


MAX_CHUNK_LEN = 1024
DEINTERLACE = ("auto", "always", "never")
ON_ERROR = ("stop", "skip")
OUTPUT_FIELDS = ("stem", "ext", "name", "task", "scale")


def output_name(input_name: str, pattern: str, *, task: str = "reencode", scale: int = 1,
                codec: str | None = None, what: str | None = "output.pattern") -> str:
    """The output file name for the input file `input_name`, from a name pattern: the one rule
    of `restore enhance` (output.pattern) and `restore batch` (--name-pattern).

    Placeholders: {stem} (name without extension), {ext} (extension with its dot; .mkv for an
    input without one, with one that cannot be written, such as .mpg, .vob or .flv, or with one
    that cannot hold `codec`, such as .webm for libx264), {name} (the whole input file name), {task} (e.g. denoise-upscale),
    {scale}. ConfigError, starting with `what`, for a bad pattern or a result that is not a
    plain file name."""
    lead = f"{what} " if what else ""

    def fail(msg):
        raise ConfigError(lead + msg)

    check_name_pattern(pattern, OUTPUT_FIELDS, fail)
    from .io.codecs import output_extension

    p = Path(input_name)
    ext = output_extension(p.suffix, codec) if p.suffix else ".mkv"
    try:
        name = pattern.format(stem=p.stem, ext=ext, name=input_name, task=task, scale=scale)
    except (ValueError, IndexError) as err:
        raise ConfigError(f"{lead}{pattern!r}: {err}") from None
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ConfigError(f"{lead}{pattern!r}: gives {name!r} for {input_name!r}, "
                          "which is not a plain file name")
    return name


def check_name_pattern(pattern: str, allowed, fail) -> None:
    """An output name pattern may use only the bare placeholders in `allowed` (a format spec such
    as {scale:02d} is fine): no attribute or index access ({stem.__class__} would reach into
    Python objects), no conversions, and no NUL or control characters (not a file name).
    Calls fail(message) on the first problem."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in pattern):
        fail(f"{pattern!r} contains a control character (NUL, newline ...), not allowed in a file name")
        return
    try:
        parts = list(string.Formatter().parse(pattern))
    except ValueError as err:
        fail(f"{pattern!r} has bad braces ({err}); use {{{'}, {'.join(allowed)}}}")
        return
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or conversion is not None or "{" in (spec or ""):
            fail(f"{pattern!r}: unknown placeholder {{{name}{'!' + conversion if conversion else ''}}} "
                 f"(use {', '.join('{' + f + '}' for f in allowed)})")
            return
    try:
        pattern.format(stem="a", ext=".mp4", name="a.mp4", task="denoise", scale=2)
    except (KeyError, IndexError, ValueError) as err:
        fail(f"{pattern!r}: bad format spec ({err})")


# ------------------------------------------------------------------------------------------
# configs (the YAML files; `preset` elsewhere is the encoder's speed)
# ------------------------------------------------------------------------------------------
def builtin_configs() -> list[str]:
    return sorted(p.name[:-5] for p in files("restore.configs").iterdir()
                  if p.name.endswith(".yaml") and p.is_file())


def _read_config_file(config: str | os.PathLike) -> tuple[dict, str]:
    import yaml

    text_path = os.fspath(config)
    is_path = text_path.endswith((".yaml", ".yml")) or os.sep in text_path or "/" in text_path
    if is_path:
        source = text_path
        p = Path(text_path)
        if not p.is_file():
            raise ConfigError("config file not found" if not p.exists() else "config is not a file", source)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config ({err.__class__.__name__})", source) from None
    else:
        res = files("restore.configs").joinpath(f"{text_path}.yaml")
        source = f"configs/{text_path}.yaml"
        if not res.is_file():
            raise ConfigError(f"unknown config {text_path!r} (available: {', '.join(builtin_configs())}; "
                              "or give a path to a .yaml file)")
        text = res.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}", source) from None
    return (data if data is not None else {}), source


def load_config(config: str | os.PathLike = "default", overrides: dict | None = None) -> EnhanceConfig:
    """The config (name or YAML path) over the defaults, then `overrides` over that, validated."""
    data, source = _read_config_file(config)
    cfg = EnhanceConfig()
    _merge(cfg, data, source)
    validate(cfg, source)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


@dataclass(frozen=True)
class Flag:
    """One enhance setting as a keyword override and a command-line flag: the one table from
    which `restore enhance` and `restore batch run` build their options (cli/_options.py) and
    enhance(**overrides) maps its keywords (ALIASES).

    name: the keyword (`fps_multiplier`); the flag is --name with dashes unless `flag` says
    otherwise. key: the dotted config key. style: "value" (takes a value), "optional" (the value
    may be left out: auto), "off" (a --no-... switch that sets the key false). choices: allowed
    values, as written on the command line. lo / hi: the range the command line accepts (the
    config's own checks in validate() still apply)."""

    name: str
    key: str
    help: str
    metavar: str | None = None
    flag: str | None = None
    style: str = "value"
    choices: tuple[str, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def type(self):
        """The Python type of the config key (int, float, str, bool)."""
        obj: Any = EnhanceConfig()
        *parents, leaf = self.key.split(".")
        for p in parents:
            obj = getattr(obj, p)
        tp = typing.get_type_hints(type(obj))[leaf]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if args else tp


FLAGS: tuple[Flag, ...] = (
    Flag("deinterlace", "input.deinterlace", choices=DEINTERLACE,
         help="Interlaced sources (VHS, DV, broadcast captures): weave the fields into whole "
              "frames with FFmpeg's bwdif before anything else, one frame per frame; auto does it "
              "when the stream is tagged interlaced [default: auto]."),
    Flag("on_error", "input.on_error", choices=ON_ERROR,
         help="Damaged video data in INPUT: stop with an error naming where, or skip the damaged "
              "packets and restore the rest (their frames are missing; a warning says where) "
              "[default: stop]."),
    Flag("deblock", "deblock.strength", style="optional", metavar="[auto|STRENGTH]", lo=0, hi=1,
         help="Remove compression artefacts (blocking, ringing, mosquito noise) first; STRENGTH "
              "from 0 (untouched) to 1 (full), or auto (the default when given alone): estimated "
              "from the stream's quantisers / bitrate, nothing done on a clean input."),
    Flag("denoise", "denoise.strength", style="optional", metavar="[SIGMA]", lo=0, hi=255,
         help="Remove noise; SIGMA is its strength on the 0-255 scale (estimated from the video "
              "when omitted)."),
    Flag("scale", "upscale.scale", choices=("1", "2", "4"),
         help="Upscale by this factor (1 turns a config's upscaling off)."),
    Flag("fps_multiplier", "interpolate.multiplier", metavar="N", lo=1, hi=16,
         help="Make N frames of every frame by interpolation (scene cuts repeat a frame)."),
    Flag("fps", "interpolate.fps", metavar="F", lo=0, hi=1000, lo_open=True,
         help="Resample to a constant F frames per second instead (interpolating between "
              "source frames)."),
    Flag("model", "model.name", metavar="NAME",
         help="Method family (classical, diffusion) or method name used for every task."),
    Flag("deblock_method", "deblock.method", metavar="NAME", help="Deblocker for this run only."),
    Flag("denoise_method", "denoise.method", metavar="NAME", help="Denoiser for this run only."),
    Flag("upscale_method", "upscale.method", metavar="NAME", help="Upscaler for this run only."),
    Flag("interp_method", "interpolate.method", metavar="NAME", help="Interpolator for this run only."),
    Flag("device", "model.device", metavar="auto|cpu|cuda[:N]", help="Where models run [default: auto]."),
    Flag("precision", "model.precision", choices=PRECISIONS,
         help="Number format of the networks on the CPU [default: auto = bf16 where the CPU has "
              "native bf16 arithmetic, about twice as fast; fp32 elsewhere]."),
    Flag("codec", "encode.codec", help="Video encoder: libx264, libx265, libsvtav1 or ffv1."),
    Flag("crf", "encode.crf", metavar="N", help="Constant rate factor (lower = better, bigger)."),
    Flag("encoder_preset", "encode.preset", flag="--preset", metavar="NAME",
         help="Encoder speed preset (ultrafast ... veryslow; SVT-AV1 also 0-13)."),
    Flag("bit_depth", "encode.bit_depth", choices=("8", "10"),
         help="Output bit depth [default: the source's]."),
    Flag("steps", "model.steps", metavar="N", lo=1, help="Diffusion sampling steps."),
    Flag("start_sigma", "model.start_sigma", metavar="S", lo=0, hi=1,
         help="Diffusion start noise level for upscaling/interpolation (data in [-1, 1]; "
              "the model's tuned default when omitted). Higher: more freedom, less fidelity."),
    Flag("seed", "model.seed", metavar="N", help="Random seed for diffusion sampling."),
    Flag("tile", "model.tile", metavar="PX", lo=16,
         help="Process frames in tiles of this many pixels (less memory)."),
    Flag("copy_audio", "encode.copy_audio", flag="--no-copy-audio", style="off",
         help="Drop the audio streams."),
    Flag("copy_subtitles", "encode.copy_subtitles", flag="--no-copy-subtitles", style="off",
         help="Drop the subtitle streams."),
)

# Keyword overrides of enhance(**overrides) -> dotted config keys. Dotted keys ("chunk.max_len")
# are accepted directly too. `deblock` / `denoise` also switch their task on (apply_overrides).
ALIASES = {f.name: f.key for f in FLAGS if f.style != "optional"}
ALIASES.update({"pix_fmt": "encode.pix_fmt", "deblock_strength": "deblock.strength", "denoise_strength": "denoise.strength",
                "output_pattern": "output.pattern"})


def parse_settings(items, source: str | os.PathLike | None = None) -> dict:
    """`--set` items, "dotted.key=VALUE" each, into {dotted.key: value}; values are YAML
    (`12`, `null`, `[16, 32]`, `libx265`). ConfigError for an item that is not KEY=VALUE.
    The keys are checked by the config they are laid over."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set expects KEY=VALUE (e.g. chunk.max_len=16), got {item!r}", source)
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--set {key}: {value!r} is not a YAML value", source) from None
    return out


def apply_overrides(cfg: EnhanceConfig, overrides: dict, source: str = "command line") -> EnhanceConfig:
    """A validated copy of cfg with overrides applied. None means "not given" for a keyword
    (a flag left out); a dotted key set to None sets the value null (`--set interpolate.fps=null`).

    `denoise` takes True/False, or a number (enable with that sigma), or "auto" (enable, estimate);
    `deblock` the same, its number a strength in [0, 1].
    Giving `fps` clears the config's multiplier and vice versa: the command line wins as a whole.
    """
    cfg = copy.deepcopy(cfg)
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None and "." not in key:
            continue
        if key in ("denoise", "deblock"):
            if isinstance(value, bool):
                nested[f"{key}.enabled"] = value
            elif isinstance(value, str) and value.lower() == "auto":
                nested[f"{key}.enabled"] = True
                nested[f"{key}.strength"] = None
            else:
                nested[f"{key}.enabled"] = True
                nested[f"{key}.strength"] = value
            continue
        dotted = ALIASES.get(key, key)
        nested[dotted] = value
    if "interpolate.fps" in nested and "interpolate.multiplier" not in nested:
        nested["interpolate.multiplier"] = 1
    if "interpolate.multiplier" in nested and "interpolate.fps" not in nested:
        nested["interpolate.fps"] = None
    tree: dict = {}
    for dotted, value in nested.items():
        parts = dotted.split(".")
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"unknown key '{dotted}'", source)
        node[parts[-1]] = value
    _merge(cfg, tree, source)
    return validate(cfg, source)
