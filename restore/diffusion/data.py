"""Training material: folders of frames, video files and still images -> short clean clips.

Everything is decoded once into memory as uint8 (the corpus is ~2 GB decoded at most); clips are
then cut at random positions, strides, crops and flips. Still images become clips by random
sub-pixel motion (translation, small zoom and rotation), since they have no motion of their own.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError, MediaError

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXT = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


@dataclass
class Sequence:
    name: str
    frames: np.ndarray  # (N, H, W, 3) uint8 RGB
    still: bool = False
    # precomputed encodes of these frames, (label, (N, H, W, 3) uint8) each (sources of kind `encoded`)
    encoded: tuple = ()
    weight: float = 1.0  # the source's `weight`: how often it is drawn, beside the frame count


def _read_image(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise MediaError("not an image (unreadable or corrupt)", path)
    return img[..., ::-1]


def _fit(img: np.ndarray, downscale: int) -> np.ndarray:
    if downscale > 1:
        h, w = img.shape[:2]
        img = cv2.resize(img, (w // downscale, h // downscale), interpolation=cv2.INTER_AREA)
    return img


def _read_video_opencv(path: str, downscale: int, max_frames: int) -> np.ndarray:
    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) < max_frames:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(_fit(np.ascontiguousarray(img[..., ::-1]), downscale))
    cap.release()
    if not frames:
        raise MediaError("OpenCV decoded no frames", path)
    return np.stack(frames)


def _read_video(path: str, downscale: int, max_frames: int, reader: str = "pyav") -> np.ndarray:
    """Frames of a training video. `reader: opencv` on a source is for machines without PyAV
    (the GPU image): chosen in the config, never a silent stand-in."""
    if reader == "opencv":
        return _read_video_opencv(path, downscale, max_frames)
    if reader != "pyav":
        raise ConfigError(f"source reader {reader!r}: expected pyav or opencv", path)
    try:
        from ..io import decode
    except ImportError as err:  # one decoder for training and inference: no quiet OpenCV stand-in
        raise ConfigError(f"training on video files needs PyAV (pip install av): {err}", path) from err
    from ..ops.frames import from_float, to_float

    frames = []
    for frame in decode(path):
        img = frame.image if frame.image.dtype == np.uint8 else from_float(to_float(frame.image), np.uint8)
        frames.append(_fit(img, downscale))
        if len(frames) >= max_frames:
            break
    return np.stack(frames)


def load_sources(sources: list[dict], max_frames: int = 300) -> list[Sequence]:
    """sources: [{path: glob, kind: frames|video|images|encoded, downscale: 1, reader: pyav,
    weight: 1}] -> sequences. `weight` scales how often the source's sequences are drawn."""
    seqs: list[Sequence] = []
    encoded_by_clean: dict[tuple, tuple[float, list[str]]] = {}  # (clean, downscale, reader) -> (weight, encodes)
    for src in sources:
        kind, down = src.get("kind", "frames"), int(src.get("downscale", 1))
        reader = src.get("reader", "pyav")
        weight = float(src.get("weight", 1.0))  # checked with the config (trainconfig.check_source)
        first = len(seqs)
        for path in sorted(glob.glob(os.path.expanduser(src["path"]))):
            if kind == "frames" and os.path.isdir(path):
                files, imgs = _read_folder(path, down, max_frames)
                if len(files) >= 2:
                    if len({im.shape for im in imgs}) > 1:  # numbered photos (img_001.png ...), not a video
                        seqs.extend(Sequence(f, im[None], still=True) for f, im in zip(files, imgs))
                    else:
                        seqs.append(Sequence(os.path.basename(path), np.stack(imgs)))
            elif kind == "video" and path.lower().endswith(VIDEO_EXT):
                seqs.append(Sequence(os.path.basename(path), _read_video(path, down, max_frames, reader)))
            elif kind == "encoded" and path.lower().endswith(VIDEO_EXT):
                encoded_by_clean.setdefault(_clean_of(path, src), (weight, []))[1].append(path)
            elif kind == "images" and path.lower().endswith(IMAGE_EXT):
                seqs.append(Sequence(os.path.basename(path), _fit(_read_image(path), down)[None], still=True))
        for seq in seqs[first:]:
            seq.weight = weight
    for (clean, down, reader), (weight, paths) in encoded_by_clean.items():
        frames = (np.stack(_read_folder(clean, down, max_frames)[1]) if os.path.isdir(clean)
                  else _read_video(clean, down, max_frames, reader))
        variants = []
        for path in sorted(paths):
            enc = _read_video(path, 1, max_frames, reader)
            h, w = enc.shape[1:3]
            if h > frames.shape[1] or w > frames.shape[2] or len(enc) > len(frames):
                raise MediaError(f"not an encode of {clean} at downscale {down} "
                                 f"({enc.shape[:3]} vs {frames.shape[:3]})", path)
            variants.append((os.path.basename(path).split("~", 1)[1].rsplit(".", 1)[0], enc))
        n = min(len(v) for _, v in variants)
        h, w = variants[0][1].shape[1:3]  # encoders need even sizes: the bank cropped the clean frames
        seqs.append(Sequence(os.path.basename(clean), np.ascontiguousarray(frames[:n, :h, :w]),
                             encoded=tuple((lb, v[:n]) for lb, v in variants),
                             weight=weight))
    if not seqs:
        raise ConfigError(f"no training material found in {[s['path'] for s in sources]}")
    return seqs


def _read_folder(path: str, down: int, max_frames: int) -> tuple[list[str], list[np.ndarray]]:
    """The images of a frames folder, in name order (at most max_frames), each downscaled."""
    files = sorted(f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXT))[:max_frames]
    return files, [_fit(_read_image(os.path.join(path, f)), down) for f in files]


