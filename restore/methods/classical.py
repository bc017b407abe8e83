"""Classical restoration methods: the baselines the diffusion models have to beat.

denoise:     nlmeans  (OpenCV non-local means over a temporal window)
upscale:     bicubic, lanczos  (cv2.resize)
interpolate: blend (linear cross-fade), dis (DIS optical flow, bidirectional warping,
             occlusion-aware blending)
Callables follow the contracts in restore.registry. Registration order sets the classical
defaults (first registered wins): nlmeans, lanczos, dis.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..registry import MethodOptions, register
from ..ops.flow import INTERP_PRESET, dis_flow, interpolate_pair
from ..ops.noise import estimate_noise_sigma


def _to_u8(frames: np.ndarray) -> np.ndarray:
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def nlmeans_h(sigma255: float) -> float:
    """OpenCV filter strength h for a noise sigma on the 0-255 scale.

    OpenCV's fast variants weigh patches by exp(-d2 / h^2) without subtracting the noise floor,
    so h well below sigma works best. Measured on textured synthetic clips (7x7 patches, 5-frame
    window) at sigma 10/25/50: h = 0.4 sigma was best or tied at all three (0.3-0.7 tried), in line
    with Buades et al.'s 0.35-0.55 sigma for colour NL-means (IPOL 2011).
    """
    return float(max(1.0, 0.4 * sigma255))


class NLMeansDenoiser:
    scale = 1

    # search 15 rather than OpenCV's usual 21: half the cost, and on our sigma-25 test clips the
    # PSNR was within 0.5 dB either way (better on texture, slightly worse on smooth content).
    def __init__(self, options: MethodOptions, window: int = 5, template: int = 7, search: int = 15):
        self.sigma255 = options.strength  # None = estimate per chunk
        self.window = window
        self.template = template
        self.search = search

    def __call__(self, frames: np.ndarray, anchors: np.ndarray | None = None) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        sigma255 = self.sigma255 if self.sigma255 is not None else estimate_noise_sigma(frames)
        if sigma255 <= 0:
            return frames.copy()
        h = nlmeans_h(sigma255)
        u8 = _to_u8(frames)
        t = len(u8)
        out = np.empty_like(frames)
        for i in range(t):
            # OpenCV wants the target in the middle of the window. Frame order does not matter
            # to non-local means (it searches every frame for similar patches), so at chunk edges
            # we take the `window` nearest frames and put the target in the middle instead of
            # shrinking the window, which would denoise edge frames less and flicker at seams.
            n = min(self.window, t if t % 2 else t - 1)
            order = sorted(range(t), key=lambda j: (abs(j - i), j))[:n]
            others = [j for j in order if j != i]
            half = n // 2
            window = [u8[j] for j in others[:half]] + [u8[i]] + [u8[j] for j in others[half:]]
            den = cv2.fastNlMeansDenoisingColoredMulti(
                window, half, n, None, h, h, self.template, self.search)
            # Keep the sub-8-bit precision of deep sources: apply the 8-bit correction to the float frame.
            out[i] = frames[i] + (den.astype(np.float32) - u8[i].astype(np.float32)) / 255.0
        return np.clip(out, 0.0, 1.0)


@register("denoise", "nlmeans", family="classical",
          description="OpenCV non-local means over a 5-frame temporal window; sigma estimated when not given")
def _nlmeans(options: MethodOptions):
    return NLMeansDenoiser(options)


class ResizeUpscaler:
    def __init__(self, scale: int, interpolation: int):
        self.scale = int(scale)
        self.interpolation = interpolation

    def __call__(self, frames: np.ndarray, anchors: np.ndarray | None = None) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float32)
        t, h, w = frames.shape[:3]
        out = np.empty((t, h * self.scale, w * self.scale, frames.shape[3]), np.float32)
        for i in range(t):
            out[i] = cv2.resize(frames[i], (w * self.scale, h * self.scale), interpolation=self.interpolation)
        return np.clip(out, 0.0, 1.0, out=out)


def _check_scale(name: str, scale: int) -> int:
    if scale not in (2, 4):
        raise ValueError(f"{name} supports scales 2 and 4, not {scale}")
    return scale


@register("upscale", "lanczos", family="classical", scales=(2, 4),
          description="Lanczos interpolation over 8x8 neighbours (cv2.INTER_LANCZOS4)")
def _lanczos(options: MethodOptions):
    return ResizeUpscaler(_check_scale("lanczos", options.scale), cv2.INTER_LANCZOS4)


@register("upscale", "bicubic", family="classical", scales=(2, 4),
          description="Bicubic interpolation (cv2.INTER_CUBIC)")
def _bicubic(options: MethodOptions):
    return ResizeUpscaler(_check_scale("bicubic", options.scale), cv2.INTER_CUBIC)


class DISInterpolator:
    """Flow-based interpolation; caches the flows of the last pair so that several t values
    between the same two frames (multipliers above 2) estimate flow once."""

    def __init__(self, preset: str = INTERP_PRESET):
        self.preset = preset
        self._cache: tuple | None = None

    def _flows(self, a: np.ndarray, b: np.ndarray):
        key = (a.shape, a.tobytes()[:4096], b.tobytes()[:4096])
        if self._cache is not None and self._cache[0] == key and np.array_equal(self._cache[1], a) \
                and np.array_equal(self._cache[2], b):
            return self._cache[3]
        flows = (dis_flow(a, b, self.preset), dis_flow(b, a, self.preset))
        self._cache = (key, a.copy(), b.copy(), flows)
        return flows

    def __call__(self, first: np.ndarray, second: np.ndarray, t: float) -> np.ndarray:
        first = np.asarray(first, dtype=np.float32)
        second = np.asarray(second, dtype=np.float32)
        out = np.empty_like(first)
        for n in range(len(first)):
            f01, f10 = self._flows(first[n], second[n])
            out[n] = interpolate_pair(first[n], second[n], t, f01, f10)
        return out


@register("interpolate", "dis", family="classical",
          description="DIS optical flow both ways (patch stride 2), motion projected to t, bidirectional warping, "
                      "blending with half-strength occlusion weights")
def _dis(options: MethodOptions):
    return DISInterpolator(options.extra.get("flow_preset", INTERP_PRESET))


def blend(first: np.ndarray, second: np.ndarray, t: float) -> np.ndarray:
    first = np.asarray(first, dtype=np.float32)
    second = np.asarray(second, dtype=np.float32)
    return ((1.0 - t) * first + t * second).astype(np.float32)


@register("interpolate", "blend", family="classical",
          description="Linear cross-fade between neighbouring frames")
def _blend(options: MethodOptions):
    return blend
