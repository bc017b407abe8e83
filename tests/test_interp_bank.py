"""Interpolation training from a bank of whole-frame flow hints, phases started from weights,
the LPIPS training loss, and the corpus packing used to move training data to a GPU machine."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from restore.diffusion import checkpoint
from restore.diffusion.bank import TripletBank, bank_batch
from restore.diffusion.data import Sequence
from restore.diffusion.trainconfig import load_train_config
from restore.metrics import psnr as P


def _moving(n=9, size=96, speed=3, seed=0) -> np.ndarray:
    """A textured image translating `speed` px per frame: flow can explain every middle frame."""
    rng = np.random.default_rng(seed)
    big = cv2.GaussianBlur((rng.random((size, size + n * speed + 8, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    return np.stack([big[:, i * speed:i * speed + size] for i in range(n)])


def _psnr(a, b) -> float:
    return P.psnr(a.detach().cpu().numpy(), b.detach().cpu().numpy(), peak=2.0)  # [-1, 1] data


@pytest.fixture(scope="module")
def bank():
    return TripletBank([Sequence("pan", _moving()), Sequence("still", _moving()[:1], still=True)],
                       strides=(2, 3), workers=1, log=lambda *_: None)


def test_bank_chunks_pair_the_right_frames(bank):
    assert len(bank.entries) == 1  # the still is skipped: it has no motion of its own
    rng = np.random.default_rng(0)
    for _ in range(12):
        cond, est, x0 = bank.chunk(frames=2, patch=64, rng=rng)
        assert cond.shape == (2, 13, 64, 64) and est.shape == x0.shape == (2, 3, 64, 64)
        assert -1 <= float(cond.min()) and float(cond.max()) <= 1
        t = (float(cond[0, 12, 0, 0]) + 1) / 2
        assert min(abs(t - v) for v in (1 / 3, 1 / 2, 2 / 3)) < 1e-6
        # Whatever the flips, transposes and time reversal, the warps and the blend are estimates
        # of this target, and much better ones than either neighbour (3-9 px away).
        for hint in (cond[:, 6:9], cond[:, 9:12], est):
            assert _psnr(hint, x0) > 28
        assert _psnr(cond[:, 0:3], x0) < _psnr(est, x0) - 5
        assert (cond[:, 12] == cond[0, 12, 0, 0]).all()


def test_bank_batch_matches_the_training_batch_layout(bank, tmp_path):
    cfg = load_train_config(_cfg(tmp_path))
    batch = bank_batch(bank, cfg, np.random.default_rng(1))
    assert batch["x0"].shape == (2, 2, 3, 64, 64)
    assert batch["cond"].shape == (2, 2, 17, 64, 64)  # 13 task channels + anchor + mask
    assert batch["sigma_s"].shape == (2,) and batch["loss_mask"].shape == (2, 2)
    noise = (batch["start"] - batch["estimate"]) / batch["sigma_s"].view(-1, 1, 1, 1, 1)
    assert 0.8 < float(noise.std()) < 1.2


def _cfg(tmp_path, **extra) -> str:
    frames = tmp_path / "frames" / "pan"
    frames.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(_moving(n=8, size=72)):
        cv2.imwrite(str(frames / f"{i:05d}.png"), f[..., ::-1])
    p = tmp_path / "cfg.yaml"
    text = ("task: interp\nname: tiny-interp\n"
            f"out_dir: {tmp_path / 'run'}\n"
            f"sources: [{{path: '{tmp_path / 'frames' / '*'}', kind: frames}}]\n"
            "channels: [16, 32]\nframes: 2\npatch: 64\nbatch: 2\niters: 3\nlog_every: 1\n"
            "interp_bank: true\nbank_workers: 1\nthreads: 1\nloss: l2\n")
    p.write_text(text + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return str(p)


def test_interp_training_from_the_bank_and_a_phase_started_from_weights(tmp_path):
    from restore.diffusion.train import train

    stem = train(load_train_config(_cfg(tmp_path)), log=lambda *_: None)
    _, meta = checkpoint.load(stem)
    assert meta["step"] == 3 and meta["history"][0]["interp_bank"] is True
    assert meta["history"][0]["device"].startswith("cpu")
    # A new run started from those weights (another machine, a new schedule) continues the step
    # count and the history, and starts from the same network.
    cfg2 = load_train_config(_cfg(tmp_path), {"out_dir": str(tmp_path / "run2"), "iters": 2,
                                              "init_weights": str(stem), "lr": 0.0})
    stem2 = train(cfg2, log=lambda *_: None)
    m1, _ = checkpoint.load(stem)
    m2, meta2 = checkpoint.load(stem2)
    assert meta2["step"] == 5
    assert [h["steps"] for h in meta2["history"]] == [[0, 3], [3, 5]]
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.allclose(a, b), k  # lr 0: nothing moved


def test_lpips_training_loss_has_gradients():
    from restore.metrics.lpips_metric import LPIPS, load_lpips

    fn = load_lpips("cpu")
    rng = np.random.default_rng(0)
    a = rng.random((2, 32, 32, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype(np.float32)
    ta = torch.from_numpy(a).permute(0, 3, 1, 2) * 2 - 1
    tb = (torch.from_numpy(b).permute(0, 3, 1, 2) * 2 - 1).requires_grad_(True)
    d = fn(ta, tb)
    d.sum().backward()
    assert tb.grad is not None and float(tb.grad.abs().sum()) > 0
    # The same distance as the metric we report.
    np.testing.assert_allclose(d.detach().numpy(), LPIPS("cpu")(a, b), rtol=1e-4, atol=1e-5)


def test_packed_corpus_round_trip_and_no_silent_decoder_fallback(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from pack_corpus import write_mp4

    from restore.diffusion.data import _read_video
    from restore.errors import ConfigError

    clip = _moving(n=6, size=64)
    psnr = write_mp4(str(tmp_path / "c.mp4"), clip, crf=17)
    assert psnr > 35
    via_av = _read_video(str(tmp_path / "c.mp4"), 1, 100)
    assert via_av.shape == clip.shape
    assert P.psnr(via_av, clip) > 30  # the same pictures, through a lossy encode
    monkeypatch.setitem(sys.modules, "restore.io", None)  # as if PyAV could not be imported
    with pytest.raises(ConfigError, match="needs PyAV"):
        _read_video(str(tmp_path / "c.mp4"), 1, 100)
    # a machine without PyAV names OpenCV as its reader in the config, and gets the same pictures
    via_cv = _read_video(str(tmp_path / "c.mp4"), 1, 100, reader="opencv")
    assert via_cv.shape == clip.shape and P.psnr(via_cv, via_av) > 40


def test_init_weights_errors_name_the_key(tmp_path):
    from restore.diffusion.train import train
    from restore.errors import ConfigError

    with pytest.raises(ConfigError, match="init_weights.*not found"):
        train(load_train_config(_cfg(tmp_path), {"init_weights": str(tmp_path / "nope")}), log=lambda *_: None)
    stem = train(load_train_config(_cfg(tmp_path), {"iters": 1}), log=lambda *_: None)
    with pytest.raises(ConfigError, match="init_weights.*does not fit"):
        train(load_train_config(_cfg(tmp_path), {"init_weights": str(stem), "channels": [16, 32, 64],
                                                 "out_dir": str(tmp_path / "run2")}), log=lambda *_: None)


def test_train_data_folders_frames_photos_and_an_interp_bank_without_motion(tmp_path, capsys):
    from restore.cli.main import main
    from restore.cli.train import _source_for
    from restore.diffusion.data import load_sources

    seq = tmp_path / "vimeo"
    seq.mkdir()
    for i, f in enumerate(_moving(n=7, size=64)):  # Vimeo-90K's naming: im1.png ... im7.png
        cv2.imwrite(str(seq / f"im{i + 1}.png"), f)
    assert _source_for(str(seq)) == {"path": str(seq), "kind": "frames"}
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate((64, 80, 72)):  # BSD100's naming: numbered, but photos of any size
        cv2.imwrite(str(photos / f"img_{i + 1:03d}.png"), np.full((size, size, 3), 40 * i, np.uint8))
    seqs = load_sources([_source_for(str(photos))])
    assert len(seqs) == 3 and all(s.still for s in seqs)
    rc = main(["train", "--config", "interp-x2", "--data", str(photos), "--out-dir", str(tmp_path / "run"),
               "--iters", "1", "--set", "patch=64", "--set", "val_source={}", "--set", "bank_workers=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "interp_bank" in err[-1] and "Traceback" not in "".join(err)
