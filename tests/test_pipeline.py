"""restore.enhance() end to end on small generated clips, plus presets and method selection."""
from __future__ import annotations

import json

import numpy as np
import pytest

from restore import registry
from restore.config import EnhanceConfig, builtin_configs, load_config
from restore.errors import ConfigError
from restore.io import decode, probe
from restore.pipeline import build_schedule, enhance, select_methods, wanted_tasks
from tests.media import make_clip, synthetic_frames

SMALL_CHUNKS = {"chunk.min_len": 3, "chunk.max_len": 5, "chunk.overlap": 2}


def decoded(path):
    frames = list(decode(path))
    return np.stack([f.image for f in frames]), [f.time for f in frames]


@pytest.fixture
def lossless_clip(tmp_path):
    """20 frames, 64x48, hard cut at 9, FFV1 (exact RGB round trip)."""
    frames = synthetic_frames(20, 64, 48, cuts=[9])
    return make_clip(tmp_path / "in.mkv", frames, codec="ffv1", fps=25), frames


def test_enhance_all_tasks_with_audio(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", 24, width=64, height=48, cuts=[11], audio=True)
    res = enhance(src, denoise=True, scale=2, fps_multiplier=2, model="classical")
    out = tmp_path / "clip_restored.mp4"
    assert res.output == str(out) and out.is_file()
    assert res.methods == {"denoise": "nlmeans", "upscale": "lanczos", "interpolate": "dis"}
    assert (res.frames_in, res.frames_out) == (24, 48)
    assert res.cuts == [11]
    json.dumps(res.to_dict())  # JSON-able
    info = probe(out)
    assert (info.video.width, info.video.height) == (128, 96)
    assert info.video.frame_count == 48
    assert [s.type for s in info.streams] == ["video", "audio"]
    assert abs(info.video.duration - probe(src).video.duration) < 0.05


def test_interpolation_blends_within_shots_and_repeats_at_cuts(tmp_path, lossless_clip):
    src, frames = lossless_clip
    res = enhance(src, tmp_path / "out.mkv", codec="ffv1", fps_multiplier=2, interp_method="blend",
                  **SMALL_CHUNKS)
    assert res.cuts == [9] and res.chunks >= 4  # several chunks per shot: boundaries get crossed
    out, times = decoded(res.output)
    assert len(out) == 40
    np.testing.assert_array_equal(out[0::2], frames)  # source frames untouched
    f = frames.astype(np.float64)
    for i in range(19):
        mid = out[2 * i + 1].astype(np.float64)
        if i == 8:  # the gap across the cut repeats the earlier frame
            np.testing.assert_array_equal(out[17], frames[8])
        else:
            assert np.abs(mid - (f[i] + f[i + 1]) / 2).max() <= 1.0, i
    np.testing.assert_array_equal(out[39], frames[19])  # tail: the last frame held
    np.testing.assert_allclose(times, np.arange(40) * 0.02, atol=1e-3)


def test_anchors_are_the_restored_previous_frames(tmp_path, lossless_clip, monkeypatch):
    src, frames = lossless_clip
    calls = []

    def spy_factory(options):
        def restorer(chunk, anchors=None):
            calls.append((chunk.copy(), None if anchors is None else anchors.copy()))
            return np.clip(chunk * 0.5 + 0.25, 0, 1)  # a visible change, so anchors must be outputs
        restorer.scale = 1
        return restorer

    spec = registry.MethodSpec("denoise", "spy", spy_factory, "test spy", "test")
    registry.methods()  # load the built-ins first so the spy is not overwritten
    monkeypatch.setitem(registry._REGISTRY, ("denoise", "spy"), spec)
    enhance(src, tmp_path / "out.mkv", codec="ffv1", denoise=True, denoise_method="spy", **SMALL_CHUNKS)
    expected = frames.astype(np.float32) / 255
    pos = 0
    for k, (chunk, anchors) in enumerate(calls):
        assert 3 <= len(chunk) <= 5 or pos + len(chunk) in (9, 20)
        np.testing.assert_allclose(chunk, expected[pos:pos + len(chunk)], atol=1e-6)
        if pos in (0, 9):  # first chunk and the chunk after the cut: no anchors
            assert anchors is None
        else:
            assert anchors.shape[0] == 2
            np.testing.assert_allclose(anchors, expected[pos - 2:pos] * 0.5 + 0.25, atol=1e-6)
        pos += len(chunk)
    assert pos == 20 and len(calls) >= 4


def test_variable_frame_rate_stays_variable(tmp_path):
    times = [0.0, 0.04, 0.10, 0.13, 0.20, 0.24, 0.31, 0.34, 0.40, 0.44]
    src = make_clip(tmp_path / "vfr.mp4", 10, width=64, height=48, times=times)
    res = enhance(src, tmp_path / "out.mp4", fps_multiplier=2, interp_method="blend", crf=10)
    _, out_times = decoded(res.output)
    ends = times[1:] + [times[-1] + 0.04]  # the last frame lasts the median of the last gaps
    expected = [t for a, b in zip(times, ends) for t in (a, (a + b) / 2)]
    np.testing.assert_allclose(out_times, expected, atol=1.5e-3)


@pytest.mark.parametrize("fps, count", [(50, 40), (10, 8)])
def test_fps_target_resamples_on_a_uniform_grid(tmp_path, fps, count):
    src = make_clip(tmp_path / "in.mp4", 20, width=64, height=48)
    res = enhance(src, tmp_path / "out.mp4", fps=fps, interp_method="blend")
    _, out_times = decoded(res.output)
    assert res.frames_out == len(out_times) == count
    np.testing.assert_allclose(np.diff(out_times), 1 / fps, atol=1.5e-3)
    assert res.output_fps == fps


def test_build_schedule_multiplier_and_fps():
    sched = build_schedule([0.0, 0.1, 0.2], 3, None, 10)
    assert [f for s in sched for f, _ in s] == pytest.approx([0, 1 / 3, 2 / 3] * 3)
    assert [t for s in sched for _, t in s] == pytest.approx(np.arange(9) / 30)
    sched = build_schedule([0.0, 0.1, 0.2], 1, 25.0, 10)
    assert [t for s in sched for _, t in s] == pytest.approx(np.arange(7) * 0.04)
    assert sched[0][0] == (0.0, 0.0) and sched[1][0][0] == pytest.approx(0.2)


def test_ten_bit_source_stays_ten_bit(tmp_path):
    frames = synthetic_frames(6, 64, 48, dtype=np.uint16)
    src = make_clip(tmp_path / "deep.mkv", frames, codec="libx264")
    assert probe(src).video.bit_depth == 10
    res = enhance(src, tmp_path / "out.mkv", scale=2)
    info = probe(res.output)
    assert info.video.bit_depth == 10 and (info.video.width, info.video.height) == (128, 96)
    assert next(decode(res.output)).image.dtype == np.uint16


def test_progress_callback_and_name_pattern(tmp_path):
    src = make_clip(tmp_path / "in.mp4", 12, width=64, height=48)
    seen = []
    res = enhance(src, preset="sr-x2", progress=lambda done, total: seen.append((done, total)),
                  **{"chunk.min_len": 2, "chunk.max_len": 5})
    assert res.output == str(tmp_path / "in_x2.mp4")
    assert seen[-1] == (12, 12) and len(seen) == res.chunks
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_presets_load_and_flags_override(tmp_path):
    assert set(builtin_configs()) >= {"default", "archive-vhs", "sr-x2", "sr-x4", "fps-x2"}
    assert load_config("default") == EnhanceConfig()  # default.yaml spells out the defaults
    for name in builtin_configs():
        load_config(name)
    cfg = load_config("fps-x2", {"fps": 30, "scale": 4, "crf": 20, "chunk.max_len": 12})
    assert (cfg.interpolate.multiplier, cfg.interpolate.fps) == (1, 30.0)
    assert (cfg.upscale.scale, cfg.encode.crf, cfg.chunk.max_len) == (4, 20, 12)
    cfg = load_config("archive-vhs", {"denoise": 12.5})
    assert cfg.denoise.enabled and cfg.denoise.strength == 12.5 and cfg.encode.bit_depth == 10
    assert load_config("archive-vhs", {"denoise": False}).denoise.enabled is False
    own = tmp_path / "mine.yaml"
    own.write_text("upscale: {scale: 4}\nencode: {codec: libx265, preset: slow}\n")
    cfg = load_config(str(own))
    assert cfg.upscale.scale == 4 and cfg.encode.codec == "libx265"


@pytest.mark.parametrize("text, message", [
    ("chunk: {maxlen: 3}\n", "unknown key 'chunk.maxlen'"),
    ("upscale: {scale: 3}\n", "'upscale.scale'"),
    ("encode: {crf: fast}\n", "'encode.crf'"),
    ("denoise: {enabled: 2}\n", "'denoise.enabled'"),
    ("encode: {codec: divx}\n", "'encode.codec'"),
    ("encode: {preset: turbo}\n", "'encode.preset'"),
    ("chunk: {min_len: 10, max_len: 5}\n", "'chunk.max_len'"),
    ("interpolate: {multiplier: 2, fps: 30}\n", "'interpolate.fps'"),
    ("chunk: [1, 2]\n", "'chunk'"),
    ("upscale: {scale: 2\n", "invalid YAML"),
    ("output: {pattern: '{size}.mp4'}\n", "'output.pattern'"),
])
def test_bad_preset_files_name_file_and_key(tmp_path, text, message):
    p = tmp_path / "foo.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(p))
    assert str(err.value).startswith(f"{p}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_enhance_and_batch_share_one_output_name_rule(tmp_path):
    from restore.batch.plan import output_name as batch_name
    from restore.pipeline import default_output

    p = tmp_path / "named.yaml"
    p.write_text("output: {pattern: '{name}.{task}x{scale}{ext}'}\n")
    cfg = load_config(str(p), {"scale": 2})
    out = default_output(tmp_path / "clip.mov", cfg, ["upscale"])
    assert out.name == "clip.mov.upscalex2.mov" == batch_name("clip.mov", cfg.output.pattern, task="upscale", scale=2)
    assert default_output(tmp_path / "bare", load_config("default"), []).name == "bare_restored.mkv"
    # an input container nothing here can write (MPEG-PS, VOB, FLV) gets Matroska; MPEG-TS stays
    assert default_output(tmp_path / "tape.mpg", load_config("default"), []).name == "tape_restored.mkv"
    assert default_output(tmp_path / "dvd.VOB", load_config("default"), []).name == "dvd_restored.mkv"
    assert default_output(tmp_path / "cap.ts", load_config("default"), []).name == "cap_restored.ts"
    # ... and one that cannot hold the encoder: a WebM input with libx264 (the default) gets .mkv
    assert default_output(tmp_path / "web.webm", load_config("default"), []).name == "web_restored.mkv"
    assert default_output(tmp_path / "web.webm", load_config("default", {"codec": "libsvtav1"}), []).name \
        == "web_restored.webm"
    with pytest.raises(ConfigError, match="output.pattern"):
        load_config("default", {"output_pattern": ".."})


def test_bad_overrides_and_presets():
    with pytest.raises(ConfigError, match="unknown key 'chunk.maxlen'"):
        load_config("default", {"chunk.maxlen": 4})
    with pytest.raises(ConfigError, match="unknown key 'sharpen'"):
        load_config("default", {"sharpen": 1})
    with pytest.raises(ConfigError, match="unknown config 'nope'"):
        load_config("nope")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("missing/preset.yaml")


def test_method_selection():
    cfg = load_config("default", {"denoise": True, "scale": 2, "fps_multiplier": 2, "model": "classical"})
    assert wanted_tasks(cfg) == ["denoise", "upscale", "interpolate"]
    assert {t: s.family for t, s in select_methods(cfg, wanted_tasks(cfg)).items()} == \
        {"denoise": "classical", "upscale": "classical", "interpolate": "classical"}
    cfg = load_config("default", {"denoise": True, "scale": 2, "model": "bicubic"})
    chosen = select_methods(cfg, wanted_tasks(cfg))
    assert chosen["upscale"].name == "bicubic" and chosen["denoise"].task == "denoise"
    cfg = load_config("default", {"fps_multiplier": 2, "model": "classical", "interp_method": "blend"})
    assert select_methods(cfg, ["interpolate"])["interpolate"].name == "blend"
    with pytest.raises(ConfigError, match="unknown model 'magic'"):
        select_methods(load_config("default", {"model": "magic"}), [])
    with pytest.raises(ConfigError, match="unknown upscale method"):
        select_methods(load_config("default", {"scale": 2, "upscale_method": "nlmeans"}), ["upscale"])


# ------------------------------------------------------------------------------------------
# streaming: threads, memory (issue 15)
# ------------------------------------------------------------------------------------------
def test_frames_too_large_for_memory_fail_before_any_work(tmp_path, lossless_clip, monkeypatch):
    import restore.pipeline as pipeline
    from restore.errors import RestoreError

    src, _ = lossless_clip
    monkeypatch.setattr(pipeline, "_available_memory", lambda: 60 << 20)  # 60 MiB
    with pytest.raises(RestoreError, match=r"in chunks of 32 need about .* lower chunk.max_len to \d+") as err:
        enhance(src, tmp_path / "out.mkv", scale=4, model="classical")
    assert str(src) in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(pipeline, "_available_memory", lambda: 1 << 20)
    with pytest.raises(RestoreError, match="too large for this machine"):
        enhance(src, tmp_path / "out.mkv", scale=4, model="classical")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]  # no output, no temp file


@pytest.mark.parametrize("where", ["restorer", "encoder", "decoder"])
def test_a_failure_in_any_thread_stops_the_run_cleanly(tmp_path, lossless_clip, monkeypatch, where):
    import threading

    from restore.io import encode

    src, _ = lossless_clip
    threads_before = threading.active_count()
    boom = RuntimeError(f"boom in the {where}")
    if where == "restorer":
        def spy_factory(options):
            n = [0]

            def restorer(chunk, anchors=None):
                n[0] += 1
                if n[0] == 3:
                    raise boom
                return chunk
            return restorer
        registry.methods()
        monkeypatch.setitem(registry._REGISTRY, ("denoise", "spy"),
                            registry.MethodSpec("denoise", "spy", spy_factory, "test spy", "test"))
        kw = {"denoise": True, "denoise_method": "spy"}
    elif where == "encoder":
        orig, count = encode.VideoWriter.write, [0]

        def write(self, *a, **k):
            count[0] += 1
            if count[0] == 7:
                raise boom
            return orig(self, *a, **k)
        monkeypatch.setattr(encode.VideoWriter, "write", write)
        kw = {}
    else:
        import restore.io as rio

        orig_decode = rio.decode

        def decode(path, **k):
            for n, f in enumerate(orig_decode(path, **k)):
                if n == 12 and not k:  # the second pass (full frames), mid-way
                    raise boom
                yield f
        monkeypatch.setattr(rio, "decode", decode)
        kw = {}
    with pytest.raises(RuntimeError, match=f"boom in the {where}"):
        enhance(src, tmp_path / "out.mkv", codec="ffv1", **SMALL_CHUNKS, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]  # no output, no temp file
    assert threading.active_count() == threads_before  # the pipeline's threads are gone


def test_profile_splits_model_time_from_the_rest(tmp_path, lossless_clip):
    src, _ = lossless_clip
    res = enhance(src, tmp_path / "out.mkv", codec="ffv1", denoise=True, scale=2, model="classical",
                  **SMALL_CHUNKS)
    p = res.profile
    assert p["model"] == pytest.approx(p["model_denoise"] + p["model_upscale"])
    assert p["wall"] == pytest.approx(res.seconds) and p["overhead"] == pytest.approx(p["wall"] - p["model"])
    assert {"setup", "analysis", "decode_wait", "encode_wait", "close", "encode"} <= set(p)


def test_an_mpeg_ts_capture_is_restored_into_mpeg_ts_with_its_audio(tmp_path):
    src = make_clip(tmp_path / "cap.ts", 12, width=64, height=48, audio=True, audio_codec="mp2")
    res = enhance(src, codec="libx264")
    assert res.output == str(tmp_path / "cap_restored.ts")
    info = probe(res.output)
    assert info.container == "mpegts" and [s.type for s in info.streams] == ["video", "audio"]
    assert info.video.codec == "h264"
    with pytest.raises(ConfigError, match="cannot be stored in MPEG-TS"):
        enhance(src, tmp_path / "av1.ts", codec="libsvtav1")
