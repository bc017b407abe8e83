"""One override syntax and one table of enhance flags: `--set dotted.key=VALUE` for enhance, batch
and train; the click options of enhance and batch generated from restore.config.FLAGS."""
from __future__ import annotations

import subprocess
import sys

import pytest

from restore.cli.main import main
from restore.config import ALIASES, FLAGS, load_config, parse_settings
from restore.errors import ConfigError


def run(capsys, args):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("cmd", [["enhance"], ["batch", "run"]])
def test_enhance_and_batch_list_every_flag_of_the_table(capsys, cmd):
    rc, out, _ = run(capsys, [*cmd, "--help"])
    assert rc == 0
    for f in FLAGS:
        assert f.option in out, f.option
    assert "--set KEY=VALUE" in out and "--config" in out


def test_keyword_aliases_are_the_table_plus_the_api_only_ones():
    assert ALIASES == {
        "deinterlace": "input.deinterlace", "on_error": "input.on_error", "deblock_strength": "deblock.strength", "deblock_method": "deblock.method",
        "denoise_strength": "denoise.strength", "denoise_method": "denoise.method",
        "scale": "upscale.scale", "upscale_method": "upscale.method",
        "fps_multiplier": "interpolate.multiplier", "fps": "interpolate.fps",
        "interp_method": "interpolate.method", "model": "model.name", "device": "model.device",
        "precision": "model.precision",
        "steps": "model.steps", "start_sigma": "model.start_sigma", "seed": "model.seed",
        "tile": "model.tile", "codec": "encode.codec", "crf": "encode.crf",
        "encoder_preset": "encode.preset", "pix_fmt": "encode.pix_fmt", "bit_depth": "encode.bit_depth",
        "copy_audio": "encode.copy_audio", "copy_subtitles": "encode.copy_subtitles",
        "output_pattern": "output.pattern"}


def test_set_values_are_yaml_and_reach_any_key():
    s = parse_settings(["chunk.max_len=16", "interpolate.fps=null", "encode.codec=libx265"])
    assert s == {"chunk.max_len": 16, "interpolate.fps": None, "encode.codec": "libx265"}
    cfg = load_config("fps-x2", {**s, "chunk.min_len": 4})
    assert cfg.chunk.max_len == 16 and cfg.interpolate.fps is None and cfg.encode.codec == "libx265"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_settings(["chunk.max_len"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_settings(["chunk..max_len=3"])


@pytest.mark.parametrize("cmd", [["enhance", "{src}"], ["batch", "{src}", "--out", "{out}", "--dry-run"]])
def test_set_unknown_key_is_an_error_naming_it(capsys, tmp_path, sample_clip, cmd):
    args = [a.format(src=sample_clip, out=tmp_path / "out") for a in cmd]
    rc, _, err = run(capsys, [*args, "-o" if cmd[0] == "enhance" else "--workers",
                              str(tmp_path / "o.mp4") if cmd[0] == "enhance" else "0",
                              "--set", "chunk.maxlen=4"])
    assert rc == 2 and "chunk.maxlen" in err
    assert not (tmp_path / "o.mp4").exists()


def test_set_and_a_flag_on_the_same_key_is_a_usage_error(capsys):
    rc, _, err = run(capsys, ["enhance", "in.mp4", "--scale", "2", "--set", "upscale.scale=4"])
    assert rc == 2 and "--scale" in err and "upscale.scale" in err


def test_batch_parses_the_flags_as_enhance_does(capsys, tmp_path, sample_clip):
    # a range enhance refuses is refused by batch too, by the same parser, before any item runs
    for cmd in (["enhance", str(sample_clip)], ["batch", str(sample_clip), "--out", str(tmp_path / "b")]):
        rc, _, err = run(capsys, [*cmd, "--fps-multiplier", "17"])
        assert rc == 2 and "--fps-multiplier" in err
        rc, _, err = run(capsys, [*cmd, "--denoise", "300"])
        assert rc == 2 and "noise sigma must be between 0 and 255" in err


def test_train_set_dotted_key_into_a_mapping(tmp_path):
    from importlib.resources import files

    from restore.diffusion.trainconfig import load_train_config

    path = files("restore.configs").joinpath("train", "sr-x2-v2.yaml")
    cfg = load_train_config(str(path), {"inference.steps": 3, "patch": 128})
    assert cfg.inference["steps"] == 3 and cfg.patch == 128
    with pytest.raises(ConfigError, match="'nope.x'"):
        load_train_config(str(path), {"nope.x": 1})
    with pytest.raises(ConfigError, match="'patch.x'"):
        load_train_config(str(path), {"patch.x": 1})


def test_python_m_train_refuses_what_it_does_not_know(tmp_path):
    def m(*args):
        return subprocess.run([sys.executable, "-m", "restore.diffusion.train", *args],
                              capture_output=True, text=True, timeout=120)

    r = m("sr-x2.yaml", "--resum")
    assert r.returncode != 0 and "'--resum'" in r.stderr
    from importlib.resources import files

    path = str(files("restore.configs").joinpath("train", "sr-x2.yaml"))
    r = m(path, "--set", "patchsize=96")
    assert r.returncode != 0 and "patchsize" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("sources, val, named", [
    ("[{kind: video}]", "{}", "'sources', entry 1: needs a 'path'"),
    ("[{path: a.mp4, kind: video}, {path: b, kind: movie}]", "{}", "'sources', entry 2: unknown kind 'movie'"),
    ("[{path: a.mp4, kind: video, downsale: 2}]", "{}", "'sources', entry 1: unknown key(s) downsale"),
    ("[{path: a.mp4, kind: video, downscale: 0}]", "{}", "'downscale' must be an integer"),
    ("[{path: bank/*.mkv, kind: encoded}]", "{}", "needs 'clean'"),
    ("[{path: a.mp4, kind: video, weight: 0}]", "{}", "'weight' must be a positive number"),
    ("[a.mp4]", "{}", "'sources', entry 1: expected a mapping"),
    ("{path: a.mp4}", "{}", "'sources': expected a list"),
    ("[{path: a.mp4, kind: video}]", "{kind: frames}", "'val_source': needs a 'path'"),
    ("[{path: a.mp4, kind: video}]", "{path: v, reader: cv}", "'val_source': unknown reader 'cv'"),
])
def test_train_sources_are_checked_when_loaded(tmp_path, sources, val, named):
    from restore.diffusion.trainconfig import load_train_config

    p = tmp_path / "t.yaml"
    p.write_text(f"task: denoise\nsources: {sources}\nval_source: {val}\n")
    with pytest.raises(ConfigError) as err:
        load_train_config(p)
    assert named in str(err.value) and str(p) in str(err.value)


def test_train_sources_that_load(tmp_path):
    from restore.diffusion.trainconfig import load_train_config

    p = tmp_path / "t.yaml"
    p.write_text("sources:\n  - {path: a.mp4, kind: video, downscale: 2, reader: opencv}\n"
                 "  - {path: bank/*.mkv, kind: encoded, clean: clips, clean_downscale: 4}\n"
                 "  - {path: 'frames/*'}\nval_source: {}\n")
    assert len(load_train_config(p).sources) == 3
