"""Interlaced sources: bwdif in decode(), input.deinterlace in enhance (auto, always, never)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from restore.config import load_config
from restore.errors import ConfigError
from restore.io import decode, probe
from restore.io.mux import MediaWarning
from restore.pipeline import enhance
from tests.media import make_clip

T, H, W = 12, 64, 96


def _comb(img) -> float:
    """Mean difference of each row from the average of its neighbours: large where two fields
    of a moving picture are woven into one frame."""
    y = img[..., 1].astype(np.float64)
    return float(np.abs(y[1:-1] - (y[:-2] + y[2:]) / 2).mean())


@pytest.fixture(scope="module")
def interlaced(tmp_path_factory):
    """A bright bar moving right, the odd rows half a frame later than the even ones (top field
    first), encoded as interlaced H.264."""
    frames = np.full((T, H, W, 3), 40, np.uint8)
    for t in range(T):
        for parity in (0, 1):
            x = int(10 + 6 * (t + 0.5 * parity))
            frames[t, parity::2, x:x + 12] = 220
    path = tmp_path_factory.mktemp("il") / "tape.mp4"
    return make_clip(path, frames, width=W, height=H, crf=10, options={"x264-params": "tff=1"})


@pytest.fixture(scope="module")
def progressive(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("pr") / "prog.mp4", T, width=W, height=H, gop=5)


def test_decode_deinterlaces_one_frame_per_frame_keeping_times_and_key_flags(interlaced, progressive):
    assert probe(interlaced).video.field_order == "tt"
    raw = list(decode(interlaced))
    woven = list(decode(interlaced, deinterlace="interlaced"))
    assert [(f.time, f.key) for f in woven] == [(f.time, f.key) for f in raw]
    assert np.mean([_comb(f.image) for f in woven]) < 0.1 * np.mean([_comb(f.image) for f in raw])
    # frames the decoder does not flag as interlaced pass through bit-exactly
    plain = list(decode(progressive))
    kept = list(decode(progressive, deinterlace="interlaced"))
    assert [(f.time, f.key) for f in kept] == [(f.time, f.key) for f in plain] and sum(f.key for f in kept) > 1
    for a, b in zip(kept, plain):
        np.testing.assert_array_equal(a.image, b.image)


def test_enhance_deinterlaces_a_tagged_interlaced_input_unless_told_never(interlaced, tmp_path):
    notes = []
    res = enhance(interlaced, tmp_path / "auto.mkv", codec="ffv1", log=notes.append)
    assert any("deinterlace: top field first" in n for n in notes) and res.methods == {"deinterlace": "bwdif"}
    with pytest.warns(MediaWarning, match="interlaced .* combing stays"):
        enhance(interlaced, tmp_path / "never.mkv", codec="ffv1", deinterlace="never")
    src = np.mean([_comb(f.image) for f in decode(interlaced)])
    auto = np.mean([_comb(f.image) for f in decode(tmp_path / "auto.mkv")])
    never = np.mean([_comb(f.image) for f in decode(tmp_path / "never.mkv")])
    assert auto < 0.1 * src and never == pytest.approx(src, rel=0.05)


def test_a_progressive_input_is_left_alone_by_auto(progressive, tmp_path):
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", MediaWarning)
        res = enhance(progressive, tmp_path / "a.mkv", codec="ffv1", log=notes.append)
    assert res.methods == {}
    enhance(progressive, tmp_path / "n.mkv", codec="ffv1", deinterlace="never")
    assert not any("deinterlace" in n for n in notes)
    for a, b in zip(decode(tmp_path / "a.mkv"), decode(tmp_path / "n.mkv")):
        np.testing.assert_array_equal(a.image, b.image)


def test_a_bad_deinterlace_setting_names_the_key():
    with pytest.raises(ConfigError, match="input.deinterlace"):
        load_config("default", {"deinterlace": "sometimes"})
