"""The denoiser's learned fusion of restored frames (restore/diffusion/fusenet.py)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from restore.diffusion.fusenet import FuseNet, fuse_learned, neighbours

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample.mp4"
STEP = (3, 1)  # the pan, pixels per frame (x, y)


@pytest.fixture(scope="module")
def pan() -> np.ndarray:
    """Six 200x240 crops of a real frame, each 3 px right and 1 px down of the last: the scene moves
    by (-3, -1) px per frame, so frame i(x) = frame i+k(x - k * STEP)."""
    with av.open(str(SAMPLE)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(np.float32) / 255
    return np.stack([frame[20 + i * STEP[1]:220 + i * STEP[1], 40 + i * STEP[0]:280 + i * STEP[0]]
                     for i in range(6)])


def _net_with_bias(bias: float) -> FuseNet:
    net = FuseNet(2, 8)
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.fill_(bias)
    return net.eval()


def test_chained_flows_bring_the_far_neighbours_onto_the_frame(pan):
    inner = (slice(20, -20), slice(20, -20))  # away from the borders the warps replicate
    for i, others, present in neighbours(pan, 2):
        assert present == [0 <= i + o < len(pan) for o in (-2, -1, 1, 2)]
        for k, ok in enumerate(present):
            if ok:
                err = np.abs(others[k][inner] - pan[i][inner]).mean()
                assert err < 0.02, (i, k, err)


def test_weights_near_zero_leave_the_frames_and_large_weights_average_them(pan):
    rng = np.random.default_rng(0)
    noisy = np.clip(pan + rng.normal(0, 0.1, pan.shape).astype(np.float32), 0, 1)
    np.testing.assert_allclose(fuse_learned(noisy, 0.1, _net_with_bias(-30.0)), noisy, atol=1e-5)
    averaged = fuse_learned(noisy, 0.1, _net_with_bias(30.0))
    inner = (slice(None), slice(20, -20), slice(20, -20))
    err = lambda a: np.sqrt(np.mean((a[inner] - pan[inner]) ** 2))
    assert err(averaged) < 0.6 * err(noisy)  # four aligned neighbours and the frame: noise / sqrt(5)
    assert fuse_learned(noisy, 0.5 / 255, _net_with_bias(30.0)) is noisy  # a clean input: nothing to do


def test_the_host_path_computes_what_the_network_trains_on(pan):
    """fuse_learned halves, resizes and averages on the host; FuseNet.forward (what training
    runs) does it in torch: the two agree."""
    torch.manual_seed(0)
    net = FuseNet(2, 8).eval()
    with torch.no_grad():
        net.body[-1].bias.fill_(0.5)
    noisy = np.clip(pan[:4] + np.random.default_rng(1).normal(0, 0.05, pan[:4].shape), 0, 1).astype(np.float32)
    host = fuse_learned(noisy, 0.05, net)
    for i, others, present in neighbours(noisy, 2):
        with torch.no_grad():
            ref = net(torch.from_numpy(noisy[i]).permute(2, 0, 1)[None],
                      torch.from_numpy(others).permute(0, 3, 1, 2)[None],
                      torch.tensor([present], dtype=torch.float32), torch.tensor([0.05]))
        np.testing.assert_allclose(host[i], ref[0].permute(1, 2, 0).numpy(), atol=2e-4)


def test_the_default_denoiser_fuses_with_the_shipped_network(pan):
    from restore.diffusion import zoo
    from restore.diffusion.degrade import add_noise
    import restore.methods  # noqa: F401  (registers the built-in methods)
    from restore import registry
    from restore.registry import MethodOptions

    model, meta = zoo.load("denoise", "cpu", "fp32")
    assert meta["inference"]["fuse_net"] == "denoise-fuse"
    restorer = registry.get("denoise", "diffusion").factory(MethodOptions(strength=25.0))
    assert isinstance(restorer.fuse_net, FuseNet)
    noisy = add_noise(np.rint(pan[:4] * 255).astype(np.uint8), 25).astype(np.float32) / 255
    from restore.diffusion.restorers import DiffusionDenoiser

    unfused = DiffusionDenoiser(model, meta, sigma255=25, fuse=0)(noisy)
    fused = DiffusionDenoiser(model, meta, sigma255=25, fuse_net=restorer.fuse_net)(noisy)
    psnr = lambda a: -10 * np.log10(np.mean((np.clip(a, 0, 1) - pan[:4]) ** 2))
    assert psnr(fused) > psnr(unfused) + 0.2


def test_odd_sizes_and_two_frames(pan):
    torch.manual_seed(0)
    net = FuseNet(2, 8).eval()
    clip = np.ascontiguousarray(pan[:2, :101, :77])
    out = fuse_learned(clip, 0.05, net)
    assert out.shape == clip.shape and np.isfinite(out).all()
    assert np.abs(out - clip).max() < 0.5


def test_level_and_warp_travel_with_the_weights(tmp_path, pan):
    from restore.diffusion.fusenet import load_fusenet, save_fusenet

    with pytest.raises(ValueError, match="warp"):
        FuseNet(2, 8, warp="nearest")
    net = FuseNet(1, 8, level=20.0, warp="cubic").eval()
    save_fusenet(tmp_path / "f", net, {"steps": 0})
    back = load_fusenet(tmp_path / "f")
    assert (back.radius, back.level, back.warp) == (1, 20.0, "cubic")
    assert load_fusenet(tmp_path / "f").config == net.config
    frames = pan[:3].astype(np.float32)
    np.testing.assert_allclose(fuse_learned(frames, 0.05, back), fuse_learned(frames, 0.05, net), atol=1e-6)


def test_an_lpips_term_trains_the_weights_away_from_blurring(pan):
    """scripts/train_fusenet.py --lpips-weight: the shipped LPIPS, as a loss, reaches the network's
    weights; averaging a sharp frame with blurred neighbours is what it must learn to stop."""
    import cv2

    from restore.metrics.lpips_metric import load_lpips

    lpips = load_lpips("cpu")
    sharp = torch.from_numpy(pan[2, :96, :96]).permute(2, 0, 1)[None]
    blurred = torch.from_numpy(np.stack([cv2.GaussianBlur(pan[2, :96, :96], (0, 0), 2.0)] * 4)).permute(0, 3, 1, 2)[None]
    mask, level = torch.ones(1, 4), torch.tensor([0.05])
    net = _net_with_bias(2.0).train()
    opt = torch.optim.Adam(net.parameters(), 0.05)
    first = None
    for _ in range(15):
        loss = lpips(net(sharp, blurred, mask, level) * 2 - 1, sharp * 2 - 1).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = lpips(net(sharp, blurred, mask, level) * 2 - 1, sharp * 2 - 1).mean().item()
        assert net.weights(sharp, blurred, mask, level).mean() < 1.0  # from softplus(2) = 2.13
    assert last < 0.5 * first
