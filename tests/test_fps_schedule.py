"""How `restore enhance` calls the interpolator: windows of consecutive pairs, flow once per pair.

The Interpolator contract (restore.registry) treats the N pairs of one call as N consecutive pairs
of one shot: diffusion interpolators restore them as one temporal window, anchored on each other.
These tests record every call the pipeline makes on small lossless clips and check that contract
and that the DIS flow of a pair is estimated once for all the fractions it is interpolated at.
"""
from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from restore.io import decode
from restore.ops.frames import to_float
from restore.methods import classical
from restore.pipeline import enhance
from tests.media import make_clip, synthetic_frames

CUT = 9


@pytest.fixture
def clip(tmp_path):
    """22 frames, 64x48, hard cut at 9, FFV1 so the interpolator sees exactly these frames."""
    frames = synthetic_frames(22, 64, 48, cuts=[CUT])
    return make_clip(tmp_path / "in.mkv", frames, codec="ffv1", fps=25), frames


class Recorder:
    """A blend interpolator that records which source frames each call received."""

    def __init__(self, frames: np.ndarray):
        self.blend = classical.blend
        self.sources = [to_float(f) for f in frames]
        self.calls: list[tuple[float, list[tuple[int, int]]]] = []

    def index(self, img: np.ndarray) -> int:
        hits = [i for i, s in enumerate(self.sources) if np.array_equal(s, img)]
        assert len(hits) == 1, "the interpolator got a frame that is not exactly one source frame"
        return hits[0]

    def __call__(self, first, second, t):
        self.calls.append((float(t), [(self.index(a), self.index(b)) for a, b in zip(first, second)]))
        return self.blend(first, second, t)


@pytest.mark.parametrize("options", [{"fps": 60}, {"fps": 40}, {"fps_multiplier": 3},
                                     {"fps": 60, "chunk.min_len": 3, "chunk.max_len": 5}])
def test_each_call_gets_consecutive_pairs_of_one_shot(tmp_path, clip, monkeypatch, options):
    src, frames = clip
    rec = Recorder(frames)
    # the "blend" factory returns the module's `blend`, so this swaps in the recorder
    monkeypatch.setattr(classical, "blend", rec)
    res = enhance(src, tmp_path / "out.mkv", codec="ffv1", interp_method="blend", **options)
    assert res.cuts == [CUT]
    assert rec.calls
    requested = []
    for t, pairs in rec.calls:
        assert 0 < t < 1
        for i, j in pairs:
            assert j == i + 1 and (i < CUT) == (j < CUT), f"pair {(i, j)} is not two neighbours of one shot"
        # one temporal window: pair k + 1 starts where pair k ends
        assert [i for i, _ in pairs] == list(range(pairs[0][0], pairs[0][0] + len(pairs))), \
            f"t={t}: pairs {pairs} are not consecutive"
        requested += [(i, round(t, 6)) for i, _ in pairs]
    assert len(requested) == len(set(requested))  # no middle frame computed twice
    # ... and every output frame that is not a source frame or a repeat at the cut was interpolated
    out = [f.image for f in decode(res.output)]
    assert len(out) == res.frames_out
    n_source = sum(any(np.array_equal(o, f) for f in frames) for o in out)
    assert n_source + len(requested) == len(out)


class CountingDIS:
    """Stands in for cv2.DISOpticalFlow_create and records the content of every pair it sees."""

    def __init__(self):
        self.real = cv2.DISOpticalFlow_create
        self.pairs: list[tuple[tuple[int, ...], str, str]] = []

    def __call__(self, *args):
        dis, pairs = self.real(*args), self.pairs

        class Wrapped:
            def calc(self, a, b, flow):
                pairs.append((a.shape, hashlib.sha1(a.data).hexdigest(), hashlib.sha1(b.data).hexdigest()))
                return dis.calc(a, b, flow)

            def __getattr__(self, name):  # settings (setFinestScale, ...) go to the real one
                return getattr(dis, name)

        return Wrapped()


@pytest.mark.parametrize("method", ["dis", "diffusion"])
@pytest.mark.parametrize("options", [{"fps_multiplier": 3}, {"fps": 60}])
def test_flow_of_a_pair_is_estimated_once_for_all_its_fractions(tmp_path, clip, monkeypatch, method, options):
    src, frames = clip
    counter = CountingDIS()
    monkeypatch.setattr(cv2, "DISOpticalFlow_create", counter)
    enhance(src, tmp_path / "out.mkv", codec="ffv1", interp_method=method, **options)
    full = [p for p in counter.pairs if p[0] == frames.shape[1:3]]  # not the analysis thumbnails
    assert full, f"{method} estimated no flow on the frames"
    assert len(full) == len(set(full)), "the flow of some pair was estimated more than once"
    if method == "dis":  # both directions of every pair inside a shot, nothing else
        assert len(full) == 2 * (len(frames) - 2)


def test_flow_cache_is_scoped_exact_and_bounded():
    from restore.ops.flow import dis_flow, flow_cache, pair_flow_bytes

    frames = synthetic_frames(4, 64, 48).astype(np.float32) / 255
    plain = dis_flow(frames[0], frames[1])
    with flow_cache(max_bytes=pair_flow_bytes(48, 64)) as cache:  # room for two flows
        a = dis_flow(frames[0], frames[1])
        assert dis_flow(frames[0], frames[1]) is a and (cache.hits, cache.misses) == (1, 1)
        np.testing.assert_array_equal(a, plain)
        assert not a.flags.writeable  # shared: callers must not modify it
        dis_flow(frames[1], frames[0])
        dis_flow(frames[2], frames[3])  # a third flow evicts the least recently used one
        assert cache.bytes <= cache.max_bytes
        assert dis_flow(frames[0], frames[1]) is not a
    # outside the block nothing is kept
    assert dis_flow(frames[0], frames[1]) is not dis_flow(frames[0], frames[1])
