"""Chunk planner: cut detection on generated clips with hard cuts at known frames, plan invariants."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from restore.chunks import ChunkPlan, CutDetector, FrameStats, analyse, plan_chunks


def _scene(seed: int, h: int, w: int, margin: int) -> np.ndarray:
    """A textured background (larger than the frame, so it can pan) with its own colour cast."""
    rng = np.random.default_rng(seed)
    grid = rng.random(((h + margin) // 12 + 2, (w + margin) // 12 + 2, 3)).astype(np.float32)
    base = cv2.resize(grid, (w + margin, h + margin),
                      interpolation=cv2.INTER_CUBIC)
    return np.clip(base * rng.uniform(0.4, 1.0, 3).astype(np.float32), 0, 1)


def make_cut_clip(lengths, h=48, w=64, speed=1.0, noise=0.02, seed=0):
    """Frames (uint8) of consecutive panning shots with the given lengths; returns (frames, cuts)."""
    rng = np.random.default_rng(seed + 100)
    frames, cuts, pos = [], [], 0
    for shot, n in enumerate(lengths):
        scene = _scene(seed * 10 + shot, h, w, int(np.ceil(n * speed)) + 1)
        for t in range(n):
            off = int(round(t * speed))
            f = scene[off // 2: off // 2 + h, off: off + w]
            f = f + rng.normal(0, noise, f.shape)
            frames.append((np.clip(f, 0, 1) * 255).round().astype(np.uint8))
        if shot:
            cuts.append(pos)
        pos += n
    return frames, cuts


class Frame:  # the parts of restore.io.VideoFrame the analyser reads
    def __init__(self, image, key):
        self.image, self.key = image, key


def check_plan(plan: ChunkPlan, cuts, n, min_len, max_len, overlap):
    chunks = list(plan)
    # chunks tile [0, n) in order
    assert chunks[0].start == 0 and chunks[-1].end == n
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start
    starts = {c.start for c in chunks}
    bounds = [0, *cuts, n]
    shot_lengths = {s: e - s for s, e in zip(bounds, bounds[1:])}
    for c in chunks:
        assert 1 <= len(c) <= max_len
        shot_start = max(x for x in [0, *cuts] if x <= c.start)
        if len(c) < min_len:
            # only a shot shorter than min_len, or one min_len..max_len chunks cannot tile, has a short chunk
            length = shot_lengths[shot_start]
            assert length < min_len or not any(k * min_len <= length <= k * max_len
                                               for k in range(1, length + 1))
        # no chunk crosses a cut
        assert not any(c.start < cut < c.end for cut in cuts)
        # anchors: immediately before the chunk, inside the same shot, at most `overlap`
        assert len(c.anchors) <= overlap
        assert all(shot_start <= a < c.start for a in c.anchors)
        assert c.anchors == list(range(c.start - len(c.anchors), c.start))
        if c.start in cuts or c.start == 0:
            assert c.anchors == []
        else:
            assert len(c.anchors) == min(overlap, c.start - shot_start)
    for cut in cuts:
        assert cut in starts
    assert [plan.shot_of(c.start) for c in chunks] == [c.shot for c in chunks]


def test_every_cut_detected_exactly_and_is_a_boundary():
    lengths = [23, 5, 40, 17, 31]
    frames, cuts = make_cut_clip(lengths)
    stats = analyse(Frame(f, i % 12 == 0) for i, f in enumerate(frames))
    assert stats.cuts == cuts
    assert stats.n_frames == sum(lengths)
    plan = plan_chunks(stats, min_len=8, max_len=16, overlap=2)
    check_plan(plan, cuts, sum(lengths), 8, 16, 2)


def test_fast_pan_is_not_a_cut_but_static_scene_cut_is():
    # A fast pan gives large differences every frame; motion compensation explains them.
    fast, _ = make_cut_clip([40], speed=12.0, seed=3)
    stats = analyse(fast)
    assert min(stats.scores[1:]) > 15  # the pan really moves, above the absolute floor
    assert stats.cuts == []
    # Two static shots: the first difference after the cut must fire despite a ~0 median.
    static, cuts = make_cut_clip([20, 20], speed=0.0, seed=4)
    assert analyse(static).cuts == cuts == [20]


def test_detector_is_adaptive_and_floored():
    det = CutDetector(abs_floor=10, k=3, window=3)
    # steady motion level 8: a jump to 20 is < 3 x 8 and no cut; 30 is.
    assert det.detect([0, 8, 8, 8, 8, 20, 8, 8, 30, 8, 8]) == [8]
    # static scene: small changes never fire (the floor), a real change does.
    assert det.detect([0, 0.1, 0.2, 0.1, 5, 0.1, 11, 0.1, 0.1]) == [6]
    # a fast pan from the very first frame: no cut anywhere
    assert det.detect([0, 30, 31, 29, 33, 30, 30]) == []


def test_splits_prefer_key_frames():
    n = 100
    keys = [i % 25 == 0 for i in range(n)]
    stats = FrameStats(keys=keys, scores=[0.0] * n, cuts=[])
    plan = plan_chunks(stats, min_len=8, max_len=32, overlap=3)
    assert [c.start for c in plan] == [0, 25, 50, 75]
    check_plan(plan, [], n, 8, 32, 3)
    # Without key frames it still meets the length limits, with the fewest chunks.
    plan = plan_chunks(FrameStats([False] * n, [0.0] * n, []), min_len=8, max_len=32, overlap=3)
    assert len(plan) == 4
    check_plan(plan, [], n, 8, 32, 3)


@pytest.mark.parametrize("seed", range(20))
def test_random_plans_keep_invariants(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    min_len = int(rng.integers(1, 12))
    max_len = int(rng.integers(min_len, 40))
    overlap = int(rng.integers(0, 5))
    cuts = sorted(set(rng.integers(1, max(2, n), size=int(rng.integers(0, 8))).tolist()) - {0, n})
    cuts = [c for c in cuts if c < n]
    keys = (rng.random(n) < 0.1).tolist()
    stats = FrameStats(keys, rng.random(n).tolist(), cuts)
    plan = plan_chunks(stats, min_len, max_len, overlap)
    check_plan(plan, cuts, n, min_len, max_len, overlap)
    # pure and deterministic
    assert plan_chunks(stats, min_len, max_len, overlap) == plan


def test_untileable_lengths_fall_back_to_a_short_tail():
    # 15 frames cannot be split into chunks of exactly 10..10: a short chunk is allowed, never a long one.
    plan = plan_chunks(FrameStats([False] * 15, [0.0] * 15, []), min_len=10, max_len=10, overlap=1)
    assert [len(c) for c in plan] == [10, 5] or [len(c) for c in plan] == [5, 10]
    assert all(len(c) <= 10 for c in plan)


def test_json_round_trip():
    frames, cuts = make_cut_clip([12, 30, 9])
    stats = analyse(frames)
    assert FrameStats.from_json(stats.to_json()) == stats
    plan = plan_chunks(stats, min_len=4, max_len=10, overlap=2)
    text = plan.to_json()
    again = ChunkPlan.from_json(text)
    assert again == plan
    assert again.to_json() == text
    assert again.shots == [(0, 12), (12, 42), (42, 51)]


def test_bad_parameters():
    stats = FrameStats([False] * 5, [0.0] * 5, [])
    with pytest.raises(ValueError):
        plan_chunks(stats, min_len=5, max_len=4)
    with pytest.raises(ValueError):
        plan_chunks(stats, overlap=-1)
