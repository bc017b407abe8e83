"""Training configuration: YAML -> dataclass, with errors that name the bad key."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError


@dataclass
class TrainConfig:
    task: str = "denoise"              # denoise | sr | interp
    name: str = "denoise"              # model name (file stem of the checkpoint)
    scale: int = 1                     # sr: 2 or 4
    out_dir: str = "runs/denoise"
    sources: list = field(default_factory=list)   # [{path, kind, downscale, ...}]: see SOURCE_KEYS, check_source()
    max_frames_per_source: int = 200
    # architecture: `model: {type: window, factor: 2, ...}` (windownet.WindowNet); empty = the
    # v1 VideoUNet built from channels / blocks / attention
    model: dict = field(default_factory=dict)
    channels: list = field(default_factory=lambda: [32, 64, 128])
    blocks: int = 2
    attention: bool = True
    # batches
    frames: int = 4                    # T: frames per training chunk
    patch: int = 96                    # HR patch size (multiple of 8, and of 8*scale for sr)
    batch: int = 4
    p_anchor: float = 0.5              # probability a chunk gets 1-2 anchor frames
    align_windows: bool = False        # denoise: every frame warped onto the centre one, as the
                                       # centred windows of inference.align_radius (centred.py)
    # degradations: a list of named steps (degradations.py); empty = the v1 chain from the keys below
    degradations: list = field(default_factory=list)
    max_noise: float = 55.0            # denoise: noise std upper bound, 0-255 scale
    noise_power: float = 1.0           # denoise: std = max_noise * u**noise_power; < 1 favours heavy noise
    p_jpeg: float = 0.15               # denoise: share of chunks with JPEG damage before the noise
    p_quantize: float = 0.8            # denoise: share of chunks clipped + rounded to 8 bit
    sigma_floor: float = 0.004         # denoise: smallest start sigma (clean input)
    start_sigma_min: float = 0.02      # sr/interp: start noise range ([-1,1] units)
    start_sigma_max: float = 0.5
    interp_max_stride: int = 1         # interp: source frames may be skipped (more motion per pair)
    p_first_step: float = 0.3          # share of samples trained exactly at the start level
    # interp: precomputed whole-frame flow hints (bank.py) instead of flow on every patch
    interp_bank: bool = False
    bank_strides: list = field(default_factory=lambda: [2, 3])   # pair spacings n (times k/n)
    bank_stride_p: list = field(default_factory=lambda: [0.7, 0.3])
    bank_scales: list = field(default_factory=lambda: [1.0])     # also train on downscaled copies
    bank_workers: int = 0              # processes computing the hints (0 = all cores)
    # optimisation
    lr: float = 4e-4
    weight_decay: float = 0.01
    lr_scale_new: float = 1.0          # lr of a window network's propagation, as a multiple of lr
    warmup: int = 100
    iters: int = 100000
    max_minutes: float = 60.0
    ema: float = 0.999
    loss: str = "charbonnier"          # charbonnier | l1 | l2
    lpips_weight: float = 0.0
    threads: int = 0                   # torch threads (0 = leave default)
    seed: int = 0
    init_weights: str = ""             # start a new run from these weights (a phase on another machine)
    device: str = "auto"
    amp: bool = True                   # bfloat16 autocast on CUDA and on CPUs with native bf16
    # bookkeeping
    log_every: int = 20
    ckpt_every: int = 100
    val_every: int = 300
    val_source: dict = field(default_factory=dict)  # {path, kind} small validation clip
    loader_workers: int = 0            # processes synthesising batches (0 = in the training process)
    device_batches: bool = False       # denoise/sr: corpus, crops and degradations on the training device
    # how restorers run the model, written to the checkpoint's `inference:` block (see
    # checkpoint.inference_block); keys left out fall back to default_steps / default_start_sigma
    inference: dict = field(default_factory=dict)
    default_steps: int = 2
    default_start_sigma: float = 0.2


# A training source: {path: glob, kind, downscale, reader, weight} (data.load_sources); kind `encoded`
# also names its clean frames ({clean: folder, clean_downscale}, scripts/make_codec_bank.py).
SOURCE_KINDS = ("frames", "video", "images", "encoded")
SOURCE_KEYS = ("path", "kind", "downscale", "reader", "clean", "clean_downscale", "weight")
READERS = ("pyav", "opencv")


def check_source(entry, where: str, path) -> None:
    """ConfigError naming `where` (e.g. "sources, entry 2") for a source the loader cannot read:
    not a mapping, no path, an unknown kind, reader or key, a bad downscale or weight."""
    def bad(msg):
        raise ConfigError(f"key {where}: {msg}", path)

    if not isinstance(entry, dict):
        bad(f"expected a mapping like {{path: clips/*.mp4, kind: video}}, got {entry!r}")
    unknown = sorted(set(map(str, entry)) - set(SOURCE_KEYS))
    if unknown:
        bad(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(SOURCE_KEYS)})")
    if not isinstance(entry.get("path"), str) or not entry["path"].strip():
        bad(f"needs a 'path' (a file, folder or glob), got {entry!r}")
    kind = entry.get("kind", "frames")
    if kind not in SOURCE_KINDS:
        bad(f"unknown kind {kind!r} ({', '.join(SOURCE_KINDS)})")
    if entry.get("reader", "pyav") not in READERS:
        bad(f"unknown reader {entry['reader']!r} ({', '.join(READERS)})")
    for key in ("downscale", "clean_downscale"):
        value = entry.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad(f"'{key}' must be an integer of at least 1, got {value!r}")
    weight = entry.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        bad(f"'weight' must be a positive number, got {weight!r}")
    if kind == "encoded" and not isinstance(entry.get("clean"), str):
        bad("a source of kind 'encoded' needs 'clean': the folder of its clean videos")
    if kind != "encoded" and ("clean" in entry or "clean_downscale" in entry):
        bad("'clean' / 'clean_downscale' belong to sources of kind 'encoded' only")


INFERENCE_KEYS = {"window", "anchors", "lookahead", "overlap", "steps", "start_sigma", "sampler", "sigma_floor", "tile",
                  "align_radius", "fuse", "noise_scale", "fuse_net"}


def _set(raw: dict, key: str, value, known: dict, path) -> None:
    """One override: a top-level key (`patch`), or a dotted key into a mapping-valued key
    (`inference.steps`, `model.factor`). Unknown top-level keys raise ConfigError naming the key."""
    top, dot, rest = key.partition(".")
    if top not in known:
        raise ConfigError(f"unknown key {key!r}", path)
    if not dot:
        raw[key] = value
        return
    node = raw.get(top)
    if node is None:
        default = known[top].default_factory if known[top].default_factory is not dataclasses.MISSING else None
        node = default() if default else None
    if not isinstance(node, dict):
        raise ConfigError(f"key {key!r}: {top!r} is not a mapping of keys to values", path)
    node = raw[top] = dict(node)  # never edits the YAML's nor the dataclass's mapping in place
    *parents, leaf = rest.split(".")
    for p in parents:
        child = node.get(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"key {key!r}: {top}.{p} is not a mapping of keys to values", path)
        node[p] = node = dict(child)
    node[leaf] = value


def load_train_config(path: str | Path, overrides: dict | None = None) -> TrainConfig:
    """The training YAML at `path`, with `overrides` ({key or dotted.key: value}, e.g. from
    `--set`) over it; ConfigError naming the key for an unknown key or a bad value."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError("training config not found", path) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML: {err}", path) from None
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping at the top level", path)
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key, value in (overrides or {}).items():
        _set(raw, key, value, known, path)
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"unknown key {key!r}", path)
        default = known[key].default
        if default is not dataclasses.MISSING and default is not None and value is not None:
            if isinstance(default, bool) != isinstance(value, bool) or (
                    isinstance(default, (int, float)) and not isinstance(value, (int, float))):
                raise ConfigError(f"key {key!r}: expected {type(default).__name__}, got {value!r}", path)
    cfg = TrainConfig(**raw)
    if not isinstance(cfg.sources, list):
        raise ConfigError(f"key 'sources': expected a list of sources, got {cfg.sources!r}", path)
    for i, entry in enumerate(cfg.sources):
        check_source(entry, f"'sources', entry {i + 1}", path)
    if cfg.val_source:  # {} (or null): no validation clip
        check_source(cfg.val_source, "'val_source'", path)
    if cfg.task not in ("denoise", "sr", "interp"):
        raise ConfigError(f"key 'task': unknown task {cfg.task!r} (denoise, sr, interp)", path)
    if cfg.loss not in ("charbonnier", "l1", "l2"):
        raise ConfigError(f"key 'loss': unknown loss {cfg.loss!r} (charbonnier, l1, l2)", path)
    if len(cfg.bank_stride_p) != len(cfg.bank_strides) or min(cfg.bank_strides, default=2) < 2:
        raise ConfigError("keys 'bank_strides' / 'bank_stride_p': one probability per stride, strides >= 2", path)
    from .degradations import build_chain

    build_chain(cfg.degradations)  # validates names and parameters now, not hours into a run
    scales = [d.get("scale", 2) for d in cfg.degradations if d.get("name") == "bicubic_down"]
    if cfg.task == "sr" and cfg.degradations and scales != [cfg.scale]:
        raise ConfigError(f"key 'degradations': an sr model of scale {cfg.scale} needs exactly one "
                          f"bicubic_down with scale {cfg.scale}", path)
    if cfg.model and cfg.model.get("type") != "window":
        raise ConfigError("key 'model': only {type: window, ...} is known (leave it out for the v1 U-Net)", path)
    if cfg.align_windows and (cfg.task != "denoise" or cfg.frames % 2 == 0):
        raise ConfigError("key 'align_windows': for the denoise task with an odd number of frames", path)
    unknown = set(cfg.inference) - INFERENCE_KEYS
    if unknown:
        raise ConfigError(f"key 'inference': unknown key(s) {', '.join(sorted(unknown))}", path)
    if "noise_scale" in cfg.inference:
        from .restorers import noise_scale_at

        try:
            noise_scale_at(cfg.inference["noise_scale"], 0.0)
        except ValueError as e:
            raise ConfigError(f"key 'inference': {e}", path) from None
    mult = 8 * (cfg.scale if cfg.task == "sr" else 1)
    if cfg.model:
        mult = max(mult, int(cfg.model.get("factor", 2)) * 4)
    if cfg.patch % mult:
        raise ConfigError(f"key 'patch': must be a multiple of {mult}", path)
    return cfg
