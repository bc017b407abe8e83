"""Turn still photos into short clips of a slowly moving camera (folders of PNG frames), so that
training banks of codec damage (scripts/make_codec_bank.py) cover more textures and edges than
the few real clips do. Each clip follows its own smooth path: a drift of up to --max-speed pixels
a frame, a slow zoom and a slight roll, sampled with Lanczos from the photo.

    python scripts/make_pan_clips.py ../shared/data/train/images/*/*.png --out runs/pan-frames --frames 24
"""
from __future__ import annotations

import argparse
import os

import cv2
import numpy as np


def camera_path(rng: np.random.Generator, n: int, max_speed: float) -> list[np.ndarray]:
    """n 2x3 affine maps (output pixel -> photo pixel about the crop's centre), one per frame."""
    speed = rng.uniform(0.3, max_speed)
    heading = rng.uniform(0, 2 * np.pi)
    drift = speed * np.array([np.cos(heading), np.sin(heading)])
    zoom = rng.uniform(-0.003, 0.003)
    roll = np.deg2rad(rng.uniform(-0.08, 0.08))
    wobble = rng.uniform(0, 0.4, size=2)  # a handheld sway on top of the drift
    phase = rng.uniform(0, 2 * np.pi, size=2)
    maps = []
    for t in range(n):
        s = (1 + zoom) ** t
        a = roll * t
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        shift = drift * t + wobble * np.sin(0.5 * t + phase)
        maps.append(np.hstack([rot, shift[:, None]]))
    return maps


def pan_clip(photo: np.ndarray, rng: np.random.Generator, n: int, max_speed: float,
             max_size: tuple[int, int]) -> np.ndarray | None:
    h, w = photo.shape[:2]
    margin = int(np.ceil(max_speed * n * 0.5)) + 24
    ow = min(max_size[0], w - 2 * margin) // 16 * 16
    oh = min(max_size[1], h - 2 * margin) // 16 * 16
    if ow < 96 or oh < 96:
        return None
    frames = []
    # the path starts at the centre minus half its drift, so that it stays inside the photo
    maps = camera_path(rng, n, max_speed)
    mid = maps[n // 2][:, 2]
    for m in maps:
        centre = np.array([w / 2, h / 2]) + m[:, 2] - mid
        # photo = R @ (out - out_centre) + centre  ->  an affine map from output to photo pixels
        offset = centre - m[:, :2] @ np.array([ow / 2, oh / 2])
        full = np.hstack([m[:, :2], offset[:, None]])
        frames.append(cv2.warpAffine(photo, full, (ow, oh), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT101))
    return np.stack(frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--max-speed", type=float, default=2.5)
    ap.add_argument("--max-size", default="448x320", help="largest clip, WxH")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    max_size = tuple(int(v) for v in args.max_size.lower().split("x"))
    made = 0
    for path in args.photos:
        photo = cv2.imread(path, cv2.IMREAD_COLOR)
        if photo is None:
            print(f"skipped {path}: not an image")
            continue
        clip = pan_clip(photo, rng, args.frames, args.max_speed, max_size)
        if clip is None:
            print(f"skipped {path}: too small")
            continue
        name = f"{os.path.basename(os.path.dirname(path))}-{os.path.splitext(os.path.basename(path))[0]}"
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        for i, frame in enumerate(clip):
            cv2.imwrite(os.path.join(folder, f"{i:04d}.png"), frame)
        made += 1
    print(f"{made} clips in {args.out}")


if __name__ == "__main__":
    main()
