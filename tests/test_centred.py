"""Centred, motion-aligned windows (restore/diffusion/centred.py) and the denoiser that uses them."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from restore.diffusion.centred import CentredWindows

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.mp4"
STEP = (4, 2)  # the pan, pixels per frame (x, y)


@pytest.fixture(scope="module")
def pan() -> np.ndarray:
    """Five 128x160 crops of a real frame, each 4 px right and 2 px down of the last: the scene
    moves by (-4, -2) px per frame, whole pixels, so the exact alignment is known."""
    with av.open(str(SAMPLE)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32) / 255
    return np.stack([frame[40 + i * STEP[1]:168 + i * STEP[1], 60 + i * STEP[0]:220 + i * STEP[0]]
                     for i in range(5)])


def test_spans_shift_inward_at_the_ends():
    frames = np.zeros((5, 64, 64, 3), np.float32)
    w = CentredWindows(frames, 1)
    assert [list(w.span(i)) for i in range(5)] == [[0, 1, 2], [0, 1, 2], [1, 2, 3], [2, 3, 4], [2, 3, 4]]
    assert list(CentredWindows(frames[:2], 1).span(1)) == [0, 1]
    assert list(CentredWindows(frames[:1], 2).span(0)) == [0]


def test_neighbours_are_warped_onto_the_centre(pan):
    inner = (slice(16, -16), slice(16, -16))
    windows = CentredWindows(pan, 1)
    for i, win, pos in windows:
        assert win.shape == (3,) + pan.shape[1:]
        np.testing.assert_array_equal(win[pos], pan[i])
        for k, j in enumerate(windows.span(i)):
            if j == i:
                continue
            raw = np.abs(pan[i] - pan[j])[inner].mean()
            aligned = np.abs(pan[i] - win[k])[inner].mean()
            # whole-pixel motion and nearest sampling: the aligned neighbour is the centre frame
            assert aligned < 0.1 * raw, (i, k, aligned, raw)


def test_flow_is_full_size_and_follows_the_pan(pan):
    w = CentredWindows(pan, 1)
    f = w.flow(2, 3)  # frame 2(x) ~ frame 3(x + f): the scene moved by -STEP
    assert f.shape == pan.shape[1:3] + (2,)
    med = np.median(f[16:-16, 16:-16].reshape(-1, 2), axis=0)
    np.testing.assert_allclose(med, [-STEP[0], -STEP[1]], atol=0.5)


def test_aligned_denoiser_beats_raw_windows_on_a_pan(pan):
    from restore.diffusion import zoo
    from restore.diffusion.degrade import add_noise
    from restore.diffusion.restorers import DiffusionDenoiser

    model, meta = zoo.load("denoise", "cpu", "fp32")
    clean = pan
    noisy = add_noise(np.rint(clean * 255).astype(np.uint8), 25).astype(np.float32) / 255

    def psnr(out):
        return 10 * np.log10(1 / np.mean((out[:, 8:-8, 8:-8] - clean[:, 8:-8, 8:-8]) ** 2))

    raw = psnr(DiffusionDenoiser(model, meta, sigma255=25, align_radius=0, fuse=0)(noisy))
    aligned = psnr(DiffusionDenoiser(model, meta, sigma255=25, align_radius=1)(noisy))
    assert aligned > raw + 0.2, (aligned, raw)


def test_fusion_averages_agreeing_slots_and_drops_the_rest():
    import torch

    from restore.diffusion.centred import fuse_slots

    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 32, 32, generator=g)
    noisy = truth + 0.05 * torch.randn(3, 3, 32, 32, generator=g)  # three estimates of one frame
    fused = fuse_slots(noisy, 1, sigma=1.0, scale=100.0)  # tau far above their disagreement
    assert torch.allclose(fused, noisy.mean(0), atol=1e-4)
    assert torch.equal(fuse_slots(noisy, 1, sigma=1.0, scale=0), noisy[1])
    # a slot where the flow failed (another picture) gets no weight
    wrong = torch.stack([noisy[0], noisy[1], torch.rand(3, 32, 32, generator=g)])
    fused = fuse_slots(wrong, 1, sigma=0.25, scale=0.2)
    assert torch.allclose(fused, fuse_slots(noisy[:2], 1, sigma=0.25, scale=0.2), atol=1e-4)
    assert not torch.allclose(fused, noisy[1], atol=1e-3)


# aligned windows (their restored slots fused, centred.fuse_slots) and the chunk-joint windows
# (their restored frames fused along the motion, centred.fuse_restored)
@pytest.mark.parametrize("model_name, sigma, margin", [("denoise-aligned", 50, 0.1), ("denoise", 25, 0.2)])
def test_fusing_the_restored_neighbours_beats_each_frame_alone(pan, model_name, sigma, margin):
    from restore.diffusion import zoo
    from restore.diffusion.degrade import add_noise
    from restore.diffusion.restorers import DiffusionDenoiser

    model, meta = zoo.load(model_name, "cpu", "fp32")
    noisy = add_noise(np.rint(pan * 255).astype(np.uint8), sigma).astype(np.float32) / 255

    def psnr(out):
        return 10 * np.log10(1 / np.mean((out[:, 8:-8, 8:-8] - pan[:, 8:-8, 8:-8]) ** 2))

    alone = psnr(DiffusionDenoiser(model, meta, sigma255=sigma, fuse=0)(noisy))
    fused = psnr(DiffusionDenoiser(model, meta, sigma255=sigma)(noisy))
    assert fused > alone + margin, (fused, alone)


def test_the_checkpoints_inference_block_sets_the_fusion_and_an_argument_overrides_it(pan):
    from restore.diffusion import zoo
    from restore.diffusion.degrade import add_noise
    from restore.diffusion.restorers import DiffusionDenoiser

    model, meta = zoo.load("denoise", "cpu", "fp32")
    off = {**meta, "inference": {**meta["inference"], "fuse": 0.0}}
    noisy = add_noise(np.rint(pan[:3] * 255).astype(np.uint8), 25).astype(np.float32) / 255
    alone = DiffusionDenoiser(model, meta, sigma255=25, fuse=0)(noisy)
    np.testing.assert_array_equal(DiffusionDenoiser(model, off, sigma255=25)(noisy), alone)
    assert not np.array_equal(DiffusionDenoiser(model, off, sigma255=25, fuse=0.4)(noisy), alone)


def test_noise_scale_tells_the_network_less_noise_and_the_fusion_all_of_it(pan):
    from restore.diffusion import zoo
    from restore.diffusion.degrade import add_noise
    from restore.diffusion.restorers import DiffusionDenoiser

    model, meta = zoo.load("denoise", "cpu", "fp32")
    inf = {k: v for k, v in meta["inference"].items() if k not in ("noise_scale", "fuse")}
    half = {**meta, "inference": {**inf, "noise_scale": 0.5}}
    noisy = add_noise(np.rint(pan[:3] * 255).astype(np.uint8), 30).astype(np.float32) / 255
    # the network at sigma 15 and the fusion's tau at 0.4 x 30 = 0.8 x 15
    told_half = DiffusionDenoiser(model, half, sigma255=30)(noisy)
    np.testing.assert_allclose(told_half, DiffusionDenoiser(model, half, sigma255=15, fuse=0.8, noise_scale=1)(noisy),
                               atol=1e-6)
    assert np.abs(told_half - DiffusionDenoiser(model, half, sigma255=30, noise_scale=1)(noisy)).mean() > 1e-3


def test_noise_scale_table_is_read_at_the_inputs_level(pan):
    from restore.diffusion import zoo
    from restore.diffusion.degrade import add_noise
    from restore.diffusion.restorers import DiffusionDenoiser, noise_scale_at

    table = [[35, 0.9], [15, 0.5]]  # unsorted on purpose
    assert noise_scale_at(table, 10) == 0.5 and noise_scale_at(table, 60) == 0.9
    assert noise_scale_at(table, 25) == pytest.approx(0.7)
    assert noise_scale_at(0.95, 50) == 0.95
    for bad in ([], [[15]], "0.9", [[15, "x"]]):
        with pytest.raises(ValueError, match="noise_scale"):
            noise_scale_at(bad, 15)
    model, meta = zoo.load("denoise", "cpu", "fp32")
    with pytest.raises(ValueError, match="noise_scale"):
        DiffusionDenoiser(model, {**meta, "inference": {**meta["inference"], "noise_scale": [[15]]}})
    noisy = add_noise(np.rint(pan[:3] * 255).astype(np.uint8), 25).astype(np.float32) / 255
    tabled = {**meta, "inference": {**meta["inference"], "noise_scale": table}}
    np.testing.assert_array_equal(DiffusionDenoiser(model, tabled, sigma255=25)(noisy),
                                  DiffusionDenoiser(model, meta, sigma255=25, noise_scale=0.7)(noisy))


def test_training_config_rejects_a_malformed_noise_scale(tmp_path):
    from restore.diffusion.trainconfig import load_train_config
    from restore.errors import ConfigError

    cfg = tmp_path / "t.yaml"
    cfg.write_text("task: denoise\ninference: {noise_scale: [[15, 0.9], [25]]}\n")
    with pytest.raises(ConfigError, match="noise_scale"):
        load_train_config(cfg)


def test_fusing_restored_frames_leaves_a_still_clean_clip_and_a_cut_alone(pan):
    from restore.diffusion.centred import fuse_restored

    still = np.repeat(pan[:1], 4, axis=0)
    np.testing.assert_allclose(fuse_restored(still, 10 / 255), still, atol=1e-6)
    # a cut inside the chunk: the other shot disagrees everywhere and gets no weight
    other = np.ascontiguousarray(pan[:, ::-1, ::-1])
    clip = np.concatenate([pan[:2], other[:2]])
    out = fuse_restored(clip, 10 / 255)
    assert np.abs(out[1] - clip[1]).mean() < 0.002 and np.abs(out[2] - clip[2]).mean() < 0.002


def test_training_windows_are_aligned_as_at_inference(pan):
    import torch

    from restore.diffusion.centred import align_to_centre

    clean = torch.from_numpy(pan[1:4]).permute(0, 3, 1, 2).contiguous()
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    c, n = align_to_centre(clean, noisy)
    assert c.shape == clean.shape and n.shape == noisy.shape and c.is_contiguous()
    assert torch.equal(c[1], clean[1]) and torch.equal(n[1], noisy[1])
    inner = (slice(None), slice(16, -16), slice(16, -16))
    for j in (0, 2):
        raw = (clean[j] - clean[1])[inner].abs().mean()
        assert (c[j] - clean[1])[inner].abs().mean() < 0.1 * raw
        # the same pixels moved in both clips: the slot's noise is still white at its level
        resid = (n[j] - c[j])[inner]
        assert abs(float(resid.std()) - 0.1) < 0.005


def test_align_windows_needs_an_odd_denoise_window(tmp_path):
    from restore.diffusion.trainconfig import load_train_config
    from restore.errors import ConfigError

    cfg = Path(__file__).resolve().parent.parent / "configs" / "train" / "denoise.yaml"
    assert load_train_config(cfg, {"align_windows": True}).align_windows
    with pytest.raises(ConfigError, match="align_windows"):
        load_train_config(cfg, {"align_windows": True, "frames": 4})
