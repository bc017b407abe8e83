"""Previews: a stretch cut by stream copy (restore.io.excerpt) and `restore enhance --preview`."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from restore.cli.main import main
from restore.errors import RestoreError
from restore.io import decode, probe
from restore.io.excerpt import cut
from restore.pipeline.preview import preview
from tests.media import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """4 s at 25 fps with a key frame every second, B-frames, audio and BT.709 tags."""
    path = tmp_path_factory.mktemp("preview") / "clip.mp4"
    return make_clip(path, 100, width=96, height=64, gop=25, audio=True, color_matrix="bt709",
                     color_primaries="bt709", color_transfer="bt709",
                     options={"preset": "medium", "bframes": "2", "sc_threshold": "0"})


def _frames(path):
    return [(f.time, f.image) for f in decode(path)]


def test_a_cut_starts_at_the_key_frame_before_start_and_keeps_the_frames_bit_exact(clip, tmp_path):
    part = cut(clip, tmp_path / "part.mp4", 1.5, 1.0)
    assert part.start == pytest.approx(1.0) and part.end == pytest.approx(2.5)
    src = _frames(clip)
    got = _frames(part.path)
    # a stream copy: the frames of [1.0, 2.5) exactly, timestamps moved to start near zero; the
    # cut is in decode order, so the B-frames shown just before its end may be left out
    want = [img for t, img in src if 1.0 - 1e-6 <= t < 2.5 - 1e-6]
    assert len(want) - 2 <= len(got) == part.frames <= len(want) == 38
    for (_, a), b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    times = [t for t, _ in got]
    assert 0.0 <= times[0] < 0.2 and np.allclose(np.diff(times), 0.04)
    info = probe(part.path)
    assert info.video.color_primaries == "bt709"
    (audio,) = info.audio
    assert audio.duration == pytest.approx(1.5, abs=0.1)


def test_from_key_gives_the_length_from_the_key_frame_and_the_end_stops_at_the_video(clip, tmp_path):
    part = cut(clip, tmp_path / "part.mkv", 2.7, 0.5, from_key=True)
    assert part.start == pytest.approx(2.0) and 11 <= part.frames <= 13 and part.end == pytest.approx(2.5)
    part = cut(clip, tmp_path / "tail.mkv", 3.2, 10.0)
    assert part.start == pytest.approx(3.0) and part.frames == 25 and part.end == pytest.approx(4.0)


def test_preview_writes_beside_the_output_and_estimates_the_whole_run(clip, tmp_path):
    out = tmp_path / "final.mp4"
    before = hashlib.sha256(clip.read_bytes()).hexdigest()
    res = preview(clip, out, seconds=1.0, at=2.2, scale=2, model="classical")
    assert res.output == str(tmp_path / "final.preview.mp4") and not out.exists()
    assert res.start == pytest.approx(2.0) and 28 <= res.frames <= 30   # 2.0 -> 3.2 s: the lead-in is kept
    info = probe(res.output)
    assert (info.video.width, info.video.height) == (192, 128) and len(info.audio) == 1
    assert res.total_frames == 100 and res.estimate > 0
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == before
    with pytest.raises(RestoreError, match="already exists"):
        preview(clip, out, seconds=1.0, scale=2, model="classical")
    with pytest.raises(RestoreError, match="past the end"):
        preview(clip, out, seconds=1.0, at=9.0, scale=2, model="classical", overwrite=True)


def test_a_clip_shorter_than_the_preview_is_restored_whole(clip, tmp_path):
    res = preview(clip, tmp_path / "o.mkv", seconds=30.0, scale=2, model="classical")
    assert res.frames == 100 and res.start == pytest.approx(0.0)


def test_enhance_preview_on_the_command_line(capsys, clip, tmp_path):
    out = tmp_path / "x.mp4"
    args = ["enhance", str(clip), "-o", str(out), "--scale", "2", "--model", "classical", "--preview", "0.5"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"wrote {tmp_path / 'x.preview.mp4'}" in text and "would take about" in text
    assert main(args) != 0                                # an existing preview is not replaced ...
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert main(args + ["-y", "--preview-at", "0:01.5", "--json"]) == 0   # ... unless asked
    data = json.loads(capsys.readouterr().out)
    assert data["start"] == pytest.approx(1.0) and data["total_frames"] == 100
    assert main(args + ["--resume"]) != 0
    assert "--resume" in capsys.readouterr().err
    assert main(args + ["--preview-at", "soon"]) != 0
    assert "--preview-at" in capsys.readouterr().err
    assert not out.exists()
