"""Chunk-level resume (`restore enhance --resume`) and clean interruption.

Kill points are made exact by a driver script that SIGKILLs its own process at the N-th
VideoWriter.write call: the writes go to the final encoder and to the work folder's FFV1
segments, so the kills land mid-chunk, between a segment and its commit, and in the final
encode after the last chunk.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from restore.errors import RestoreError
from restore.io import decode
from restore.pipeline import enhance
from tests.media import make_clip

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {"denoise": True, "scale": 2, "fps_multiplier": 2, "model": "classical",
            "chunk.min_len": 3, "chunk.max_len": 6}

# Runs enhance() with --resume and dies by SIGKILL at write number `kill_at` (0: never), or
# with `pause` seconds per write and a marker file after `mark_at` writes (for signals sent
# from outside), through the CLI when `cli` is set.
DRIVER = r"""
import json, os, signal, sys, time
from pathlib import Path
# A shell without job control starts background commands with SIGINT ignored, and the child
# inherits that (CI launched with `&`): give it the Ctrl-C a terminal user's process has.
signal.signal(signal.SIGINT, signal.default_int_handler)
from restore.io import encode
a = json.loads(sys.argv[1])
orig = encode.VideoWriter.write
count = [0]
def write(self, *args, **kw):
    count[0] += 1
    if count[0] == a.get("kill_at"):
        os.kill(os.getpid(), signal.SIGKILL)
    if count[0] == a.get("mark_at"):
        Path(a["marker"]).write_text("x")
    time.sleep(a.get("pause", 0))
    return orig(self, *args, **kw)
encode.VideoWriter.write = write
if a.get("cli"):
    from restore.cli.main import main
    sys.exit(main(a["cli"]))
