"""Chunk planner: where to cut a video into chunks for restoration.

Two steps, both deterministic:

1. `analyse(frames)` streams over the frames once and keeps, per frame, only the source key-frame
   flag and two numbers comparing small grey thumbnails of the frame and the previous one:
   - score: their mean absolute difference (0-255 scale);
   - residual: what is left of that difference after motion compensation (DIS optical flow
     between the thumbnails, one warped onto the other) on brightness-normalised thumbnails
     (zero mean, fixed contrast), in the better of the two directions, over the pixels the flow
     explains (kept inside the frame, not occluded by the forward-backward check). It is only
     computed where the score is over abs_floor, and a change that undoes itself within
     TRANSIENT frames (a flash that saturates, a strobe) is explained by the frames around it.
   A cut is a frame whose score exceeds abs_floor (the frames really differ) and whose residual
   exceeds residual_floor and k x the median residual of the neighbouring frames: motion cannot
   explain the change (a fast pan, zoom or running subject can be warped away, a new shot
   cannot), nor can a brightness change (a flash is normalised away), and the shot's own
   unpredictability (water, fire, heavy noise) sets the bar through the median.
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

from .ops import thumbs
from .ops.flow import occlusion_mask, warp

THUMB_SIZE = (128, 72)  # (width, height) of the grey thumbnails compared for cut detection
# The raw score is taken at half that size: the size abs_floor (chunk.cut_floor) was set for,
# where area averaging cancels most noise. Flow needs the finer thumbnail: at 64x36 a subject
# of a few pixels has no flow of its own.
SCORE_SIZE = (64, 36)


@dataclass(frozen=True)
class CutDetector:
    abs_floor: float = 15.0   # minimum score (0-255 MAD) for a cut: the frames must really differ
    k: float = 3.0            # a cut must also exceed k x the median of its neighbourhood
    window: int = 8           # neighbours on each side in that median
    residual_floor: float = 16.0  # minimum motion-compensated residual (normalised 0-255) for a cut

    def detect(self, scores: list[float], residuals: list[float] | None = None) -> list[int]:
        """Frame indices that start a new shot (never 0).

        With `residuals` (what `analyse` gives), a cut needs score > abs_floor, residual >
        residual_floor and residual > k x the median residual of the neighbours (see the module
        docstring). Without them (stats saved before residuals existed), the old rule on the raw
        score: score > max(abs_floor, k x the median neighbouring score), which takes fast
        motion that starts abruptly for a cut.

        The median is taken over `window` values on *both* sides of the frame (analysis is a
        separate pass, so the future is known): a cut is a one-frame spike above both
        neighbourhoods, and a shot whose content is hard to predict from the very first frame
        is still recognised as such.
        """
        residuals = residuals or None  # [] in stats saved before residuals existed
        values = scores if residuals is None else residuals
        cuts = []
        for i in range(1, len(scores)):
            if scores[i] <= self.abs_floor:
                continue
            if residuals is not None and residuals[i] <= self.residual_floor:
                continue
            neighbours = values[max(1, i - self.window):i] + values[i + 1:i + 1 + self.window]
            if neighbours and values[i] <= self.k * float(np.median(neighbours)):
                continue
            cuts.append(i)
        return cuts


@dataclass
class FrameStats:
    keys: list[bool]      # source key-frame flag per frame
    scores: list[float]   # thumbnail difference to the previous frame (0 for frame 0)
    cuts: list[int]       # frames that start a new shot
    detector: CutDetector = field(default_factory=CutDetector)
    # motion-compensated difference to the previous frame; 0 for frame 0 and where the score is
    # under detector.abs_floor (not computed: such frames cannot be cuts); [] in stats saved
    # before it existed
    residuals: list[float] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.scores)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "FrameStats":
        d = json.loads(text)
        return cls(keys=[bool(k) for k in d["keys"]], scores=[float(s) for s in d["scores"]],
                   cuts=[int(c) for c in d["cuts"]], detector=CutDetector(**d.get("detector", {})),
                   residuals=[float(r) for r in d.get("residuals", [])])


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Grey THUMB_SIZE float32 thumbnail on the 0-255 scale (area-averaged, so noise mostly cancels)."""
    return thumbs.thumbnail(thumbs.grey255(image), THUMB_SIZE)


# Contrast the thumbnails are normalised to before flow and residual: a typical frame's grey
# standard deviation, so residuals read like 0-255 differences. Frames flatter than _MIN_STD keep
# their contrast rather than having their noise amplified into content.
_NORM_STD = 48.0
_MIN_STD = 6.0
# A direction whose flow sends more than this fraction of pixels outside the frame explains too
# little of the frame to clear a cut: its residual counts as unexplained.
_MIN_INSIDE = 0.5


def _normalise(thumb: np.ndarray) -> np.ndarray:
    """Zero-mean, fixed-contrast copy of a grey thumbnail, centred on 128 (a flash or fade
    changes gain and offset, which this removes)."""
    mean, std = float(thumb.mean()), float(thumb.std())
    return (thumb - mean) * (_NORM_STD / max(std, _MIN_STD)) + 128.0


