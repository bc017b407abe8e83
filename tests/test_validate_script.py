"""The validation harness (scripts/validate_models.py) on tiny synthetic data.

Covers the harness, not the models: each section runs with classical methods (and classical
stand-ins for the diffusion models in the steps sweep and E_warp), so no weights and no
../shared data are needed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from validation import data as vdata  # noqa: E402
from validation import report, sections, tuning  # noqa: E402
from validation.ffmpeg_peers import FFMPEG  # noqa: E402
from validation.methods import interpolator, registry_restorer, spatial  # noqa: E402
from validation.scoring import LPIPSMeter  # noqa: E402

from restore.registry import MethodOptions  # noqa: E402


def _clip(n=6, h=64, w=64, seed=0, shift=1):
    """Smooth textured frames translating `shift` px per frame (uint8)."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 8 + 4, w // 8 + 4 + n, 3)).astype(np.float32)
    import cv2

    big = cv2.resize(base, ((w // 8 + 4 + n) * 8, (h // 8 + 4) * 8), interpolation=cv2.INTER_CUBIC)
    frames = [big[8:8 + h, 8 + i * shift:8 + i * shift + w] for i in range(n)]
    return np.clip(np.rint(np.stack(frames) * 255), 0, 255).astype(np.uint8)


class ClassicalModels:
    """Stand-in for the diffusion models: classical methods behind the same interface. `steps`
    selects nothing real; it only changes the OpenCV strength so the sweep sees distinct rows."""

    def denoise(self, sigma, steps=None):
        return spatial(registry_restorer("denoise", "nlmeans", MethodOptions(strength=sigma if steps is None else sigma * steps / 2)))

    def upscale(self, scale, steps=None):
        return spatial(registry_restorer("upscale", "bicubic", MethodOptions(scale=scale)))

    def interpolate(self, steps=None):
        return interpolator(registry_restorer("interpolate", "blend", MethodOptions()))

    def default_steps(self, task, scale=1):
        return 2


@pytest.fixture(scope="module")
def lpips_meter():
    return LPIPSMeter("cpu")  # built once: loading AlexNet is the slowest step here


@pytest.fixture
def ctx(tmp_path, lpips_meter):
    return sections.Context(device="cpu", cache=tuning.TuningCache(tmp_path / "tuning.json"),
                            log=lambda msg: None, lpips=lpips_meter)


def test_noise_and_bi_protocols():
    clean = _clip(4)
    a = vdata.add_noise(clean, 25)
    assert a.dtype == np.uint8 and a.shape == clean.shape
    assert np.array_equal(a[:2], vdata.add_noise(clean[:2], 25)), "a prefix of the clip gets the same noise"
    assert not np.array_equal(a, vdata.add_noise(clean, 25, seed=vdata.TUNE_SEED))
    resid = a.astype(np.float64) - clean
    assert 22 < resid.std() < 27  # clipping at 0/255 trims a little
    odd = np.zeros((3, 66, 70, 3), np.uint8)
    hr = vdata.crop_to_multiple(odd, 4)
    assert hr.shape == (3, 64, 68, 3)
    lr = vdata.bi_downscale(hr, 4)
    assert lr.shape == (3, 16, 17, 3) and lr.dtype == np.uint8
    with pytest.raises(ValueError):
        vdata.bi_downscale(odd, 4)


def test_search_log_finds_the_peak_and_extends_past_edges():
    calls = []

    def f(v):
        calls.append(v)
        return -(np.log(v) - np.log(37.0)) ** 2

    best, tried = tuning.search_log(f, guess=3.0, lo=0.5, hi=1000)
    assert abs(np.log(best / 37.0)) <= np.log(2 ** 0.125) + 1e-9
    assert len(calls) == len(set(calls)) == len(tried) <= 14


def test_tuning_cache_round_trip(tmp_path):
    path = tmp_path / "c.json"
    cache = tuning.TuningCache(path)
    recipe = {"frames": [0, 3]}
    n = []
    entry = tuning.tune("p", 25, lambda v: (n.append(v), -abs(v - 10))[1], guess=10, lo=1, hi=100,
                        recipe=recipe, cache=cache, log=lambda m: None)
    assert entry["value"] == pytest.approx(10) and n
    calls = len(n)
    again = tuning.tune("p", 25, lambda v: n.append(v), guess=10, lo=1, hi=100, recipe=recipe,
                        cache=tuning.TuningCache(path), log=lambda m: None)
    assert again["value"] == entry["value"] and len(n) == calls, "cache hit must not evaluate"
    other = tuning.tune("p", 25, lambda v: -abs(v - 20), guess=10, lo=1, hi=100, recipe={"frames": [1, 4]},
                        cache=tuning.TuningCache(path), log=lambda m: None)
    assert other["value"] != entry["value"]
    assert len(json.loads(path.read_text())) == 2, "entries of other recipes are kept side by side"


@pytest.mark.skipif(not Path(FFMPEG).exists(), reason="ffmpeg not installed")
def test_denoise_section_with_tuned_ffmpeg_peer(ctx):
    clean = _clip(5)
    res = sections.denoise_section(clean, [25.0], ["hqdn3d"], ctx, models=ClassicalModels(), clip="synthetic")
    row = res["sigma25"]
    peer = row["methods"]["hqdn3d (ffmpeg)"]
    # the setting used is the best of what was tried, and it denoises
    tried = peer["tuning"]["tried"]
    assert len(tried) >= 5
    assert peer["params"]["luma_spatial"] == pytest.approx(float(max(tried, key=tried.get)))
    assert peer["tuning"]["psnr"] == max(tried.values())
    assert peer["psnr"] > row["input"]["psnr"] + 1
    assert row["methods"]["diffusion"]["psnr"] > row["input"]["psnr"] + 1
    for m in row["methods"].values():
        assert len(m["frames"]) == 5 and 0 <= m["lpips"] < 1 and 0 < m["ssim"] <= 1
    assert set(row["bar"]) >= {"pass", "psnr_margin", "lpips_margin"}
    # a second run reads the cache instead of tuning again
    logs: list[str] = []
    ctx.log = logs.append
    sections.denoise_section(clean, [25.0], ["hqdn3d"], ctx, clip="synthetic")
    assert any("cached" in m for m in logs)


def test_sr_and_interp_sections(ctx):
    clips = {"clip": ("sequence", [_clip(3, 64, 64)]), "images": ("images", [_clip(1, 64, 72, seed=3)])}
    res = sections.sr_section(clips, [2], ctx, models=ClassicalModels(), classical=("lanczos",))
    e = res["x2/clip"]
    # the stand-in "diffusion" is bicubic: compare it with lanczos on the same LR input
    assert set(e["methods"]) == {"diffusion", "lanczos"}
    for m in e["methods"].values():
        assert m["psnr_y"] > 20 and m["psnr"] > 20 and m["n"] == 3
    assert res["x2/images"]["methods"]["lanczos"]["aggregation"] == "images"

    f0, f2 = _clip(3, shift=2)[[0, 2]]
    mid = _clip(3, shift=2)[1]
    trip = [vdata.Triplet("a", f0, f2, mid)]
    ir = sections.interp_section(trip, ctx, models=None, classical=("blend",))["triplets"]
    assert ir["methods"]["blend"]["psnr"] > 15 and "bar" not in ir


def test_quality_bar_margins():
    methods = {"diffusion": {"family": "diffusion", "psnr": 30.0, "lpips": 0.20},
               "a": {"family": "classical", "psnr": 29.0, "lpips": 0.25},
               "b": {"family": "classical", "psnr": 30.5, "lpips": 0.30}}
    bar = report.quality_bar(methods, "psnr")
    assert not bar["pass"] and bar["best_psnr"] == "b" and bar["psnr_margin"] == pytest.approx(-0.5)
    assert bar["lpips_ok"] and bar["lpips_margin"] == pytest.approx(0.05) and bar["best_lpips"] == "a"
    methods["b"]["psnr"] = 29.5
    assert report.quality_bar(methods, "psnr")["pass"]


def test_sweep_ewarp_and_report(ctx):
    clean = _clip(4)
    models = ClassicalModels()
    trip = [vdata.Triplet("t", *_clip(3)[[0, 2, 1]])]
    sweep = sections.sweep_section(ctx, models, clean_u8=clean, triplets=trip, steps=(1, 2), scales=(2,))
    assert set(sweep) == {"denoise sigma 25", "sr x2", "interp x2"}
    assert set(sweep["denoise sigma 25"]["steps"]) == {"1", "2"}
    # after retraining some models, the sweep can be redone for them alone
    only = sections.sweep_section(ctx, models, clean_u8=clean, triplets=None, steps=(1,), scales=(), denoise=True)
    assert set(only) == {"denoise sigma 25"}
    ew = sections.ewarp_section(clean, ctx, models, scale=2)
    for e in ew.values():
        assert e["joint"]["pairs"] == e["frame_by_frame"]["pairs"] == 3 and e["joint"]["ewarp"] > 0
    # a per-frame method (bicubic) gives the same output either way; a temporal one (5-frame NL-means) does not
    assert ew["sr x2"]["joint"]["ewarp"] == ew["sr x2"]["frame_by_frame"]["ewarp"]
    assert ew["denoise sigma 25"]["joint"]["ewarp"] != ew["denoise sigma 25"]["frame_by_frame"]["ewarp"]
    results = {"denoise": sections.denoise_section(clean[:3], [15.0], ["nlmeans"], ctx, models=models),
               "sweep": sweep, "ewarp": ew, "timing": {"sweep": 1.0}}
    text = report.render(results, {"command": "python scripts/validate_models.py --frames 3", "peers": {}})
    assert "--frames 3" in text and "## Steps sweep" in text and "## Temporal consistency" in text
    assert "| nlmeans (OpenCV) | strength" in text and "Quality bar" in text


def test_caches_shared_by_partial_runs_keep_each_others_entries(tmp_path):
    from validation.tuning import TuningCache

    a, b = sections.RowCache(tmp_path / "rows.json"), sections.RowCache(tmp_path / "rows.json")
    a.get_or_run("x", lambda: {"psnr": 1.0})
    b.get_or_run("y", lambda: {"psnr": 2.0})  # b was opened before a wrote
    assert set(sections.RowCache(tmp_path / "rows.json").rows) == {"x", "y"}
    t1, t2 = TuningCache(tmp_path / "tune.json"), TuningCache(tmp_path / "tune.json")
    t1.put("bm3d", 15, {"r": 1}, {"value": 1.0})
    t2.put("bm3d", 25, {"r": 1}, {"value": 2.0})
    fresh = TuningCache(tmp_path / "tune.json")
    assert fresh.get("bm3d", 15, {"r": 1})["value"] == 1.0 and fresh.get("bm3d", 25, {"r": 1})["value"] == 2.0
