"""The deblock task (issue #14): strength contract, blind estimate, pipeline order, CLI errors,
the shipped model on the bundled x264 CRF 37 clip, the bench protocols and the restore ladder.

Never needs ../shared; the model test holds for any weights of the same format (it asserts that
PSNR goes up, not by how much)."""
from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from restore import registry
from restore.cli.main import main
from restore.io import decode
from restore.methods import damage
from restore.methods.deblock import Blended, DCTDeblocker, check_strength
from restore.metrics.psnr import psnr_y
from restore.registry import MethodOptions
from tests.media import make_clip, synthetic_frames

ROOT = Path(__file__).resolve().parents[1]
CRF37_CLIP = ROOT / "tests" / "data" / "deblock" / "sample_x264_crf37.mkv"


def _reference() -> np.ndarray:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_deblock_testclip import reference
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return reference()


def _frames(path) -> np.ndarray:
    return np.stack([f.image for f in decode(path)])


def _py(a: np.ndarray, b: np.ndarray) -> float:
    return psnr_y(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:]))


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def _encode(frames: np.ndarray, codec: str, **opts) -> io.BytesIO:
    buf = io.BytesIO()
    t, h, w, _ = frames.shape
    with av.open(buf, "w", format="matroska") as out:
        st = out.add_stream(codec, rate=25)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.thread_count = 1
        st.options = {k: str(v) for k, v in opts.items()}
        for f in frames:
            out.mux(st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(st.encode())
    buf.seek(0)
    return buf


def run(capsys, args):
    rc = main(args)
    out, err = capsys.readouterr()
    return rc, out, err


# ---- strength contract ------------------------------------------------------------------------

def test_strength_zero_never_runs_the_model_and_strength_blends():
    calls = []

    def model(frames, anchors=None, **kw):
        calls.append(len(frames))
        return np.zeros_like(frames)

    x = np.random.default_rng(0).random((3, 16, 16, 3)).astype(np.float32)
    out = Blended(model, 0.0)(x)
    assert calls == [] and np.array_equal(out, x)
    half = Blended(model, 0.25)(x)
    assert calls == [3] and np.allclose(half, 0.75 * x, atol=1e-6)
    assert np.array_equal(Blended(model, 1.0)(x), np.zeros_like(x))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            check_strength(bad)


def test_dct_method_at_zero_is_the_identity_and_helps_a_crf37_clip():
    ref = _reference()
    coded = _frames(CRF37_CLIP)
    x = coded.astype(np.float32) / 255
    assert np.array_equal(DCTDeblocker(0.0)(x), x)
    out = _u8(DCTDeblocker(None)(x))  # auto from the frames' blockiness
    assert _py(ref, out) > _py(ref, coded)


# ---- the blind estimate -------------------------------------------------------------------------

def test_estimate_is_zero_when_clean_and_rises_with_the_crf():
    ref = _reference()
    strengths = {crf: damage.estimate_from_stream(_encode(ref, "libx264", crf=crf, preset="medium")).strength
                 for crf in (18, 30, 40)}
    assert strengths[18] == 0.0
    assert strengths[18] <= strengths[30] <= strengths[40]
    assert strengths[40] >= 0.8
    lossless = damage.estimate_from_stream(_encode(ref, "libx264", qp=0))
    assert lossless.strength == 0.0 and lossless.basis == "quantiser"
    est = damage.estimate_from_stream(CRF37_CLIP)
    assert est.basis == "quantiser" and est.codec == "h264" and est.strength >= 0.8
    assert "strength" in est.describe() and "QP" in est.describe()
    # MPEG-2 qscale range forced (a few frames are too short for its rate control)
    fine, coarse = (damage.estimate_from_stream(_encode(ref, "mpeg2video", qmin=lo, qmax=hi)) for lo, hi in ((2, 3), (24, 31)))
    assert fine.basis == coarse.basis == "quantiser" and fine.strength == 0.0 and coarse.strength > 0.8


def test_auto_runs_a_blind_model_fully_on_any_lossy_stream_and_never_on_a_lossless_one():
    ref = _reference()
    light = damage.estimate_from_stream(_encode(ref, "libx264", crf=18, preset="medium"))
    assert light.strength == 0.0  # the damage ramp: too light for the classical filter
    assert damage.auto_strength(light, blind=False) == 0.0
    assert damage.auto_strength(light, blind=True) == 1.0
    hevc = damage.estimate_from_stream(_encode(ref, "libx265", crf=20, preset="medium", **{"x265-params": "log-level=none"}))
    assert hevc.basis == "bitrate" and damage.auto_strength(hevc, blind=True) == 1.0
    qp0 = damage.estimate_from_stream(_encode(ref, "libx264", qp=0))
    lossless = damage.DamageEstimate(0.0, "lossless codec", codec="ffv1")
    frames_only = damage.estimate_from_frames(ref)
    for est in (qp0, lossless):
        assert damage.auto_strength(est, blind=True) == damage.auto_strength(est, blind=False) == 0.0
    # no stream, nothing says the frames are lossy: the blockiness ramp, blind or not
    assert damage.auto_strength(frames_only, blind=True) == frames_only.strength
    assert registry.get("deblock", "diffusion").blind and not registry.get("deblock", "dct").blind


def test_blockiness_sees_an_8x8_grid():
    rng = np.random.default_rng(1)
    smooth = rng.random((64, 64)).cumsum(0).cumsum(1)
    blocky = np.kron(rng.random((8, 8)) * 255, np.ones((8, 8)))
    assert damage.blockiness(smooth) < 1.1 < 2.0 < damage.blockiness(blocky + rng.random((64, 64)))


# ---- the shipped model ----------------------------------------------------------------------------

def test_shipped_model_loads_and_raises_psnr_on_the_bundled_crf37_clip():
    spec = registry.get("deblock")
    assert spec.name == "diffusion", "the deblock model is the default deblock method"
    ref = _reference()
    coded = _frames(CRF37_CLIP)
    restorer = spec.factory(MethodOptions(strength=1.0, device="cpu"))
    out = _u8(restorer(coded.astype(np.float32) / 255))
    assert out.shape == coded.shape
    assert _py(ref, out) > _py(ref, coded)


# ---- pipeline and CLI ----------------------------------------------------------------------------

def test_auto_on_a_lossless_clip_leaves_every_frame_bit_exact(tmp_path):
    import restore

    src = make_clip(tmp_path / "clean.mkv", synthetic_frames(6, 64, 48), width=64, height=48, codec="ffv1")
    logs = []
    res = restore.enhance(src, tmp_path / "out.mkv", deblock=True, codec="ffv1", log=logs.append)
    assert res.deblock["strength"] == 0.0 and res.deblock["ran"] is False
    assert "deblock" not in res.methods
    assert any("lossless codec" in m for m in logs)
    assert np.array_equal(_frames(src), _frames(res.output))


def test_auto_on_a_light_encode_runs_the_blind_model_fully_and_leaves_the_filter_off(tmp_path):
    import restore

    src = make_clip(tmp_path / "light.mp4", synthetic_frames(6, 64, 48), width=64, height=48, crf=18)
    logs = []
    res = restore.enhance(src, tmp_path / "model.mkv", deblock=True, codec="ffv1", log=logs.append)
    assert res.methods["deblock"] == "diffusion"
    assert res.deblock["strength"] == 1.0 and res.deblock["ran"] is True and res.deblock["damage"] < 1.0
    assert any("blind model on a lossy stream" in m for m in logs)
    res = restore.enhance(src, tmp_path / "dct.mkv", deblock=True, deblock_method="dct", codec="ffv1")
    assert res.deblock["strength"] == res.deblock["damage"] == 0.0 and res.deblock["ran"] is False


def test_deblock_runs_first_then_denoise_then_upscale(tmp_path, capsys):
    src = make_clip(tmp_path / "c.mp4", 6, width=64, height=48, crf=40)
    rc, out, err = run(capsys, ["enhance", str(src), "--deblock", "--denoise", "--scale", "2", "--model", "classical",
                                "--json"])
    assert rc == 0, err
    res = json.loads(out)
    assert list(res["methods"]) == ["deblock", "denoise", "upscale"]
    assert res["methods"]["deblock"] == "dct" and res["deblock"]["auto"] and res["deblock"]["strength"] > 0
    assert (res["width"], res["height"]) == (128, 96)


def test_stage_order_inside_the_chunk_runner():
    from restore.chunks import THUMB_SIZE, Analyser, CutDetector, plan_chunks
    from restore.pipeline.runner import ChunkRunner

    seen = []

    def stage(name, scale=1):
        def fn(frames, anchors=None):
            seen.append((name, frames.shape[1]))
            return frames.repeat(scale, 1).repeat(scale, 2)
        return fn

    analyser = Analyser(CutDetector(15.0, 3.0, 8))
    for i in range(4):
        analyser.add(np.full((THUMB_SIZE[1], THUMB_SIZE[0]), 100, np.uint8), i == 0)
    plan = plan_chunks(analyser.result(), 1, 4, 0)
    emitted = []
    runner = ChunkRunner(plan, stage("denoise"), stage("upscale", 2), None,
                          [[(0.0, float(i))] for i in range(4)], lambda img, t: emitted.append(img.shape),
                          deblocker=stage("deblock"))
    runner.run(plan.chunks[0], np.zeros((4, 8, 8, 3), np.float32))
    runner.finish()
    assert seen == [("deblock", 8), ("denoise", 8), ("upscale", 8)]
    assert emitted == [(16, 16, 3)] * 4


@pytest.mark.parametrize("args,message", [
    (["--deblock", "2"], "deblock strength must be between 0 and 1, got 2"),
    (["--deblock", "-0.5"], "deblock strength must be between 0 and 1, got -0.5"),
    (["--deblock", "strong"], "is not a strength"),
    (["--deblock=nan"], "deblock strength must be between 0 and 1"),
])
def test_bad_strength_is_a_one_line_error(tmp_path, capsys, args, message):
    src = make_clip(tmp_path / "c.mp4", 2, width=32, height=32)
    rc, out, err = run(capsys, ["enhance", str(src), *args])
    assert rc == 2 and message in err and "Traceback" not in err
    assert not list(tmp_path.glob("c_*"))


def test_bad_strength_in_a_preset_names_the_file_and_key(tmp_path, capsys):
    src = make_clip(tmp_path / "c.mp4", 2, width=32, height=32)
    preset = tmp_path / "mine.yaml"
    preset.write_text("deblock:\n  enabled: true\n  strength: 3\n")
    rc, out, err = run(capsys, ["enhance", str(src), "-c", str(preset)])
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc != 0 and len(lines) == 1 and str(preset) in lines[0] and "deblock.strength" in lines[0]


def test_presets_and_models_list_the_task(capsys):
    from restore.config import load_config

    assert load_config("archive-vhs").deblock.enabled and load_config("archive-vhs").deblock.strength is None
    cfg = load_config("default", {"deblock": 0.4})
    assert cfg.deblock.enabled and cfg.deblock.strength == 0.4
    rc, out, _ = run(capsys, ["models", "--json"])
    rows = [r for r in json.loads(out) if r["task"] == "deblock"]
    assert {r["name"] for r in rows} >= {"dct", "diffusion"} and any(r["default"] for r in rows)


# ---- degradations ---------------------------------------------------------------------------------

def test_codec_degradation_is_reproducible_for_a_seed():
    from restore.diffusion.degradations import build_chain

    import torch

    # 96 px: x265 itself is not deterministic on frames as small as one 64x64 CTU
    clip = torch.from_numpy(synthetic_frames(4, 96, 96).astype(np.float32) / 255).permute(0, 3, 1, 2)
    chain = build_chain([{"name": "codec", "codecs": ["libx264", "libx265", "mpeg2video", "mpeg4"], "crf": [25, 45]},
                         {"name": "quantize"}])
    for seed in range(4):
        a, sa = chain(clip, np.random.default_rng(seed))
        b, sb = chain(clip, np.random.default_rng(seed))
        assert sa == sb and torch.equal(a, b)
    codecs = {chain(clip, np.random.default_rng(s))[1]["codec"].split()[0] for s in range(12)}
    assert len(codecs) >= 3


# ---- bench and compare ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    import cv2

    root = tmp_path_factory.mktemp("deblock-val")
    for name, seed in (("a", 0), ("b", 1)):
        for i, f in enumerate(synthetic_frames(4, 64, 48, seed=seed)):
            d = root / "frames" / name
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{i:05d}.png"), f[..., ::-1])
    return root


def test_bench_deblock_tasks_with_an_input_row_and_no_harm_when_clean(clip_dir, tmp_path):
    from restore.eval.bench import run_bench
    from restore.eval.methods import DEBLOCK_TASKS, parse_tasks
    from restore.eval.peers.ffmpeg import ffmpeg_peers, ffmpeg_path

    assert [t.name for t in parse_tasks("deblock")] == list(DEBLOCK_TASKS)
    peers = [p for p in ffmpeg_peers() if p.name == "spp"] if ffmpeg_path() else []
    res = run_bench([clip_dir], "deblock-x264crf18,deblock-x264crf40", frames=4,
                    methods=["dct"] + [p.name for p in peers], out=tmp_path / "b", device="cpu", lpips=False,
                    peers=peers, tuning_cache=tmp_path / "t.json", log=lambda m: None)
    clean = res["tasks"]["deblock-x264crf18"]["datasets"][0]
    assert clean["auto"]["strength"] == 0.0
    assert clean["methods"]["dct"]["psnr_y"] == clean["input"]["psnr_y"]  # strength 0: untouched
    hard = res["tasks"]["deblock-x264crf40"]["datasets"][0]
    assert hard["auto"]["strength"] > 0.5 and hard["input"]["psnr_y"] < clean["input"]["psnr_y"]
    for key in ("psnr_y", "psnr_rgb", "ssim"):
        assert key in hard["methods"]["dct"]
    if peers:
        assert "other clip" in hard["methods"]["spp"]["params"]["tuned on"]
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "input (decoded)" in md and "Estimate from the stream" in md


def test_compare_restore_ladder_reports_a_bd_rate(tmp_path, capsys):
    src = make_clip(tmp_path / "ref.mkv", synthetic_frames(4, 64, 48), width=64, height=48, codec="ffv1")
    rc, out, err = run(capsys, ["compare", str(src), "--restore-ladder", "libx264:30,35,40,45", "--deblock", "0.8",
                                "--deblock-method", "dct", "--json"])
    assert rc == 0, err
    res = json.loads(out)
    curves = {p["label"] for p in res["points"]}
    assert curves == {"libx264", "libx264+deblock"}
    rates = {lab: sorted(p["kbps"] for p in res["points"] if p["label"] == lab) for lab in curves}
    assert rates["libx264"] == rates["libx264+deblock"]  # restoration costs no bits
    bd = [b for b in res["bd"] if b["metric"] == "psnr"]
    assert bd and bd[0]["test"] == "libx264+deblock" and bd[0]["anchor"] == "libx264"
    rc, _, err = run(capsys, ["compare", str(src), "--deblock"])
    assert rc != 0 and "--restore-ladder" in err and "Traceback" not in err


def test_the_models_fusion_is_kept_in_the_share_of_the_streams_damage():
    """The learned fusion of restored neighbours averages detail away on light encodes: the
    registry keeps its change in the share of the damage the caller read from the stream. Trained
    with an LPIPS term, it must leave the picture less damaged to the eye than the model alone
    (on this small clip its squared error stays where the model's is, above the input's)."""
    from restore.diffusion.fusenet import FuseNet
    from restore.metrics.lpips_metric import LPIPS

    spec = registry.get("deblock")
    coded = _frames(CRF37_CLIP).astype(np.float32) / 255
    none, half, full = (spec.factory(MethodOptions(strength=1.0, extra={"damage": d})) for d in (0.0, 0.5, 1.0))
    net = full.restorer.fuse_net
    assert isinstance(net, FuseNet) and net.level == 20.0 and net.warp == "cubic"
    a, b, c = (np.asarray(r(coded)) for r in (none, half, full))
    np.testing.assert_allclose(b, (a + c) / 2, atol=1e-5)
    ref = _reference()
    lpips = LPIPS("cpu")
    assert lpips(_u8(c), ref).mean() < lpips(_u8(a), ref).mean() - 0.002
    assert _py(ref, _u8(c)) > _py(ref, _u8(coded)) + 0.05


def test_bench_gives_the_deblock_methods_the_streams_damage(monkeypatch):
    from restore.eval.methods import parse_task, registry_candidates
    from restore.registry import MethodSpec

    seen = []
    fake = MethodSpec("deblock", "probe", lambda opts: seen.append(opts) or (lambda f, *a, **k: f),
                      "records its options", "diffusion", blind=True)
    monkeypatch.setattr(registry, "methods", lambda kind: [fake])
    est = damage.DamageEstimate(strength=0.4, basis="quantiser", codec="h264", qp=31.0)
    for cand in registry_candidates(parse_task("deblock-x264crf30"), "cpu", deblock_estimate=est):
        cand.make()
    assert [o.extra.get("damage") for o in seen] == [0.4]  # and the blind model's auto strength 1
    assert seen[0].strength == 1.0
