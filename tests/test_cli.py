"""CLI: help texts, info, models, enhance end to end (and how flags reach the pipeline)."""
from __future__ import annotations

import json

import pytest

from restore.cli.main import main
from restore.io import probe
from tests.media import add_streams, make_clip


def run(capsys, args):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("cmd", ["info", "enhance", "models"])
def test_help_reads_well(capsys, cmd):
    rc, out, _ = run(capsys, [cmd, "--help"])
    assert rc == 0
    assert f"Usage: restore {cmd}" in out and "Examples:" in out
    assert "restore " + cmd in out.split("Examples:")[1]


def test_info_table_and_json(capsys, sample_clip):
    rc, out, _ = run(capsys, ["info", str(sample_clip)])
    assert rc == 0
    assert "640x360" in out and "25 fps" in out and "100 frames" in out and "bt709" in out
    assert "aac" in out and "48000 Hz" in out
    rc, out, _ = run(capsys, ["info", str(sample_clip), "--json"])
    data = json.loads(out)
    assert [s["type"] for s in data["streams"]] == ["video", "audio"]
    assert data["streams"][0]["width"] == 640


def test_info_on_audio_only_and_bad_file(capsys, tmp_path):
    from tests.media import make_audio_only

    tone = make_audio_only(tmp_path / "tone.m4a", seconds=0.3)
    rc, out, _ = run(capsys, ["info", str(tone)])
    assert rc == 0 and "audio" in out and "video" not in out
    bad = tmp_path / "x.mp4"
    bad.write_text("nope")
    rc, _, err = run(capsys, ["info", str(bad)])
    assert rc == 2 and str(bad) in err and "Traceback" not in err


def test_models_lists_methods_with_defaults(capsys):
    rc, out, _ = run(capsys, ["models", "--json"])
    rows = json.loads(out)
    names = {(r["task"], r["name"]): r for r in rows}
    for key in [("denoise", "nlmeans"), ("upscale", "bicubic"), ("upscale", "lanczos"),
                ("interpolate", "blend"), ("interpolate", "dis")]:
        assert names[key]["family"] == "classical"
    for task in ("denoise", "upscale", "interpolate"):
        assert sum(r["default"] for r in rows if r["task"] == task) >= 1
    assert names[("upscale", "lanczos")]["scales"] == [2, 4]
    rc, out, _ = run(capsys, ["models"])
    assert rc == 0 and "upscale:" in out and "lanczos" in out and "*" in out


def test_enhance_end_to_end_with_audio_and_subtitles(capsys, tmp_path):
    clip = make_clip(tmp_path / "base.mp4", 20, width=64, height=48, cuts=[9], audio=True)
    src = add_streams(clip, tmp_path / "talk.mkv", srt="1\n00:00:00,000 --> 00:00:00,500\nhello\n")
    rc, out, err = run(capsys, ["enhance", str(src), "--denoise", "--scale", "2", "--fps-multiplier", "2",
                                "--model", "classical", "--json"])
    assert rc == 0, err
    res = json.loads(out)
    assert res["output"] == str(tmp_path / "talk_restored.mkv")
    assert (res["frames_in"], res["frames_out"]) == (20, 40)
    assert res["methods"] == {"denoise": "nlmeans", "upscale": "lanczos", "interpolate": "dis"}
    info = probe(res["output"])
    assert (info.video.width, info.video.height) == (128, 96)
    assert sorted(s.type for s in info.streams) == ["audio", "subtitle", "video"]
    # --no-copy-audio / --no-copy-subtitles drop them; -y overwrites
    rc, out, err = run(capsys, ["enhance", str(src), "-o", res["output"], "-y", "--no-copy-audio",
                                "--no-copy-subtitles", "-q"])
    assert rc == 0 and out == "" and err == ""
    assert [s.type for s in probe(res["output"]).streams] == ["video"]


@pytest.mark.slow
def test_enhance_bundled_sample(capsys, sample_copy):
    """The README command on data/sample.mp4 (minutes on CPU: NLM at 640x360, flow at 720p)."""
    rc, out, err = run(capsys, ["enhance", str(sample_copy), "--denoise", "--scale", "2",
                                "--fps-multiplier", "2", "--model", "classical", "--json"])
    assert rc == 0, err
    res = json.loads(out)
    info = probe(res["output"])
    assert (info.video.width, info.video.height) == (1280, 720)
    assert abs(info.video.frame_count - 200) <= 2
    assert [s.type for s in info.streams] == ["video", "audio"]


def test_flags_reach_the_pipeline(monkeypatch, capsys, tmp_path):
    import restore.pipeline

    seen = {}

    def fake_enhance(input, output=None, **kw):
        seen.update(kw, input=input, output=output)
        raise SystemExit(0)

    monkeypatch.setattr(restore.pipeline, "enhance", fake_enhance)
    with pytest.raises(SystemExit):
        main(["enhance", "in.mp4", "--denoise", "--scale", "4", "--fps", "59.94", "--codec", "libx265",
              "--preset", "slow", "--crf", "22", "--config", "sr-x4", "--steps", "3", "--seed", "7",
              "--tile", "256", "--device", "cpu", "--bit-depth", "10", "-y"])
    assert seen["denoise"] == "auto" and seen["scale"] == 4 and seen["fps"] == 59.94
    assert (seen["codec"], seen["encoder_preset"], seen["crf"]) == ("libx265", "slow", 22)
    assert (seen["preset"], seen["steps"], seen["seed"], seen["tile"]) == ("sr-x4", 3, 7, 256)
    assert seen["overwrite"] is True and seen["bit_depth"] == 10 and "copy_audio" not in seen
    seen.clear()
    with pytest.raises(SystemExit):
        main(["enhance", "in.mp4", "--denoise", "12.5", "-o", "x.mkv", "--model", "nlmeans", "--no-copy-audio"])
    assert seen["denoise"] == 12.5 and seen["output"] == "x.mkv" and seen["model"] == "nlmeans"
    assert seen["copy_audio"] is False and "scale" not in seen  # not given: the preset decides


def test_enhance_usage_errors(capsys):
    rc, _, err = run(capsys, ["enhance", "in.mp4", "--fps", "30", "--fps-multiplier", "2"])
    assert rc == 2 and "either --fps-multiplier or --fps" in err
    rc, _, err = run(capsys, ["enhance", "--denoise", "in.mp4"])
    assert rc == 2 and "put INPUT before --denoise" in err
    rc, _, err = run(capsys, ["enhance", "in.mp4", "--scale", "3"])
    assert rc == 2 and "--scale" in err


def test_version(capsys):
    rc, out, _ = run(capsys, ["--version"])
    assert rc == 0 and "restore" in out
