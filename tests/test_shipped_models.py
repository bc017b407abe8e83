"""Every shipped model loads from the package and restores real footage better than its input.

Real assertions on the bundled Big Buck Bunny clip: the denoiser removes Gaussian noise, the SR
models beat the bicubic upsample they start from, the interpolator beats the linear blend.
"""
from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest

import restore.methods  # noqa: F401  (registers the built-in methods)
from restore import registry
from restore.diffusion import zoo
from restore.io import decode
from restore.metrics import psnr as P
from restore.ops.resize import imresize_hwc
from restore.registry import MethodOptions

SAMPLE = str(files("restore.data") / "sample.mp4")


def _psnr(a, b):
    return P.psnr(np.clip(a, 0, 1), np.asarray(b), peak=1.0)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """6 frames, a 128x160 crop with detail, float32 in [0, 1]."""
    frames = []
    for f in decode(SAMPLE):
        if f.index >= 30:
            frames.append(f.image[100:228, 240:400].astype(np.float32) / 255)
        if len(frames) == 6:
            break
    return np.stack(frames)


@pytest.mark.parametrize("name", sorted(zoo.SHIPPED))
def test_weights_ship_inside_the_package(name):
    assert zoo.available(name), f"{name} weights missing from {zoo.weights_dir()}"
    assert zoo.model_path(name).stat().st_size < 20e6
    assert zoo.card_path(name).exists()
    model, meta = zoo.load(name)
    n = sum(p.numel() for p in model.parameters())
    assert 1e6 <= n <= 5e6 and meta["step"] > 0


def test_diffusion_models_are_the_defaults():
    assert registry.get("denoise").name == "diffusion"
    assert registry.get("upscale", scale=2).name == "diffusion"
    assert registry.get("upscale", scale=4).name == "diffusion"
    assert registry.get("interpolate").name == "diffusion"


def test_denoiser_removes_noise(clip):
    noisy = np.clip(clip + np.random.default_rng(0).normal(0, 25 / 255, clip.shape), 0, 1).astype(np.float32)
    fn = registry.get("denoise", "diffusion").factory(MethodOptions(strength=25.0))
    out = fn(noisy)
    assert out.shape == clip.shape
    assert _psnr(out, clip) > _psnr(noisy, clip) + 4


def test_denoiser_with_estimated_noise_level(clip):
    noisy = np.clip(clip + np.random.default_rng(1).normal(0, 15 / 255, clip.shape), 0, 1).astype(np.float32)
    out = registry.get("denoise", "diffusion").factory(MethodOptions(strength=None))(noisy)
    assert _psnr(out, clip) > _psnr(noisy, clip) + 3


@pytest.mark.parametrize("scale", [2, 4])
def test_super_resolution_beats_its_bicubic_start(clip, scale):
    h, w = clip.shape[1:3]
    lr = np.round(np.clip(imresize_hwc(clip, (h // scale, w // scale)), 0, 1) * 255).astype(np.float32) / 255
    bicubic = np.clip(imresize_hwc(lr, (h, w)), 0, 1)
    out = registry.get("upscale", "diffusion", scale).factory(MethodOptions(scale=scale))(lr)
    assert out.shape == clip.shape
    assert _psnr(out, clip) > _psnr(bicubic, clip) + 0.2


def test_interpolation_beats_blending(clip):
    first, second, middle = clip[0:4:2], clip[2:6:2], clip[1:5:2]
    out = registry.get("interpolate", "diffusion").factory(MethodOptions())(first, second, 0.5)
    assert out.shape == middle.shape
    assert _psnr(out, middle) > _psnr((first + second) / 2, middle) + 0.5


def test_sampling_is_deterministic_for_a_seed(clip):
    h, w = clip.shape[1:3]
    lr = np.clip(imresize_hwc(clip[:3], (h // 2, w // 2)), 0, 1).astype(np.float32)
    make = registry.get("upscale", "diffusion", 2).factory
    a = make(MethodOptions(scale=2, seed=5, steps=2))(lr)
    b = make(MethodOptions(scale=2, seed=5, steps=2))(lr)
    c = make(MethodOptions(scale=2, seed=6, steps=2))(lr)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
