"""Benchmark data: what a data folder holds, and loading it as uint8 RGB arrays.

A data folder has the layout of ../shared/data/val (see its README):
    frames/<clip>/*.png|jpg        clips: denoising and super-resolution (sequences)
    images/<set>/*.png             image sets: super-resolution
    interp/<case>/frame10.png, frame11.png, frame10i11.png   interpolation triplets
Any of the three may be missing. A video file is also accepted as data: it is one clip (denoising,
super-resolution, and interpolation by frame dropping). Bad input raises DataError, one line
naming the path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from restore.errors import RestoreError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".y4m")


class DataError(RestoreError):
    """Benchmark data that cannot be used (one line, names the path)."""


def read_rgb(path: Path | str) -> np.ndarray:
    """uint8 (H, W, 3) RGB; greyscale images (Set14 has one) become three equal channels."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f"{path}: cannot read image")
    if img.dtype != np.uint8:
        raise DataError(f"{path}: expected an 8-bit image, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img[..., ::-1])


def image_files(folder: Path | str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images")
    return files


def load_clip(folder: Path | str, limit: int | None = None, start: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a folder of images, in name order."""
    files = image_files(folder)[start:]
    if limit is not None:
        files = files[:limit]
    frames = [read_rgb(p) for p in files]
    if len({f.shape for f in frames}) > 1:
        raise DataError(f"{folder}: frames differ in size")
    return np.stack(frames)


def load_video(path: Path | str, limit: int | None = None) -> np.ndarray:
    """(T, H, W, 3) uint8 frames of a video file (first video stream), at most `limit`."""
    from restore.io import decode
    from restore.ops.frames import from_float, to_float

    frames = []
    for f in decode(path):
        img = f.image if f.image.dtype == np.uint8 else from_float(to_float(f.image), np.uint8)
        frames.append(img)
        if limit is not None and len(frames) >= limit:
            break
    if not frames:
        raise DataError(f"{path}: no video frames")
    return np.stack(frames)


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
    folder = Path(folder)
    dirs = sorted(d for d in folder.iterdir() if (d / "frame10i11.png").is_file()) if folder.is_dir() else []
    if not dirs:
        raise DataError(f"{folder}: no interpolation triplets (*/frame10i11.png)")
    if limit is not None:
        dirs = dirs[:limit]
    return [Triplet(d.name, read_rgb(d / "frame10.png"), read_rgb(d / "frame11.png"),
                    read_rgb(d / "frame10i11.png")) for d in dirs]


@dataclass
class DataSource:
    """One --data argument: where its clips, image sets and triplet folder are."""
    path: Path
    clips: dict[str, Path] = field(default_factory=dict)       # name -> frames folder or video file
    image_sets: dict[str, Path] = field(default_factory=dict)  # name -> folder of images
    triplets: Path | None = None                               # folder of triplet folders

    def load_clip(self, name: str, limit: int | None) -> np.ndarray:
        p = self.clips[name]
        return load_video(p, limit) if p.is_file() else load_clip(p, limit)


def discover(path: Path | str) -> DataSource:
    """What a --data argument holds (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    src = DataSource(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(f"{path}: not a video file or a data folder")
        src.clips[path.stem] = path
        return src
    frames, images, interp = path / "frames", path / "images", path / "interp"
    if frames.is_dir():
        for d in sorted(frames.iterdir()):
            if d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
                src.clips[d.name] = d
    if images.is_dir():
        for d in sorted(images.iterdir()):
            if d.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
                src.image_sets[d.name] = d
    if interp.is_dir() and any((d / "frame10i11.png").is_file() for d in interp.iterdir()):
        src.triplets = interp
    if not (src.clips or src.image_sets or src.triplets):
        # A bare folder of frames is one clip.
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            src.clips[path.name] = path
        else:
            raise DataError(f"{path}: no frames/, images/ or interp/ data (see restore bench --help)")
    return src


def sample_clip() -> Path:
    """The clip shipped with the package (data/sample.mp4): the default benchmark data."""
    from importlib.resources import files

    return Path(str(files("restore.data") / "sample.mp4"))