def _dis(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # full thumbnail resolution: DIS's presets stop at half resolution, too coarse at 128x72
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    dis.setFinestScale(0)
    return dis.calc(np.clip(a, 0, 255).astype(np.uint8), np.clip(b, 0, 255).astype(np.uint8), None)


def _thumb_flows(a: np.ndarray, b: np.ndarray) -> list[np.ndarray]:
    """Candidate DIS flows a -> b between two normalised thumbnails (a(x) ~ b(x + flow(x))).

    DIS's pyramid is shallow on a thumbnail: on its own it misses motions over ~10 % of the
    width (a whip pan). Phase correlation finds a global shift of any size, so b is also shifted
    by it and DIS estimates only what is left. Phase correlation in turn fails on smooth content
    and with several motions, hence both candidates.
    """
    h, w = a.shape
    (dx, dy), _response = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64),
                                             cv2.createHanningWindow((w, h), cv2.CV_64F))
    shift = np.empty((h, w, 2), np.float32)
    shift[..., 0], shift[..., 1] = dx, dy
    return [_dis(a, b), _dis(a, warp(b, shift)) + shift]


def _residual(a: np.ndarray, b: np.ndarray, flow_ab: np.ndarray, flow_ba: np.ndarray) -> float:
    """Mean |a - b warped onto a| over the pixels of a that the flow explains: those it keeps
    inside the frame and that pass the forward-backward check (not occluded in b). When fewer
    than _MIN_INSIDE of the pixels qualify, the flow explains too little and all pixels count."""
    h, w = a.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    x, y = gx + flow_ab[..., 0], gy + flow_ab[..., 1]
    ok = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    ok &= occlusion_mask(flow_ab, flow_ba) == 0
    diff = np.abs(a - warp(b, flow_ab))
    return float(diff.mean() if ok.mean() < _MIN_INSIDE else diff[ok].mean())


def motion_residual(prev: np.ndarray, cur: np.ndarray) -> float:
    """Difference between two grey thumbnails that neither motion nor a brightness change explain.

    Both directions are tried and the smaller residual kept: a zoom in is explained by warping
    the wider frame onto the narrower one, a zoom out the other way.
    """
    a, b = _normalise(prev), _normalise(cur)
    best = float("inf")
    for f_ab, f_ba in zip(_thumb_flows(a, b), _thumb_flows(b, a)):
        best = min(best, _residual(a, b, f_ab, f_ba), _residual(b, a, f_ba, f_ab))
    return best


def _score_thumb(thumb: np.ndarray) -> np.ndarray:
    return cv2.resize(thumb, SCORE_SIZE, interpolation=cv2.INTER_AREA)


# A change that undoes itself within this many frames (a flash, a strobe, a one-frame glitch) is
# not a cut: a cut at frame i needs frame i unexplained by each of the TRANSIENT frames before it,
# and each of the TRANSIENT frames after it unexplained by frame i - 1.
TRANSIENT = 3


class Analyser:
    """Incremental form of `analyse`, for callers that consume the frames for something else too.

    Keeps TRANSIENT + 1 thumbnails; flow is only estimated for frames whose raw score is over
    the cut floor (the only ones that can be cuts), and the look around a frame only while it
    still looks like a cut, so shots without fast motion cost no flow at all.
    """

    def __init__(self, detector: CutDetector | None = None):
        self.detector = detector or CutDetector()
        self.keys: list[bool] = []
        self.scores: list[float] = []
        self.residuals: list[float] = []
        self._thumbs: dict[int, np.ndarray] = {}  # frame index -> thumbnail, recent frames only
        self._prev_small: np.ndarray | None = None

    def _is_candidate(self, i: int) -> bool:
        return self.residuals[i] > self.detector.residual_floor

    def add(self, image: np.ndarray, key: bool = False) -> None:
        thumb = thumbnail(image)
        small = _score_thumb(thumb)
        i = len(self.scores)
        score = residual = 0.0
        if i:
            score = float(np.mean(np.abs(small - self._prev_small)))
            if score > self.detector.abs_floor:
                residual = motion_residual(self._thumbs[i - 1], thumb)
                # explained by a frame before the previous one: the end of a flash
                for d in range(2, TRANSIENT + 1):
                    if residual > self.detector.residual_floor and i - d >= 0:
                        residual = min(residual, motion_residual(self._thumbs[i - d], thumb))
        self._prev_small = small
        self._thumbs[i] = thumb
        self.keys.append(bool(key))
        self.scores.append(score)
        self.residuals.append(residual)
        # a candidate cut c whose frame i (c < i <= c + TRANSIENT) is explained by frame c - 1:
        # the start of a flash
        for c in range(max(1, i - TRANSIENT), i):
            if self._is_candidate(c):
                self.residuals[c] = min(self.residuals[c], motion_residual(self._thumbs[c - 1], thumb))
        self._thumbs.pop(i - TRANSIENT - 1, None)  # the next frame looks back TRANSIENT + 1 frames at most

    def result(self) -> FrameStats:
        cuts = self.detector.detect(self.scores, self.residuals)
        return FrameStats(list(self.keys), list(self.scores), cuts, self.detector, list(self.residuals))


def analyse(frames: Iterable, detector: CutDetector | None = None) -> FrameStats:
    """Per-frame key flags and scene-cut scores for an iterable of frames.

    Items may be restore.io VideoFrame objects (`.image`, `.key`) or bare (H, W, 3) arrays
    (treated as non-key frames). Only TRANSIENT + 1 thumbnails are kept in memory at a time.
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
