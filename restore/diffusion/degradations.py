"""Named degradations, composed into a training chain from the YAML (BasicSR's registry pattern).

A training config lists what happens to a clean clip, in order:

    degradations:
      - {name: jpeg, p: 0.15, quality: [55, 95]}
      - {name: gaussian_noise, sigma255: [0, 55], power: 0.7, p_clean: 0.05}
      - {name: quantize, p: 0.8}

Each entry names a function registered here, called as fn(clip, rng, state, **params) on a float32
(T, 3, H, W) torch clip in [0, 1], on whichever device the batch is made (the GPU when training
there: synthesis on the host would leave it waiting). It returns the degraded clip and may record
what it did in `state` (the noise level the model is conditioned on, the scale). `p` is the share
of clips it applies to. Scalar draws come from the numpy generator `rng`, so a chain is
reproducible for a seed on any device; codecs without a GPU implementation (JPEG, real video
encoders) round-trip through the host.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from ..ops.resize import imresize
from .degrade import jpeg

Degradation = Callable[..., torch.Tensor]
DEGRADATIONS: dict[str, Degradation] = {}


def register(name: str):
    def deco(fn: Degradation) -> Degradation:
        if name in DEGRADATIONS:
            raise ValueError(f"degradation {name!r} registered twice")
        DEGRADATIONS[name] = fn
        return fn
    return deco


def _uniform(rng: np.random.Generator, bounds, power: float = 1.0) -> float:
    lo, hi = (bounds, bounds) if np.isscalar(bounds) else bounds
    return float(lo + (hi - lo) * rng.random() ** power)


def randn_like(x: torch.Tensor, rng: np.random.Generator, shape=None) -> torch.Tensor:
    """Standard normals shaped like `x` (or `shape`) on its device, determined by `rng`: numpy's on
    the host, a seeded torch generator elsewhere (numpy's normals for a batch cost more than a GPU
    training step)."""
    shape = tuple(x.shape if shape is None else shape)
    if x.device.type == "cpu":
        return torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
    gen = torch.Generator(device=x.device)
    gen.manual_seed(int(rng.integers(2 ** 62)))
    return torch.randn(shape, generator=gen, device=x.device)


def _host_u8(clip: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) [0, 1] -> (T, H, W, 3) uint8 on the host, for the codecs."""
    return (clip.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _from_host(frames: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(frames)).to(like.device).permute(0, 3, 1, 2)
    return t.float() / (255 if frames.dtype == np.uint8 else 1)


@register("gaussian_noise")
def gaussian_noise(clip, rng, state, sigma255=(0.0, 55.0), power: float = 1.0, p_clean: float = 0.0):
    """White Gaussian noise, one std per clip; `power` < 1 favours heavy noise; the std (0-255
    scale) goes to state['sigma255'] (added in quadrature to any earlier noise)."""
    s = 0.0 if rng.random() < p_clean else _uniform(rng, sigma255, power)
    state["sigma255"] = float(np.hypot(state.get("sigma255", 0.0), s))
    return clip + randn_like(clip, rng) * (s / 255)


@register("jpeg")
def jpeg_frames(clip, rng, state, quality=(55, 95)):
    q = int(round(_uniform(rng, quality)))
    frames = _host_u8(clip).astype(np.float32) / 255
    return _from_host(np.stack([jpeg(f, q) for f in frames]), clip)


@register("quantize")
def quantize(clip, rng, state, bits: int = 8):
    """Real inputs are 8-bit video: clipped and rounded."""
    levels = 2 ** bits - 1
    return torch.round(clip.clamp(0, 1) * levels) / levels


@register("bicubic_down")
def bicubic_down(clip, rng, state, scale: int = 2):
    """MATLAB bicubic with antialiasing (the 'BI' protocol)."""
    h, w = clip.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"bicubic_down: {w}x{h} is not a multiple of {scale}")
    state["scale"] = scale
    return imresize(clip, (h // scale, w // scale))


@register("codec")
def codec(clip, rng, state, codecs=("libx264",), crf=(18, 45), bits_per_pixel=(0.02, 0.3)):
    """A real encode and decode through PyAV (4:2:0): x264 / x265 at a CRF drawn from `crf`,
    MPEG-2 / MPEG-4 Part 2 at a bitrate of `bits_per_pixel` per pixel per frame (25 fps)."""
    from ..io.roundtrip import CRF_CODECS, encode_decode

    name = str(codecs[int(rng.integers(len(codecs)))])
    u8 = _host_u8(clip)
    t, h, w, _ = u8.shape
    if name in CRF_CODECS:
        q = int(round(_uniform(rng, crf)))
        out = encode_decode(u8, name, crf=q)
        state["codec"] = f"{name} crf {q}"
    else:
        bpp = _uniform(rng, bits_per_pixel)
        out = encode_decode(u8, name, bitrate=int(bpp * h * w * 25))
        state["codec"] = f"{name} {bpp:.3f} bpp"
    return _from_host(out, clip)


@register("encoded")
def encoded(clip, rng, state):
    """The same crop of a precomputed encode of the source (sources of kind `encoded`, made by
    scripts/make_codec_bank.py): real codec damage where encoding in the loop is too slow or the
    training machine has no encoder. The clip source leaves the crop in state['encoded']."""
    if "encoded" not in state:
        raise ValueError("the 'encoded' degradation needs sources of kind 'encoded'")
    state["codec"] = state.pop("encoded_label", "encoded")
    return state.pop("encoded").to(clip.dtype)


class Chain:
    """The configured degradations, applied in order; `p` entries apply to that share of clips."""

    def __init__(self, steps: list[tuple[str, float, Degradation, dict]]):
        self.steps = steps

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator,
                 state: dict | None = None) -> tuple[torch.Tensor, dict]:
        state = {} if state is None else state
        out = clip
        for _, p, fn, params in self.steps:
            if p >= 1 or rng.random() < p:
                out = fn(out, rng, state, **params)
        state.pop("encoded", None)
        return out.float(), state


def build_chain(entries: list) -> Chain:
    """YAML list -> Chain; errors name the entry and the bad key."""
    import inspect

    steps = []
    for i, entry in enumerate(entries or []):
        if not isinstance(entry, dict) or "name" not in entry:
            raise ConfigError(f"key 'degradations[{i}]': expected a mapping with a 'name'")
        params = dict(entry)
        name = params.pop("name")
        p = float(params.pop("p", 1.0))
        if name not in DEGRADATIONS:
            raise ConfigError(f"key 'degradations[{i}]': unknown degradation {name!r} "
                              f"({', '.join(sorted(DEGRADATIONS))})")
        fn = DEGRADATIONS[name]
        accepted = set(inspect.signature(fn).parameters) - {"clip", "rng", "state"}
        unknown = set(params) - accepted
        if unknown:
            raise ConfigError(f"key 'degradations[{i}]' ({name}): unknown parameter(s) "
                              f"{', '.join(sorted(unknown))} (accepted: {', '.join(sorted(accepted))})")
        if not 0 <= p <= 1:
            raise ConfigError(f"key 'degradations[{i}]' ({name}): p must be in [0, 1], got {p}")
        steps.append((name, p, fn, params))
    return Chain(steps)
