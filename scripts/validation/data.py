"""Validation material and the fixed degradation protocols (../shared/data/README.md).

- denoising: additive Gaussian noise, std `sigma` on the 0-255 scale, fixed seed, then clipped and
  rounded to uint8, so every method sees the same 8-bit noisy frames;
- super-resolution 'BI': HR cropped to a multiple of the scale, MATLAB-style bicubic downscaling
  with antialiasing (restore.diffusion.degrade.imresize_hwc), rounded to uint8;
- interpolation: frame10.png, frame11.png -> frame10i11.png.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restore.diffusion.degrade import imresize_hwc

NOISE_SEED = 20240415  # evaluation noise; tuning draws with a different seed (TUNE_SEED)
TUNE_SEED = 7


def read_rgb(path: Path | str) -> np.ndarray:
    """uint8 (H, W, 3) RGB; greyscale images (Set14 has one) become three equal channels."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    if img.dtype != np.uint8:
        raise ValueError(f"{path}: expected 8-bit image, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img[..., ::-1])


def image_files(folder: Path | str) -> list[Path]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    return files


def load_clip(folder: Path | str, limit: int | None = None, start: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a folder of images, in name order."""
    files = image_files(folder)[start:]
    if limit is not None:
        files = files[:limit]
    return np.stack([read_rgb(p) for p in files])


def load_images(folder: Path | str, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    files = image_files(folder)
    if limit is not None:
        files = files[:limit]
    return [(p.stem, read_rgb(p)) for p in files]


@dataclass
class Triplet:
    name: str
    first: np.ndarray
    second: np.ndarray
    middle: np.ndarray


def load_triplets(folder: Path | str, limit: int | None = None) -> list[Triplet]:
    dirs = sorted(d for d in Path(folder).iterdir() if (d / "frame10i11.png").is_file())
    if not dirs:
        raise FileNotFoundError(f"no interpolation triplets (*/frame10i11.png) in {folder}")
    if limit is not None:
        dirs = dirs[:limit]
    return [Triplet(d.name, read_rgb(d / "frame10.png"), read_rgb(d / "frame11.png"),
                    read_rgb(d / "frame10i11.png")) for d in dirs]


def add_noise(frames_u8: np.ndarray, sigma: float, seed: int = NOISE_SEED) -> np.ndarray:
    """Gaussian noise of std `sigma` (0-255), clipped and rounded to uint8.

    Drawn frame by frame from one generator per (seed, sigma), so the first N frames get the same
    noise whether 4 or 60 frames are processed (quick runs score a prefix of the full run)."""
    rng = np.random.default_rng([int(seed), int(round(sigma * 100))])
    out = np.empty_like(frames_u8)
    for i, f in enumerate(frames_u8):
        noisy = f.astype(np.float32) + rng.standard_normal(f.shape, dtype=np.float32) * np.float32(sigma)
        out[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Top-left crop of (..., H, W, 3) to multiples of `scale` (the usual SR 'modcrop')."""
    h, w = img.shape[-3], img.shape[-2]
    return img[..., : h - h % scale, : w - w % scale, :]


def bi_downscale(hr_u8: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic (antialiased) downscale of uint8 (..., H, W, 3) by `scale`, rounded to uint8.
    H and W must be multiples of `scale` (crop_to_multiple first)."""
    h, w = hr_u8.shape[-3], hr_u8.shape[-2]
    if h % scale or w % scale:
        raise ValueError(f"{w}x{h} is not a multiple of {scale}: crop_to_multiple first")
    if hr_u8.ndim == 4:  # frame by frame: bounded memory on long clips
        return np.stack([bi_downscale(f, scale) for f in hr_u8])
    lr = imresize_hwc(hr_u8.astype(np.float32) / 255.0, (h // scale, w // scale))
    return np.clip(np.rint(lr * 255.0), 0, 255).astype(np.uint8)
