"""The methods being compared, as uniform callables on uint8 frames.

SpatialMethod: (T, H, W, 3) uint8 clip -> (T, H*s, W*s, 3) uint8 (one call = one clip, one shot)
InterpMethod:  (first, second) uint8 (H, W, 3) -> middle uint8 (H, W, 3), at t = 0.5

Registry methods (restore.registry) are wrapped with float conversion and 8-bit rounding of the
output; ffmpeg peers work on uint8 directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from restore.io.frames import from_float, to_float
from restore.registry import MethodOptions, get

from . import ffmpeg_peers


def registry_restorer(task: str, name: str, options: MethodOptions):
    return get(task, name, options.scale).factory(options)


def spatial(restorer) -> Callable[[np.ndarray], np.ndarray]:
    def run(frames_u8: np.ndarray) -> np.ndarray:
        return from_float(restorer(to_float(frames_u8)), np.uint8)

    run.restorer = restorer
    return run


def interpolator(interp, t: float = 0.5) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def run(first_u8: np.ndarray, second_u8: np.ndarray) -> np.ndarray:
        # One pair per call: the 15 triplets are unrelated scenes, and a diffusion interpolator
        # treats the pairs of one call as consecutive frames of one chunk.
        out = interp(to_float(first_u8)[None], to_float(second_u8)[None], t)
        return from_float(out[0], np.uint8)

    run.interp = interp
    return run


@dataclass(frozen=True)
class DenoisePeer:
    """A classical denoiser with one tuned strength."""
    label: str          # name in the tables
    param: str          # the tuned parameter
    prior: float        # first guess per unit of noise sigma
    lo: float
    hi: float
    tune_frames: int    # consecutive frames it is tuned on
    description: str
    recipe_extra: dict = field(default_factory=dict)

    def build(self, value: float, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
        if self.label == "nlmeans (OpenCV)":
            return spatial(registry_restorer("denoise", "nlmeans", MethodOptions(strength=value, device=device)))
        peer = self.recipe_extra["ffmpeg_filter"]
        return lambda frames_u8: ffmpeg_peers.apply_peer(peer, value, frames_u8)

    def recipe(self) -> dict:
        return {"param": self.param, "description": self.description, **self.recipe_extra}


def _ffmpeg_peer(name: str, tune_frames: int) -> DenoisePeer:
    p = ffmpeg_peers.PEERS[name]
    return DenoisePeer(f"{name} (ffmpeg)", p.param, p.prior, p.lo, p.hi, tune_frames, p.description,
                       {"ffmpeg_filter": name, "graph": ffmpeg_peers.filter_graph(name, "{v}"),
                        "ffmpeg": ffmpeg_peers.FFMPEG})


# Tuning frame counts: temporal filters need a few consecutive frames to act as they do on the full
# clip (OpenCV's 5-frame window is complete only on >= 5 frames); the per-frame ffmpeg filters are
# slow at 854x480 and need fewer.
DENOISE_PEERS: dict[str, DenoisePeer] = {
    "nlmeans": DenoisePeer(
        "nlmeans (OpenCV)", "strength", 1.0, 1.0, 255.0, 3,
        "restore's OpenCV non-local means (5-frame window, 7x7 patches, 15x15 search, h = 0.4 strength); "
        "registry 'nlmeans' with MethodOptions.strength tuned"),
    "hqdn3d": _ffmpeg_peer("hqdn3d", 12),
    "ffmpeg-nlmeans": _ffmpeg_peer("nlmeans", 3),
    "bm3d": _ffmpeg_peer("bm3d", 3),
}