def _clean_of(path: str, src: dict) -> tuple[str, int, str]:
    """An encode `NAME~LABEL.ext` in the bank pairs with the clean `NAME` in src['clean'] (a folder):
    a video, or a folder of frames, read at src['clean_downscale'] as the bank made it
    (scripts/make_codec_bank.py)."""
    if "~" not in os.path.basename(path) or "clean" not in src:
        raise ConfigError(f"source of kind 'encoded': {path} must be named NAME~LABEL.ext, "
                          f"with the clean NAME in the source's 'clean' folder")
    clean = os.path.join(os.path.expanduser(src["clean"]), os.path.basename(path).split("~", 1)[0])
    if not (os.path.isfile(clean) or os.path.isdir(clean)):
        raise MediaError(f"the clean source of this encode, {clean}, is missing", path)
    return clean, int(src.get("clean_downscale", 1)), src.get("reader", "pyav")


def augment_flags(rng: np.random.Generator) -> tuple[bool, bool, bool, bool]:
    """(flip x, flip y, transpose, reverse time): drawn once per clip, applied alike to every
    version of it (clean and encoded)."""
    return tuple(bool(rng.random() < 0.5) for _ in range(4))


def _augment(clip: np.ndarray, flags) -> np.ndarray:
    fx, fy, tr, rev = flags
    if fx:
        clip = clip[:, :, ::-1]
    if fy:
        clip = clip[:, ::-1]
    if tr:
        clip = clip.transpose(0, 2, 1, 3)
    if rev:
        clip = clip[::-1]  # time reversal is as plausible as forward motion
    return np.ascontiguousarray(clip)


def _still_clip(img: np.ndarray, length: int, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    margin = size // 2
    big = size + 2 * margin
    if h < big or w < big:
        img = cv2.resize(img, (max(w, big), max(h, big)), interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
    cy, cx = rng.integers(big // 2, h - big // 2 + 1), rng.integers(big // 2, w - big // 2 + 1)
    vel = rng.uniform(-2.5, 2.5, size=2)
    zoom = rng.uniform(-0.01, 0.01)
    rot = rng.uniform(-0.5, 0.5)
    out = []
    for i in range(length):
        m = cv2.getRotationMatrix2D((float(cx), float(cy)), rot * i, 1 + zoom * i)
        m[:, 2] += (size / 2 - cx) - vel * i
        out.append(cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def random_clip(seqs: list[Sequence], length: int, size: int, rng: np.random.Generator,
                max_stride: int = 2, margin: int = 0) -> np.ndarray:
    """A clean (length, size+2*margin, size+2*margin, 3) uint8 clip from a random source."""
    return random_clip_encoded(seqs, length, size, rng, max_stride, margin)[0]


def pick_sequence(seqs: list[Sequence], rng: np.random.Generator) -> Sequence:
    weights = np.array([np.sqrt(len(s.frames)) * (0.35 if s.still else 1.0) * s.weight for s in seqs])
    return seqs[rng.choice(len(seqs), p=weights / weights.sum())]


def frame_indices(n: int, length: int, max_stride: int, rng: np.random.Generator) -> np.ndarray:
    stride = int(rng.integers(1, max_stride + 1))
    while stride > 1 and (length - 1) * stride >= n:
        stride -= 1
    span = (length - 1) * stride + 1
    start = int(rng.integers(0, max(1, n - span + 1)))
    return np.clip(np.arange(start, start + span, stride), 0, n - 1)


CODEC_GRID = 8  # transform blocks of H.264 (8x8 / 4x4), MPEG-2 / MPEG-4 Part 2 and JPEG


def cut_origin(h: int, w: int, size: int, rng: np.random.Generator, encoded: bool = False) -> tuple[int, int]:
    """Top-left corner of a random size x size cut of an (h, w) frame. An encode is cut on its
    codec's block grid, as inference tiles are (infer._spans): the model then knows where block
    edges fall (flips and transposes of a cut of whole blocks keep them on it)."""
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    if encoded and size % CODEC_GRID == 0:
        y, x = y // CODEC_GRID * CODEC_GRID, x // CODEC_GRID * CODEC_GRID
    return y, x


def random_clip_encoded(seqs: list[Sequence], length: int, size: int, rng: np.random.Generator,
                        max_stride: int = 2, margin: int = 0):
    """random_clip, and the same cut of one of the sequence's encodes (label, clip), or None."""
    seq = pick_sequence(seqs, rng)
    full = size + 2 * margin
    if seq.still:
        return _augment(_still_clip(seq.frames[0], length, full, rng), augment_flags(rng)), None
    idx = frame_indices(len(seq.frames), length, max_stride, rng)
    pick = int(rng.integers(len(seq.encoded))) if seq.encoded else -1
    versions = [seq.frames] + ([seq.encoded[pick][1]] if pick >= 0 else [])
    _, h, w, _ = seq.frames.shape
    if h < full or w < full:
        versions = [np.stack([cv2.resize(f, (max(w, full), max(h, full)), interpolation=cv2.INTER_CUBIC)
                              for f in v[idx]]) for v in versions]
        idx = np.arange(len(idx))
        h, w = versions[0].shape[1:3]
    y, x = cut_origin(h, w, full, rng, encoded=pick >= 0)
    flags = augment_flags(rng)
    cut = [_augment(v[idx, y:y + full, x:x + full], flags) for v in versions]
    return cut[0], ((seq.encoded[pick][0], cut[1]) if pick >= 0 else None)
