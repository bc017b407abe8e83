"""Chunk planner: where to cut a video into chunks for restoration.

Two steps, both deterministic:

1. `analyse(frames)` streams over the frames once and keeps, per frame, only the source key-frame
   flag and a scene-cut score: the mean absolute difference (0-255 scale) between small grey
   thumbnails of the frame and the previous one. Cuts are frames whose score exceeds
   max(abs_floor, k * median of the neighbouring scores): the rolling median follows the motion
   level of the shot, so a fast pan does not fire while a cut in a static scene does.
2. `plan_chunks(stats, min_len, max_len, overlap)` splits every shot (run of frames between cuts)
   into chunks of min_len..max_len frames, preferring chunk starts on source key frames, and gives
   every chunk after the first of its shot `overlap` anchor frames: the already-restored frames
   just before it. Nothing ever crosses a cut.

Plans and stats round-trip through JSON so a resumed job can reuse them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable

import cv2
import numpy as np

THUMB_SIZE = (64, 36)  # (width, height) of the grey thumbnails compared for cut detection


@dataclass(frozen=True)
class CutDetector:
    abs_floor: float = 15.0  # minimum score (0-255 MAD) for a cut, whatever the shot's motion
    k: float = 3.0           # a cut must also exceed k x the median score of its neighbourhood
    window: int = 8          # neighbours on each side in that median

    def detect(self, scores: list[float]) -> list[int]:
        """Frame indices that start a new shot (never 0).

        The median is taken over `window` scores on *both* sides of the frame (analysis is a
        separate pass, so the future is known): a pan that starts with a shot, where there is no
        past to learn its motion level from, is then still recognised as motion, while a cut is a
        one-frame spike above both neighbourhoods. Same idea as PySceneDetect's AdaptiveDetector,
        whose defaults (ratio 3, minimum content score 15) these follow.
        """
        cuts = []
        for i in range(1, len(scores)):
            neighbours = scores[max(1, i - self.window):i] + scores[i + 1:i + 1 + self.window]
            threshold = self.abs_floor
            if neighbours:
                threshold = max(threshold, self.k * float(np.median(neighbours)))
            if scores[i] > threshold:
                cuts.append(i)
        return cuts


@dataclass
class FrameStats:
    keys: list[bool]      # source key-frame flag per frame
    scores: list[float]   # thumbnail difference to the previous frame (0 for frame 0)
    cuts: list[int]       # frames that start a new shot
    detector: CutDetector = field(default_factory=CutDetector)

    @property
    def n_frames(self) -> int:
        return len(self.scores)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "FrameStats":
        d = json.loads(text)
        return cls(keys=[bool(k) for k in d["keys"]], scores=[float(s) for s in d["scores"]],
                   cuts=[int(c) for c in d["cuts"]], detector=CutDetector(**d.get("detector", {})))


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Grey THUMB_SIZE float32 thumbnail on the 0-255 scale (area-averaged, so noise mostly cancels)."""
    img = np.asarray(image)
    if np.issubdtype(img.dtype, np.integer):
        img = img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)
    else:
        img = img.astype(np.float32) * 255.0
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    return cv2.resize(grey, THUMB_SIZE, interpolation=cv2.INTER_AREA)


class Analyser:
    """Incremental form of `analyse`, for callers that consume the frames for something else too."""

    def __init__(self, detector: CutDetector | None = None):
        self.detector = detector or CutDetector()
        self.keys: list[bool] = []
        self.scores: list[float] = []
        self._prev: np.ndarray | None = None

    def add(self, image: np.ndarray, key: bool = False) -> None:
        thumb = thumbnail(image)
        score = 0.0 if self._prev is None else float(np.mean(np.abs(thumb - self._prev)))
        self._prev = thumb
        self.keys.append(bool(key))
        self.scores.append(score)

    def result(self) -> FrameStats:
        return FrameStats(list(self.keys), list(self.scores), self.detector.detect(self.scores), self.detector)


