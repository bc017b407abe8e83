"""Scene-cut detection on generated clips with known cuts, fast pans, zooms, running subjects and
flashes: every cut is found and none of the rest is taken for one (restore.chunks.analyse)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from restore.chunks import CutDetector, FrameStats, analyse, motion_residual, thumbnail

W, H = 160, 90


def texture(seed: int, w: int, h: int) -> np.ndarray:
    """A natural-looking RGB canvas: smooth colour blobs at two scales plus hard-edged rectangles."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((40, 0.5), (8, 0.5)):
        grid = rng.random((h // cell + 2, w // cell + 2, 3)).astype(np.float32)
        img += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(w * h // 600):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        rw, rh = int(rng.integers(4, 30)), int(rng.integers(4, 30))
        img[y:y + rh, x:x + rw] = rng.random(3)
    return np.clip(img * rng.uniform(0.5, 1.0, 3).astype(np.float32), 0, 1)


class Shot:
    """One shot of a camera over a large canvas: position, zoom and an optional moving subject,
    each a function of the frame number within the shot."""

    def __init__(self, seed, n, pan=(0.0, 0.0), zoom=1.0, subject=None, pan_from=0, zoom_from=0,
                 pan_until=None, size=40):
        self.seed, self.n = seed, n
        self.canvas = texture(seed, W * 4, H * 4)
        self.pan, self.zoom, self.subject = pan, zoom, subject
        self.pan_from, self.zoom_from = pan_from, zoom_from
        self.pan_until = n if pan_until is None else pan_until
        self.size = size
        self.sprite = texture(seed + 1000, size, size)

    def frame(self, t: int) -> np.ndarray:
        tp = min(max(0, t - self.pan_from), self.pan_until - self.pan_from)
        tz = max(0, t - self.zoom_from)
        # start off-centre against the pan direction, so the view stays on the canvas
        cx = W * 2 - 1.5 * W * np.sign(self.pan[0]) + self.pan[0] * tp
        cy = H * 2 - 1.5 * H * np.sign(self.pan[1]) + self.pan[1] * tp
        s = self.zoom ** tz
        # affine map from output pixels to canvas pixels: scale about the output centre
        m = np.float32([[1 / s, 0, cx - W / 2 / s], [0, 1 / s, cy - H / 2 / s]])
        img = cv2.warpAffine(self.canvas, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_REFLECT)
        if self.subject is not None:
            start, vx = self.subject
            if t >= start:  # a textured disc of `size` px crossing the frame left to right
                n = self.size
                x0 = int(round(vx * (t - start))) - n
                y0 = (H - n) // 2
                yy, xx = np.mgrid[0:n, 0:n]
                disc = (yy - (n - 1) / 2) ** 2 + (xx - (n - 1) / 2) ** 2 < (n / 2) ** 2
                lo, hi = max(0, -x0), min(n, W - x0)
                if lo < hi:
                    region = img[y0:y0 + n, x0 + lo:x0 + hi]
                    region[disc[:, lo:hi]] = self.sprite[:, lo:hi][disc[:, lo:hi]]
        return img


def render(shots, noise=0.01, flashes=(), seed=0):
    """uint8 frames of the shots back to back, and the frame indices where shots start (the cuts).
    `flashes`: {frame: gain}, a global brightness jump (gain and offset, clipped) on that frame."""
    rng = np.random.default_rng(seed)
    flashes = dict(flashes)
    frames, cuts, pos = [], [], 0
    for k, shot in enumerate(shots):
        if k:
            cuts.append(pos)
        for t in range(shot.n):
            img = shot.frame(t)
            if pos in flashes:
                g = flashes[pos]
                img = img * g + 0.1 * (g - 1)
            img = img + rng.normal(0, noise, img.shape)
            frames.append((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
            pos += 1
    return frames, cuts


def cuts_of(frames):
    return analyse(frames).cuts


# ---- cuts are found -----------------------------------------------------------------------

def test_cuts_between_static_slow_and_fast_shots_are_all_found():
    shots = [Shot(1, 14), Shot(2, 12, pan=(1.5, 0.5)), Shot(3, 15, pan=(-14, 0)),
             Shot(4, 13, pan=(16, 3)), Shot(5, 12, zoom=1.06), Shot(6, 12)]
    frames, cuts = render(shots)
    assert cuts_of(frames) == cuts


def test_cut_inside_fast_motion_is_found():
    # Both sides pan fast: the raw difference at the cut is barely above that of the motion
    # around it, so a threshold on the raw difference alone has to miss it or fire on the pan.
    frames, cuts = render([Shot(11, 16, pan=(18, 0)), Shot(12, 16, pan=(-18, 4))])
    stats = analyse(frames)
    assert stats.cuts == cuts
    neighbours = stats.scores[cuts[0] - 8:cuts[0]] + stats.scores[cuts[0] + 1:cuts[0] + 9]
    assert stats.scores[cuts[0]] < 3 * np.median(neighbours)  # the scenario is the hard one


def test_cut_between_shots_of_similar_colour_is_found():
    # same canvas generator and colour cast, different place on it: only structure changes
    a, b = Shot(21, 14), Shot(21, 14, pan=(0, 0))
    b.canvas = np.roll(b.canvas, (H * 2, W * 2), axis=(0, 1))
    frames, cuts = render([a, b])
    assert cuts_of(frames) == cuts


# ---- motion and light are not cuts ---------------------------------------------------------

@pytest.mark.parametrize("pan, frames", [((24, 0), 3), ((-10, 12), 2), ((16, 6), 4), ((20, 0), 18)])
def test_fast_pan_starting_abruptly_is_not_a_cut(pan, frames):
    # still for 12 frames, then the camera whips at pan px/frame (15 % of the width) for a few
    # frames: the raw difference jumps far above that of the still frames around it
    frames, _ = render([Shot(31, 30, pan=pan, pan_from=12, pan_until=12 + frames)])
    stats = analyse(frames)
    assert max(stats.scores) > 15  # it does move fast enough to reach the cut floor
    assert stats.cuts == []


@pytest.mark.parametrize("zoom", [1.15, 1 / 1.12, 1.25])
def test_fast_zoom_is_not_a_cut(zoom):
    frames, _ = render([Shot(41, 26, zoom=zoom, zoom_from=10)])
    stats = analyse(frames)
    assert max(stats.scores) > 15
    assert stats.cuts == []


@pytest.mark.parametrize("speed, size", [(24, 70), (40, 80)])
def test_running_subject_is_not_a_cut(speed, size):
    # a large textured subject bursts into a still shot and crosses it within a few frames
    frames, _ = render([Shot(51, 30, subject=(10, speed), size=size)])
    stats = analyse(frames)
    assert max(stats.scores) > 15
    assert stats.cuts == []


@pytest.mark.parametrize("gain", [1.6, 0.5, 2.2])
def test_flash_is_not_a_cut(gain):
    frames, _ = render([Shot(61, 30, pan=(1, 0))], flashes={12: gain, 20: gain, 21: gain})
    stats = analyse(frames)
    assert max(stats.scores) > 15
    assert stats.cuts == []


def test_everything_in_one_clip():
    shots = [Shot(71, 20, pan=(16, 0), pan_from=8), Shot(72, 20, subject=(5, 16)),
             Shot(73, 20, zoom=1.1, zoom_from=6), Shot(74, 20, pan=(-1, 0))]
    frames, cuts = render(shots, flashes={70: 1.8, 71: 1.8})
    assert cuts_of(frames) == cuts


# ---- the parts ------------------------------------------------------------------------------

def test_motion_residual_explains_motion_and_light_but_not_new_content():
    shot = Shot(81, 12, pan=(14, 3))
    a, b = thumbnail(shot.frame(4)), thumbnail(shot.frame(5))
    other = thumbnail(Shot(82, 2).frame(0))
    raw = float(np.mean(np.abs(a - b)))
    assert motion_residual(a, b) < raw / 3
    assert motion_residual(a, np.clip(a * 1.7 + 10, 0, 255)) < 5
    assert motion_residual(a, other) > 20


def test_detector_needs_floor_residual_and_ratio():
    det = CutDetector(abs_floor=10, k=3, window=3, residual_floor=8)
    scores = [0, 30, 30, 30, 30, 30, 30, 30]
    # frame 4 changes as much as the others but only it is not explained by motion
    assert det.detect(scores, [0, 2, 2, 2, 20, 2, 2, 2]) == [4]
    assert det.detect(scores, [0, 2, 2, 2, 7, 2, 2, 2]) == []       # under residual_floor
    assert det.detect(scores, [0, 9, 9, 9, 20, 9, 9, 9]) == []      # under 3 x the median
    assert det.detect([0, 5, 5, 5, 9, 5, 5, 5], [0, 2, 2, 2, 20, 2, 2, 2]) == []  # under abs_floor


def test_stats_json_stays_compatible():
    frames, cuts = render([Shot(91, 10), Shot(92, 10)])
    stats = analyse(frames)
    assert len(stats.residuals) == stats.n_frames
    assert FrameStats.from_json(stats.to_json()) == stats
    # stats written before residuals existed still load, with their own cuts and detector
    old = ('{"keys": [true, false, false], "scores": [0.0, 1.0, 30.0], "cuts": [2], '
           '"detector": {"abs_floor": 15.0, "k": 3.0, "window": 8}}')
    loaded = FrameStats.from_json(old)
    assert loaded.cuts == [2] and loaded.residuals == [] and loaded.detector.window == 8
