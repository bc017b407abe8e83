"""Shared pytest fixtures.

Clip builders live in `tests/media.py` (import them with `from tests.media import make_clip`);
this file only holds fixtures.
"""
from __future__ import annotations

import shutil
from importlib.resources import as_file, files
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def sample_clip() -> Path:
    """Path of the bundled sample clip (restore.data/sample.mp4: 640x360, 25 fps, 100 frames,
    H.264 yuv420p BT.709 + stereo AAC). Read-only: copy it before modifying."""
    res = files("restore.data").joinpath("sample.mp4")
    with as_file(res) as p:
        path = Path(p)
        if not path.is_file():
            pytest.fail(f"bundled sample clip missing: {path}")
        yield path


@pytest.fixture
def sample_copy(sample_clip, tmp_path) -> Path:
    """A private, writable copy of the sample clip in the test's tmp_path."""
    dst = tmp_path / "sample.mp4"
    shutil.copyfile(sample_clip, dst)
    return dst


@pytest.fixture
def small_clip(tmp_path) -> Path:
    """A 20-frame 128x96 H.264 clip of synthetic moving content (hard cut at frame 10)."""
    from tests.media import make_clip

    return make_clip(tmp_path / "small.mp4", 20, width=128, height=96, cuts=[10])