def analyse(frames: Iterable, detector: CutDetector | None = None) -> FrameStats:
    """Per-frame key flags and scene-cut scores for an iterable of frames.

    Items may be restore.io VideoFrame objects (`.image`, `.key`) or bare (H, W, 3) arrays
    (treated as non-key frames). Only one thumbnail is kept in memory at a time.
    """
    a = Analyser(detector)
    for f in frames:
        if hasattr(f, "image"):
            a.add(f.image, bool(getattr(f, "key", False)))
        else:
            a.add(f, False)
    return a.result()


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int            # first frame this chunk outputs
    end: int              # one past the last frame
    shot: int             # scene-cut segment number
    anchors: list[int] = field(default_factory=list)  # restored frames before start, same shot

    def __len__(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict:
        return {"index": self.index, "start": self.start, "end": self.end, "shot": self.shot,
                "anchors": list(self.anchors)}


@dataclass(frozen=True)
class ChunkPlan:
    chunks: tuple[Chunk, ...]
    n_frames: int
    cuts: tuple[int, ...]
    min_len: int
    max_len: int
    overlap: int

    def __iter__(self):
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def shots(self) -> list[tuple[int, int]]:
        """[start, end) of every shot."""
        bounds = [0, *self.cuts, self.n_frames]
        return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]

    def shot_of(self, frame: int) -> int:
        """Shot number of a frame index."""
        return int(np.searchsorted(np.asarray(self.cuts, dtype=np.int64), frame, side="right"))

    def to_dict(self) -> dict:
        return {"n_frames": self.n_frames, "cuts": list(self.cuts), "min_len": self.min_len,
                "max_len": self.max_len, "overlap": self.overlap,
                "chunks": [c.to_dict() for c in self.chunks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "ChunkPlan":
        d = json.loads(text)
        chunks = tuple(Chunk(int(c["index"]), int(c["start"]), int(c["end"]), int(c["shot"]),
                             [int(a) for a in c["anchors"]]) for c in d["chunks"])
        return cls(chunks, int(d["n_frames"]), tuple(int(c) for c in d["cuts"]), int(d["min_len"]),
                   int(d["max_len"]), int(d["overlap"]))


# Cost of starting a chunk on a frame that is not a source key frame, relative to the cost of one
# extra chunk: a split at a key frame is worth up to this many extra chunks.
_NON_KEY_COST = 4.0


def _split_shot(keys: list[bool], start: int, end: int, min_len: int, max_len: int) -> list[int]:
    """Chunk start positions for one shot [start, end), by dynamic programming.

    Minimises (number of chunks) + _NON_KEY_COST x (chunk starts off a key frame), with every
    chunk min_len..max_len long. Ties go to the earliest-found split, which keeps it deterministic.
    """
    n = end - start
    if n <= max_len:
        return [start]
    inf = float("inf")
    best = [inf] * (n + 1)   # best[e]: cost of covering [0, e) with chunks ending exactly at e
    back = [-1] * (n + 1)
    best[0] = 0.0
    for e in range(min_len, n + 1):
        for length in range(min_len, min(max_len, e) + 1):
            s = e - length
            if best[s] == inf:
                continue
            cost = best[s] + 1.0 + (0.0 if s == 0 or keys[start + s] else _NON_KEY_COST)
            if cost < best[e]:
                best[e], back[e] = cost, s
    if best[n] == inf:
        # min_len..max_len cannot tile this length (e.g. min_len close to max_len): allow a short
        # tail rather than a chunk over max_len, which would break the memory bound.
        return _split_shot(keys, start, end, 1, max_len)
    starts = []
    e = n
    while e > 0:
        s = back[e]
        starts.append(start + s)
        e = s
    return starts[::-1]


def plan_chunks(stats: FrameStats, min_len: int = 8, max_len: int = 32, overlap: int = 2) -> ChunkPlan:
    """Split the frames described by `stats` into chunks (see the module docstring)."""
    if min_len < 1 or max_len < min_len:
        raise ValueError(f"need 1 <= min_len <= max_len, got min_len={min_len}, max_len={max_len}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    n = stats.n_frames
    cuts = sorted({c for c in stats.cuts if 0 < c < n})
    bounds = [0, *cuts, n]
    chunks: list[Chunk] = []
    for shot, (a, b) in enumerate(zip(bounds, bounds[1:])):
        starts = _split_shot(stats.keys, a, b, min_len, max_len)
        for s, e in zip(starts, [*starts[1:], b]):
            anchors = list(range(max(a, s - overlap), s))
            chunks.append(Chunk(len(chunks), s, e, shot, anchors))
    return ChunkPlan(tuple(chunks), n, tuple(cuts), min_len, max_len, overlap)