from restore.pipeline import enhance
enhance(a["src"], a["out"], resume=True, **a["settings"])
"""


def _driver(args: dict, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(args)], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, text=True, **popen)


def frames_of(path) -> np.ndarray:
    return np.stack([f.image for f in decode(path)])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".restore-" in p.name)


@pytest.fixture(scope="module")
def clip_and_reference(tmp_path_factory):
    """30 frames with a cut at 13 and audio, and the output of an uninterrupted run (no
    --resume at all): the reference every resumed run must equal exactly."""
    d = tmp_path_factory.mktemp("resume")
    src = make_clip(d / "in.mp4", 30, width=64, height=48, cuts=[13], audio=True)
    ref = enhance(src, d / "ref.mp4", **SETTINGS)
    assert ref.chunks >= 6
    return src, frames_of(ref.output), ref


# 118 writes in all: 60 output frames to the final encoder plus 58 to the 6 chunks' segments;
# the chunks commit after writes 20, 36, 48, 72, 96 and 116, and the last frame's 2 output frames
# go to the final encoder only, after the last commit.
@pytest.mark.parametrize("kill_at", [1, 9, 40, 77, 116, 117])
def test_sigkill_then_resume_is_bit_identical(tmp_path, clip_and_reference, kill_at):
    src, expected, ref = clip_and_reference
    out = tmp_path / "out.mp4"
    proc = _driver({"src": str(src), "out": str(out), "settings": SETTINGS, "kill_at": kill_at})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    assert not out.exists()
    left = leftovers(tmp_path)
    assert any(".restore-work-" in n for n in left), left  # the work folder survives the kill
    res = enhance(src, out, resume=True, **SETTINGS)
    np.testing.assert_array_equal(frames_of(out), expected)
    assert res.frames_out == ref.frames_out and res.chunks == ref.chunks
    assert 0 <= res.resumed_chunks <= res.chunks
    if kill_at == 117:  # killed in the final encode, after the last chunk: nothing left to restore
        assert res.resumed_chunks == res.chunks
    if kill_at == 1:
        assert res.resumed_chunks == 0
    if kill_at >= 40:  # past the first chunks
        assert res.resumed_chunks > 0
    if kill_at > 1:  # the killed run's temp output was recognised and removed
        assert any(".out.restore-" in Path(c).name for c in res.cleaned), res.cleaned
    assert leftovers(tmp_path) == []  # no temp file, and the work folder is gone after success
    assert res.work_bytes > 0


def test_killed_twice_then_resumed(tmp_path, clip_and_reference):
    src, expected, _ = clip_and_reference
    out = tmp_path / "out.mp4"
    # 3 chunks done at write 50; the second run replays them (24 writes), commits chunk 3 at
    # write 48 and dies in chunk 4
    for kill_at in (50, 55):
        proc = _driver({"src": str(src), "out": str(out), "settings": SETTINGS, "kill_at": kill_at})
        proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL
    res = enhance(src, out, resume=True, **SETTINGS)
    assert res.resumed_chunks >= 4
    np.testing.assert_array_equal(frames_of(out), expected)


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_signal_removes_temp_files_and_resume_finishes(tmp_path, clip_and_reference, sig, code):
    src, expected, _ = clip_and_reference
    out, marker = tmp_path / "out.mp4", tmp_path / "marker"
    cli = ["enhance", str(src), "-o", str(out), "--resume", "--denoise", "--scale", "2",
           "--fps-multiplier", "2", "--model", "classical", "-q"]
    # chunk sizes come from a config file: the CLI has no flags for them
    preset = tmp_path / "small.yaml"
    preset.write_text("chunk: {min_len: 3, max_len: 6}\n")
    cli += ["--config", str(preset)]
    proc = _driver({"cli": cli, "mark_at": 30, "marker": str(marker), "pause": 0.05})
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err
    assert "Traceback" not in err
    assert not out.exists()
    left = leftovers(tmp_path)
    assert len(left) == 1 and ".restore-work-" in left[0], left  # temp files gone, work kept
    res = enhance(src, out, resume=True, **SETTINGS)
    assert res.resumed_chunks > 0 and res.cleaned == []
    np.testing.assert_array_equal(frames_of(out), expected)


def test_keep_temp_and_changed_settings(tmp_path, clip_and_reference):
    src, expected, _ = clip_and_reference
    out = tmp_path / "out.mp4"
    res = enhance(src, out, resume=True, keep_temp=True, **SETTINGS)
    work = Path(res.work_dir)
    assert res.kept_work_dir and work.is_dir() and (work / "progress.json").exists()
    assert json.loads((work / "progress.json").read_text())["chunks_done"] == res.chunks
    segs = sorted(work.glob("seg-*.mkv"))
    assert len(segs) == res.chunks
    assert res.work_bytes == sum(p.stat().st_size for p in work.iterdir())
    # Same input and settings, encoder settings changed: everything is replayed, nothing restored.
    again = enhance(src, out, resume=True, overwrite=True, crf=30, **SETTINGS)
    assert again.resumed_chunks == res.chunks and not work.exists()
    # Other settings: a new key; an old work folder of this output is stale and removed.
    enhance(src, out, resume=True, keep_temp=True, overwrite=True, **SETTINGS)
    assert work.is_dir()
    other = enhance(src, out, resume=True, overwrite=True, **{**SETTINGS, "denoise": 10})
    assert other.resumed_chunks == 0 and str(work) in other.cleaned and not work.exists()
    assert leftovers(tmp_path) == []


def test_resume_refuses_when_the_work_folder_would_not_fit(tmp_path, clip_and_reference, monkeypatch):
    import shutil
    from collections import namedtuple

    src, _, _ = clip_and_reference
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(1 << 30, 1 << 30, 100 << 20))
    with pytest.raises(RestoreError, match="not enough free disk for --resume"):
        enhance(src, tmp_path / "out.mp4", resume=True, **SETTINGS)
    assert list(tmp_path.iterdir()) == []  # no output, no temp file, no work folder


def test_a_second_run_on_the_same_output_is_refused_while_one_runs(tmp_path, clip_and_reference):
    src, _, _ = clip_and_reference
    out, marker = tmp_path / "out.mp4", tmp_path / "marker"
    proc = _driver({"src": str(src), "out": str(out), "settings": SETTINGS, "mark_at": 5,
                    "marker": str(marker), "pause": 0.2})
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(RestoreError, match="another restore run is writing this output"):
            enhance(src, out, resume=True, **SETTINGS)
        # the live run's temp files hold their lock: a sweep leaves them alone
        from restore.io.atomic import sweep_stale_temps

        live = [n for n in leftovers(tmp_path) if "work" not in n]
        assert live and sweep_stale_temps(out) == [] and live == [n for n in leftovers(tmp_path)
                                                                  if "work" not in n]
    finally:
        proc.kill()
        proc.communicate()


def test_diffusion_upscale_resume_draws_the_same_noise(tmp_path):
    """The diffusion upscaler adds seeded noise; its seed comes from the absolute index of each
    call's first frame (start_index), so restoring chunks 1.. in a fresh process after a kill gives
    exactly the frames an uninterrupted run gives. (A per-process call counter would not.)"""
    src = make_clip(tmp_path / "in.mkv", 10, width=32, height=24, codec="ffv1")
    settings = {"scale": 2, "model": "diffusion", "chunk.min_len": 3, "chunk.max_len": 4,
                "codec": "ffv1"}
    ref = enhance(src, tmp_path / "ref.mkv", **settings)
    assert ref.methods == {"upscale": "diffusion"} and ref.chunks == 3
    out = tmp_path / "out.mkv"
    # writes: chunk 0 emits 3 frames to the encoder and its segment (6 writes), then dies in chunk 1
    proc = _driver({"src": str(src), "out": str(out), "settings": settings, "kill_at": 9})
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    res = enhance(src, out, resume=True, **settings)
    assert res.resumed_chunks == 1
    np.testing.assert_array_equal(frames_of(out), frames_of(ref.output))
