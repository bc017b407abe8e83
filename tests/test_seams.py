"""restore.seams: the chunk-boundary check `restore enhance --report-seams` prints."""
from __future__ import annotations

import numpy as np
import pytest

from restore import registry
from restore.pipeline import enhance
from tests.media import make_clip

CHUNKS = {"chunk.min_len": 6, "chunk.max_len": 8, "chunk.overlap": 2}


def _register(monkeypatch, name, fn):
    def factory(options):
        fn.scale = 1
        return fn
    registry.methods()  # built-ins first, so ours is not overwritten
    monkeypatch.setitem(registry._REGISTRY, ("denoise", name), registry.MethodSpec("denoise", name, factory,
                                                                                    "test", "test"))


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "in.mkv", 48, width=96, height=64, codec="ffv1")


def test_a_consistent_restorer_passes(tmp_path, clip, monkeypatch):
    _register(monkeypatch, "gain", lambda frames, anchors=None: np.clip(frames * 0.8 + 0.1, 0, 1))
    res = enhance(clip, tmp_path / "out.mkv", codec="ffv1", denoise=True, denoise_method="gain",
                  report_seams=True, **CHUNKS)
    s = res.seams
    assert s["boundary_pairs"] == res.chunks - 1 >= 5 and s["interior_pairs"] == 47 - s["boundary_pairs"]
    # the gain scales the input's own brightness changes by 0.8: a small, seam-free difference
    assert s["ok"] is True and s["ewarp_ratio_relative"] <= 1.1 and s["luma_step_max"] < 0.5


def test_a_brightness_jump_at_every_boundary_is_caught(tmp_path, clip, monkeypatch):
    calls = []

    def seamy(frames, anchors=None):  # every other chunk 2 % brighter: a visible seam
        calls.append(len(frames))
        return np.clip(frames + 0.02 * (len(calls) % 2), 0, 1)

    _register(monkeypatch, "seamy", seamy)
    res = enhance(clip, tmp_path / "out.mkv", codec="ffv1", denoise=True, denoise_method="seamy",
                  report_seams=True, **CHUNKS)
    s = res.seams
    assert s["ok"] is False
    assert 4.5 < s["luma_step_max"] < 5.5  # 0.02 x 255 levels
    assert s["ewarp_ratio_relative"] > 1.1 and s["ewarp_ratio"] > 1.1


def test_upscaled_output_and_the_cli_line(tmp_path, clip, capsys):
    from restore.cli.main import main

    out = tmp_path / "up.mkv"
    preset = tmp_path / "p.yaml"
    preset.write_text("chunk: {min_len: 6, max_len: 8}\n")
    assert main(["enhance", str(clip), "-o", str(out), "--codec", "ffv1", "--scale", "2", "--model",
                 "bicubic", "--config", str(preset), "--report-seams", "--profile"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("seams ok: E_warp across chunk boundaries / inside chunks = "), lines
    assert lines[1].startswith("profile: ") and "models" in lines[1]


def test_check_files_recomputes_the_plan(tmp_path, clip, monkeypatch):
    from restore.errors import RestoreError
    from restore.seams import check_files

    _register(monkeypatch, "gain", lambda frames, anchors=None: np.clip(frames * 0.8 + 0.1, 0, 1))
    res = enhance(clip, tmp_path / "out.mkv", codec="ffv1", denoise=True, denoise_method="gain",
                  report_seams=True, **CHUNKS)
    # the same numbers from the files (FFV1 is lossless, up to 8-bit rounding of the output)
    r = check_files(clip, res.output, **CHUNKS)
    assert (r.boundary_pairs, r.interior_pairs) == (res.seams["boundary_pairs"], res.seams["interior_pairs"])
    assert r.ewarp_ratio == pytest.approx(res.seams["ewarp_ratio"], rel=0.05) and r.ok
    twice = enhance(clip, tmp_path / "x2.mkv", codec="ffv1", fps_multiplier=2, interp_method="blend")
    with pytest.raises(RestoreError, match="without frame-rate change"):
        check_files(clip, twice.output)
