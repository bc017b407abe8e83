"""Bad input through the CLI: non-zero exit, one line naming the file, no traceback, nothing
left behind, input untouched. Odd sizes are processed correctly."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from restore.cli.main import main
from restore.io import decode, probe
from tests.media import make_audio_only, make_clip, synthetic_frames


def _digest(p: Path) -> str | None:
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def run_bad(capsys, root: Path, args: list[str], names: str | Path, inputs=()) -> str:
    """Run `restore ARGS`, check every promise about failures, return the error line."""
    inputs = [Path(p) for p in inputs]
    before, listing = {p: _digest(p) for p in inputs}, _tree(root)
    rc = main(args)
    out, err = capsys.readouterr()
    assert rc != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("restore: error: ") or lines[0].startswith("Error: ")
    assert str(names) in lines[0]
    assert "Traceback" not in out + err
    assert _tree(root) == listing  # no output, no temp files
    assert {p: _digest(p) for p in inputs} == before
    return lines[0]


@pytest.fixture
def clip(tmp_path) -> Path:
    return make_clip(tmp_path / "clip.mp4", 8, width=64, height=48, audio=True)


def test_missing_file(tmp_path, capsys):
    p = tmp_path / "nope.mp4"
    assert "no such file" in run_bad(capsys, tmp_path, ["enhance", str(p), "--scale", "2"], p)


def test_directory(tmp_path, capsys):
    d = tmp_path / "folder.mp4"
    d.mkdir()
    assert "directory" in run_bad(capsys, tmp_path, ["enhance", str(d), "--scale", "2"], d)


def test_empty_file(tmp_path, capsys):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    assert "empty" in run_bad(capsys, tmp_path, ["enhance", str(p), "--scale", "2"], p, [p])


def test_text_file_renamed_mp4(tmp_path, capsys):
    p = tmp_path / "notes.mp4"
    p.write_text("these are my notes, not a video\n" * 20)
    run_bad(capsys, tmp_path, ["enhance", str(p), "--denoise"], p, [p])


def test_mp4_cut_in_half(tmp_path, capsys):
    full = make_clip(tmp_path / "full.mp4", 30, width=64, height=48)
    half = tmp_path / "half.mp4"
    data = full.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    full.unlink()
    run_bad(capsys, tmp_path, ["enhance", str(half), "--scale", "2"], half, [half])


def test_audio_only(tmp_path, capsys):
    p = make_audio_only(tmp_path / "tone.m4a", seconds=0.5)
    assert "no video stream" in run_bad(capsys, tmp_path, ["enhance", str(p), "--denoise"], p, [p])


def test_video_stream_without_a_decodable_frame(tmp_path, capsys):
    good = make_clip(tmp_path / "good.mkv", 10, width=64, height=48)
    bad = tmp_path / "garbage.mkv"
    rng = np.random.default_rng(0)
    # Same container and stream headers, but every video packet replaced by random bytes.
    with av.open(str(good)) as src, av.open(str(bad), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        for pkt in src.demux(vin):
            if pkt.size == 0:
                continue
            junk = av.Packet(rng.integers(0, 256, pkt.size, dtype=np.uint8).tobytes())
            junk.pts, junk.dts, junk.time_base, junk.stream = pkt.pts, pkt.dts, pkt.time_base, vout
            junk.is_keyframe = pkt.is_keyframe
            dst.mux(junk)
    good.unlink()
    line = run_bad(capsys, tmp_path, ["enhance", str(bad), "--scale", "2"], bad, [bad])
    assert "no decodable frame" in line


@pytest.mark.parametrize("w, h", [(7, 5), (1, 1)])
def test_odd_sizes_are_processed(tmp_path, capsys, w, h):
    frames = synthetic_frames(6, w, h)
    src = make_clip(tmp_path / "odd.mkv", frames, codec="ffv1")
    # Same size, lossless: the source frames come back exactly, with blended ones between.
    out = tmp_path / "same.mkv"
    assert main(["enhance", str(src), "-o", str(out), "--fps-multiplier", "2", "--interp-method", "blend",
                 "--codec", "ffv1", "-q"]) == 0
    got = np.stack([f.image for f in decode(out)])
    assert got.shape == (12, h, w, 3)
    np.testing.assert_array_equal(got[0::2], frames)
    # Every task at once, to H.264 (4:2:0 needs even sizes; x2 gives them).
    out2 = tmp_path / "x2.mp4"
    assert main(["enhance", str(src), "-o", str(out2), "--denoise", "--scale", "2",
                 "--fps-multiplier", "2", "-q"]) == 0
    v = probe(out2).video
    assert (v.width, v.height, v.frame_count) == (2 * w, 2 * h, 12)
    capsys.readouterr()


def test_output_equal_to_input(clip, tmp_path, capsys):
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "-o", str(clip), "--scale", "2", "-y"], clip, [clip])
    assert "same file as the input" in line


def test_existing_output_without_overwrite(clip, tmp_path, capsys):
    out = tmp_path / "taken.mp4"
    out.write_bytes(b"precious")
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "-o", str(out), "--scale", "2"], out, [clip, out])
    assert "already exists" in line
    # and with --overwrite it is replaced
    assert main(["enhance", str(clip), "-o", str(out), "--scale", "2", "-y", "-q"]) == 0
    assert probe(out).video.width == 128


def test_unwritable_output_directory_under_a_file(clip, tmp_path, capsys):
    # chmod does not stop root, so use a "directory" that is a regular file.
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker / "out.mp4"
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "-o", str(out), "--scale", "2"], out, [clip, blocker])
    assert "not a directory" in line


def test_unwritable_output_directory_in_proc(clip, tmp_path, capsys):
    out = Path("/proc/restore-test-out.mp4")
    run_bad(capsys, tmp_path, ["enhance", str(clip), "-o", str(out), "--scale", "2"], out, [clip])
    assert not out.exists()


@pytest.mark.parametrize("flags, key", [
    (["--codec", "divx"], "divx"),
    (["--preset", "warp-speed"], "warp-speed"),
    (["--codec", "libsvtav1", "--preset", "99"], "99"),
])
def test_unknown_codec_or_encoder_preset(clip, tmp_path, capsys, flags, key):
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "--scale", "2", *flags], key, [clip])
    assert "encode." in line


def test_unknown_config_preset(clip, tmp_path, capsys):
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "--config", "ultra"], "ultra", [clip])
    assert "available:" in line
    bad = tmp_path / "mine.yaml"
    bad.write_text("chunk:\n  maxlen: 4\n")
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "--config", str(bad)], bad, [clip, bad])
    assert "unknown key 'chunk.maxlen'" in line


def test_installed_script_prints_no_traceback(tmp_path):
    script = Path(sys.executable).with_name("restore")
    if not script.exists():
        pytest.skip("the restore script is not installed in this environment")
    p = tmp_path / "notes.mp4"
    p.write_text("not a video")
    run = subprocess.run([str(script), "enhance", str(p), "--scale", "2"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and str(p) in run.stderr and "Traceback" not in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["notes.mp4"]


# ------------------------------------------------------------------------------------------
# found in review (issue 15)
# ------------------------------------------------------------------------------------------
def test_denoise_with_a_negative_sigma_names_the_sign(clip, tmp_path, capsys):
    listing = _tree(tmp_path)
    for args in (["enhance", str(clip), "--denoise", "-5"], ["enhance", str(clip), "--denoise=-5"],
                 ["batch", str(clip), "--out", str(tmp_path / "o"), "--denoise", "-5"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        # click's usage error: usage, hint, then the one line that says what is wrong
        assert err.strip().splitlines()[-1] == ("Error: Invalid value for '--denoise': noise sigma "
                                                "must be between 0 and 255, got -5"), err
        assert "Traceback" not in err and "No such option" not in err
    assert _tree(tmp_path) == listing


@pytest.mark.parametrize("yaml_text, key", [
    ("output: {pattern: '{stem.__class__}.mp4'}\n", "output.pattern"),
    ("output: {pattern: '{stem[0]}.mp4'}\n", "output.pattern"),
    ("output: {pattern: \"a\\0b{ext}\"}\n", "output.pattern"),
    ("chunk: {max_len: 100000000000}\n", "chunk.max_len"),
    ("chunk: {cut_floor: .nan}\n", "chunk.cut_floor"),
    ("chunk: {cut_ratio: .inf}\n", "chunk.cut_ratio"),
])
def test_preset_values_that_used_to_pass(clip, tmp_path, capsys, yaml_text, key):
    preset = tmp_path / "p.yaml"
    preset.write_text(yaml_text)
    line = run_bad(capsys, tmp_path, ["enhance", str(clip), "--config", str(preset)], preset, [clip, preset])
    assert f"'{key}'" in line


def test_fps_far_below_one_into_mp4(clip, tmp_path, capsys):
    # 0.001 fps is 1000 s a frame: more clock ticks than MP4's 32-bit sample duration holds at
    # the source's fine clock, so the writer picks a coarser one instead of failing at the end.
    out = tmp_path / "slow.mp4"
    assert main(["enhance", str(clip), "--fps", "0.001", "-o", str(out), "--model", "classical", "-q"]) == 0
    assert [f.time for f in decode(out)] == [0.0]
    capsys.readouterr()


@pytest.mark.parametrize("name", ["file:x.mp4", "pipe:0", "concat:a.mp4"])
def test_names_that_look_like_ffmpeg_urls_are_local_files(tmp_path, capsys, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = synthetic_frames(6, 64, 48)
    make_clip(tmp_path / "plain.mp4", frames)
    os.rename(tmp_path / "plain.mp4", tmp_path / name)
    if name == "concat:a.mp4":
        (tmp_path / "a.mp4").write_bytes(b"decoy: FFmpeg's concat protocol would read this file")
    out = Path(name).stem + "_x2.mp4"
    assert main(["enhance", name, "-o", out, "--scale", "2", "--model", "classical", "-q"]) == 0, capsys.readouterr()
    assert probe(tmp_path / out).video.width == 128 and len(list(decode(tmp_path / out))) == 6
    assert main(["info", name]) == 0
    capsys.readouterr()


def test_second_video_stream_is_announced(tmp_path, capsys):
    src = tmp_path / "two.mkv"
    frames = synthetic_frames(6, 64, 48)
    with av.open(str(src), "w") as c:
        streams = [c.add_stream("ffv1", rate=25) for _ in range(2)]
        for s in streams:
            s.width, s.height, s.pix_fmt = 64, 48, "bgr0"
        for i, img in enumerate(frames):
            for s in streams:
                f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="bgr0")
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
        for s in streams:
            for p in s.encode():
                c.mux(p)
    out = tmp_path / "out.mkv"
    assert main(["enhance", str(src), "-o", str(out), "--scale", "2", "--model", "classical", "-q"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err  # said once, up front, not again by the muxer
    assert lines[0].startswith("restore: warning: ") and "#1 (ffv1)" in lines[0] and str(src) in lines[0]
    assert [s.type for s in probe(out).streams] == ["video"]


def _damaged_clip(path: Path, frames: int = 40, damaged: int = 15) -> Path:
    """An H.264 MP4 whose `damaged`-th video packet has a broken NAL length: the decoder rejects
    that packet (and only it) as invalid data, as with a scratched tape capture or a bad sector."""
    make_clip(path.with_suffix(".src.mp4"), frames, width=96, height=64, gop=10)
    with av.open(str(path.with_suffix(".src.mp4"))) as c:
        pos = [p.pos for p in c.demux(c.streams.video[0]) if p.size][damaged]
    data = bytearray(path.with_suffix(".src.mp4").read_bytes())
    data[pos:pos + 4] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    return path


def test_damaged_data_stops_with_where_and_what_to_do_or_is_skipped_when_asked(tmp_path, capsys):
    from restore.errors import DamagedMediaError
    from restore.io.mux import MediaWarning

    src = _damaged_clip(tmp_path / "tape.mp4")
    with pytest.raises(DamagedMediaError, match=r"corrupt video data near 0\.\d\d s"):
        list(decode(src))
    with pytest.warns(MediaWarning, match="1 damaged video packet skipped"):
        assert len(list(decode(src, strict=False))) == 39

    out = tmp_path / "out.mp4"
    assert main(["enhance", str(src), "-o", str(out), "--scale", "2", "--model", "classical"]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--on-error skip" in err and "tape.mp4" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".restore-" in p.name]
    assert main(["enhance", str(src), "-o", str(out), "--scale", "2", "--model", "classical",
                 "--on-error", "skip"]) == 0
    assert "1 damaged video packet skipped" in capsys.readouterr().err
    assert probe(out).video.frame_count == 39
