"""Diffusion models: shapes and devices, sampler maths and determinism, tiling, checkpoints, training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.diffusion import checkpoint
from restore.diffusion.infer import restore_chunk, tiled
from restore.diffusion.precond import EDMPrecond
from restore.diffusion.samplers import sample_euler, sample_heun, sigma_ladder
from restore.diffusion.tasks import TASKS, with_anchors
from restore.diffusion.unet import VideoUNet
from restore.ops.resize import imresize, imresize_hwc, resize_matrix

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tiny_model(task="sr", channels=(16, 32), seed=0) -> EDMPrecond:
    torch.manual_seed(seed)
    net = VideoUNet(cond_channels=TASKS[task].cond_channels, channels=channels, blocks=1)
    model = EDMPrecond(net)
    # zero-initialised heads make an untrained model the identity; perturb them so tests see the network
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model.eval()


@pytest.mark.parametrize("device", DEVICES)
def test_unet_shapes_and_param_count(device):
    net = VideoUNet(cond_channels=7).to(device)
    n = sum(p.numel() for p in net.parameters())
    assert 1e6 <= n <= 5e6
    x = torch.randn(2, 3, 3, 32, 48, device=device)
    cond = torch.randn(2, 3, 7, 32, 48, device=device)
    out = net(x, cond, torch.zeros(2, 2, device=device))
    assert out.shape == (2, 3, 3, 32, 48)


def test_temporal_layers_mix_frames():
    model = tiny_model()
    x = torch.zeros(1, 4, 3, 32, 32)
    cond = torch.zeros(1, 4, 7, 32, 32)
    base = model(x, torch.tensor([0.3]), cond)
    cond2 = cond.clone()
    cond2[0, 0] += 1.0  # change only frame 0's conditioning
    moved = model(x, torch.tensor([0.3]), cond2)
    assert (moved[0, 3] - base[0, 3]).abs().max() > 0  # ... and frame 3 responds


def test_sigma_ladder():
    assert sigma_ladder(0.3, 1) == [0.3, 0.0]
    lad = sigma_ladder(0.3, 4)
    assert len(lad) == 5 and lad[0] == pytest.approx(0.3) and lad[-1] == 0
    assert all(a > b for a, b in zip(lad, lad[1:]))


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_sampler_follows_the_path_to_x0_with_an_oracle(sampler, steps):
    # With a perfect denoiser, Euler/Heun along x_s = x0 + (s / s0)(y - x0) land exactly on x0
    # and pass through the path at every intermediate level.
    torch.manual_seed(0)
    x0 = torch.rand(2, 3, 8, 8)
    y = x0 + 0.3 * torch.randn_like(x0)
    seen = []

    def oracle(x, sigma):
        seen.append((x - x0).abs().max().item() / sigma)
        return x0

    out = sampler(oracle, y, sigma_ladder(0.3, steps))
    assert torch.allclose(out, x0, atol=1e-6)
    assert np.allclose(seen, seen[0], rtol=1e-3)  # (x - x0) / sigma is constant along the path


def test_restore_chunk_is_deterministic_for_a_seed():
    model = tiny_model()
    cond = with_anchors(torch.rand(3, 3, 32, 32) * 2 - 1, None)
    est = cond[:, :3]
    a = restore_chunk(model, cond, est, start_sigma=0.2, steps=2, seed=7)
    b = restore_chunk(model, cond, est, start_sigma=0.2, steps=2, seed=7)
    c = restore_chunk(model, cond, est, start_sigma=0.2, steps=2, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_tiling_blends_to_the_untiled_result_for_a_pointwise_function():
    x = torch.rand(2, 3, 70, 90)
    cond = torch.rand(2, 4, 70, 90)
    fn = lambda xt, ct: xt * 2 + ct[:, :3]  # noqa: E731
    out = tiled(fn, x, cond, tile=32, overlap=16, multiple=8)
    assert torch.allclose(out, fn(x, cond), atol=1e-5)


@pytest.mark.parametrize("h, w", [(72, 1280), (61, 427), (256, 200)])
def test_tiles_sit_on_the_networks_grid_and_only_edge_tiles_are_padded(h, w):
    # fn sees the phase of each pixel in its tile (as a pixel-unshuffling network does, and a
    # deblocker the 8x8 block grid), and needs sizes that are multiples of 8: tiled equals the
    # untiled call on the padded frame only if every tile starts on the frame's 8-pixel grid
    def fn(xt, ct):
        assert xt.shape[-2] % 8 == 0 and xt.shape[-1] % 8 == 0
        ys, xs = torch.meshgrid(torch.arange(xt.shape[-2]), torch.arange(xt.shape[-1]), indexing="ij")
        return xt + ((ys % 8) * 8 + xs % 8).to(xt.dtype)

    x, cond = torch.rand(1, 3, h, w), torch.rand(1, 4, h, w)
    ref = fn(torch.nn.functional.pad(x, (0, -w % 8, 0, -h % 8), mode="replicate"), None)[..., :h, :w]
    out = tiled(fn, x, cond, tile=96, overlap=16, multiple=8)
    assert torch.allclose(out, ref, atol=1e-4)


def test_tiled_model_output_is_close_to_untiled():
    model = tiny_model()
    cond = with_anchors(torch.rand(2, 3, 64, 96) * 2 - 1, None)
    est = cond[:, :3]
    full = restore_chunk(model, cond, est, start_sigma=0.1, steps=1, seed=0, tile=None)
    tiles = restore_chunk(model, cond, est, start_sigma=0.1, steps=1, seed=0, tile=48, overlap=16)
    assert (full - tiles).abs().mean() < 0.02


def test_anchor_channels_and_mask():
    cond = torch.zeros(4, 3, 8, 8)
    anchors = torch.ones(2, 3, 8, 8)
    out = with_anchors(cond, anchors)
    assert out.shape == (4, 7, 8, 8)
    assert out[:2, 6].eq(1).all() and out[2:, 6].eq(0).all()
    assert out[:2, 3:6].eq(1).all() and out[2:, 3:6].eq(0).all()


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model()
    meta = {"name": "t", "task": "sr", "scale": 2, "arch": {k: v for k, v in model.net.config().items()
                                                           if k != "cond_channels"},
            "sampling": {"steps": 2, "start_sigma": 0.1}, "config": {"frames": 3}}
    checkpoint.save(tmp_path / "t", model, meta)
    loaded, meta2 = checkpoint.load(tmp_path / "t")
    assert meta2["arch"] == meta["arch"]
    x = torch.rand(1, 2, 3, 16, 16)
    c = torch.rand(1, 2, 7, 16, 16)
    s = torch.tensor([0.2])
    assert torch.allclose(model(x, s, c), loaded(x, s, c), atol=1e-6)


def test_matlab_bicubic_resize_properties():
    m = resize_matrix(40, 10)
    assert np.allclose(m.sum(axis=1), 1, atol=1e-6)
    flat = np.full((3, 12, 16), 0.37, np.float32)
    assert np.allclose(imresize(flat, (6, 8)), 0.37, atol=1e-6)
    # imresize([1 2 3 4], 0.5, 'bicubic'): the antialiased kernel (width 8, a = -0.5) with
    # symmetric padding gives 2.921875 / 2 and 7.078125 / 2, worked out by hand from MATLAB's
    # contributions(); OpenCV's INTER_CUBIC (no antialiasing) would give [1.5, 3.5].
    row = np.array([[1.0, 2.0, 3.0, 4.0]], np.float32)
    out = imresize(row, (1, 2))
    assert np.allclose(out, [[1.4609375, 3.5390625]], atol=1e-5)
    img = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    assert imresize_hwc(img, (8, 8)).shape == (8, 8, 3)


def test_tiny_training_run_and_resume(tmp_path):
    import cv2

    from restore.diffusion.train import train
    from restore.diffusion.trainconfig import load_train_config

    rng = np.random.default_rng(0)
    frames_dir = tmp_path / "frames" / "seq"
    frames_dir.mkdir(parents=True)
    base = (rng.random((80, 80, 3)) * 255).astype(np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 2)
    for i in range(8):
        cv2.imwrite(str(frames_dir / f"{i:05d}.png"), np.roll(base, i, axis=1))
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(
        "task: sr\nname: tiny\nscale: 2\n"
        f"out_dir: {tmp_path / 'run'}\n"
        f"sources: [{{path: '{tmp_path / 'frames' / '*'}', kind: frames}}]\n"
        f"val_source: {{path: '{frames_dir}', kind: frames}}\n"
        "channels: [16, 32]\nframes: 2\npatch: 32\nbatch: 2\niters: 3\nlog_every: 1\nckpt_every: 2\n"
        "val_every: 2\nthreads: 1\n")
    cfg = load_train_config(cfg_path)
    stem = train(cfg, log=lambda *_: None)
    assert stem.exists()
    _, meta = checkpoint.load(stem)
    assert meta["step"] == 3 and meta["task"] == "sr" and "psnr" in meta["validation"]
    log_rows = (tmp_path / "run" / "tiny.log.csv").read_text().strip().splitlines()
    assert len(log_rows) >= 4
    cfg2 = load_train_config(cfg_path, {"iters": 5, "patch": 48, "p_first_step": 1.0})
    train(cfg2, resume=True, log=lambda *_: None)
    _, meta = checkpoint.load(stem)
    assert meta["step"] == 5
    # Each call of train() is one phase in the metadata, with the settings it ran with.
    assert [(h["steps"], h["patch"], h["p_first_step"]) for h in meta["history"]] == [
        ([0, 3], 32, cfg.p_first_step), ([3, 5], 48, 1.0)]
    # A resume with nothing left to train (its budget already spent) saves but adds no phase.
    train(cfg2, resume=True, log=lambda *_: None)
    _, meta = checkpoint.load(stem)
    assert meta["step"] == 5 and [h["steps"] for h in meta["history"]] == [[0, 3], [3, 5]]


def test_train_config_errors_name_the_key(tmp_path):
    from restore.diffusion.trainconfig import load_train_config
    from restore.errors import ConfigError

    p = tmp_path / "bad.yaml"
    p.write_text("task: sr\npatchsize: 64\n")
    with pytest.raises(ConfigError, match="patchsize"):
        load_train_config(p)
    p.write_text("task: sr\nscale: 4\npatch: 36\n")
    with pytest.raises(ConfigError, match="patch"):
        load_train_config(p)


@pytest.mark.parametrize("setting, named", [("patchsize=96", "patchsize"), ("patch=36", "patch"),
                                            ("noise_power", "KEY=VALUE")])
def test_train_cli_set_errors_are_one_line(tmp_path, capsys, setting, named):
    from restore.cli.main import main

    rc = main(["train", "--config", "sr-x4", "--out-dir", str(tmp_path), "--set", setting])
    err = capsys.readouterr().err
    assert rc == 2
    assert named in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_train_cli_set_reaches_the_config(tmp_path, capsys):
    import cv2

    from restore.cli.main import main

    frames = tmp_path / "seq"
    frames.mkdir()
    base = cv2.GaussianBlur((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8), (0, 0), 2)
    for i in range(4):
        cv2.imwrite(str(frames / f"{i:05d}.png"), np.roll(base, i, axis=0))
    rc = main(["train", "--config", "denoise", "--data", str(frames), "--out-dir", str(tmp_path / "run"),
               "--iters", "2", "--set", "channels=[16, 32]", "--set", "patch=32", "--set", "batch=1",
               "--set", "frames=2", "--set", "val_source={}", "--set", "noise_power=0.5"])
    assert rc == 0, capsys.readouterr().err
    _, meta = checkpoint.load(tmp_path / "run" / "denoise")
    assert meta["config"]["patch"] == 32 and meta["config"]["noise_power"] == 0.5
    assert meta["arch"]["channels"] == [16, 32] and meta["history"][0]["patch"] == 32


@pytest.mark.parametrize("frames", [2, 3, 5])
def test_short_temporal_attention_is_multihead_attention(frames):
    from restore.diffusion.unet import TemporalAttention

    torch.manual_seed(0)
    att = TemporalAttention(32).eval()
    for p in att.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2 * frames, 32, 6, 7).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = att(x, frames)
        att.short = 0  # force nn.MultiheadAttention
        ref = att(x, frames)
    assert (fast - x).abs().max() > 0.01  # the block does something
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("frames", [1, 2, 5])
def test_temporal_conv_is_its_1x1_conv_over_shifted_frames(frames):
    from restore.diffusion.unet import TemporalConv

    torch.manual_seed(0)
    tc = TemporalConv(8)
    for p in tc.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2 * frames, 8, 5, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    # the definition: x + proj([x(t-1), x(t), x(t+1)]) with the chunk's end frames repeated
    v = x.view(2, frames, 8, 5, 7)
    prev = torch.cat([v[:, :1], v[:, :-1]], 1)
    nxt = torch.cat([v[:, 1:], v[:, -1:]], 1)
    ref = x + tc.proj(torch.cat([prev, v, nxt], 2).view(2 * frames, 24, 5, 7))
    out = tc(x, frames)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((out * g).sum(), [x, tc.proj.weight]),
                    torch.autograd.grad((ref * g).sum(), [x, tc.proj.weight])):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_unet_inference_folds_the_noise_level_into_its_norms():
    # without gradient, a call whose samples share one noise level folds scale and shift into
    # GroupNorm's affine; a call with several levels, and training, take the plain path
    torch.manual_seed(0)
    net = VideoUNet(cond_channels=7, channels=(16, 32), blocks=1).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    plain_norms = []  # the FiLM norms that ran as modules (the plain path)
    for m in net.modules():
        if hasattr(m, "norm2"):
            m.norm2.register_forward_hook(lambda *_: plain_norms.append(1))
    x, cond = torch.randn(2, 3, 3, 16, 16), torch.randn(2, 3, 7, 16, 16)
    for shared, scalars in ((True, [[0.3, 0.5], [0.3, 0.5]]), (False, [[0.3, 0.5], [0.9, 0.1]])):
        scalars = torch.tensor(scalars)
        plain = net(x, cond, scalars).detach()
        plain_norms.clear()
        with torch.no_grad():
            fast = net(x, cond, scalars)
        assert (len(plain_norms) == 0) == shared
        assert plain.abs().mean() > 0.05  # the blocks do something
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)
        # in bf16 the folded affine adds no error of its own against float32
        bf = net.to(torch.bfloat16)
        err_plain = (bf(x.bfloat16(), cond.bfloat16(), scalars.bfloat16()).detach().float() - plain).abs().mean()
        with torch.no_grad():
            err_fast = (bf(x.bfloat16(), cond.bfloat16(), scalars.bfloat16()).float() - plain).abs().mean()
        assert err_fast < 1.2 * err_plain + 1e-4
        net = bf.float()


def test_window_net_in_frame_groups_equals_one_pass():
    """Inference on long windows runs a few frames at a time with their neighbours re-encoded;
    the result is the one-pass result."""
    from restore.diffusion.windownet import WindowNet

    torch.manual_seed(0)
    net = WindowNet(cond_channels=7, factor=2, radius=2, enc=8, channels=(8, 16), blocks=(1, 1)).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, cond, sc = torch.randn(1, 11, 3, 16, 24), torch.randn(1, 11, 7, 16, 24), torch.randn(1, 2)
    with torch.no_grad():
        net.group = 64
        whole = net(x, cond, sc)
        groups = {}
        for g in (1, 2, 3, 4):
            net.group = g
            groups[g] = net(x, cond, sc)
    grouped = groups[4]
    for g, out in groups.items():
        torch.testing.assert_close(out, whole, atol=1e-5, rtol=1e-4, msg=f"group {g}")
    with torch.enable_grad():
        trained_path = net(x, cond, sc)
    assert grouped.shape == (1, 11, 3, 16, 24) and grouped.abs().max() > 0.01
    torch.testing.assert_close(grouped, whole, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(trained_path.detach(), whole, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("shape, out_hw", [((2, 3, 101, 77), (202, 154)), ((2, 3, 101, 77), (50, 38)),
                                           ((1, 3, 64, 64), (16, 16)), ((3, 7, 9), (5, 4)),
                                           ((1, 3, 60, 107), (240, 428))])
def test_tensor_resize_bands_equal_the_dense_matrices(shape, out_hw):
    from restore.ops.resize import imresize

    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    dense = imresize(x, out_hw)  # numpy: the dense (out, in) products
    banded = imresize(torch.from_numpy(x), out_hw)
    assert banded.shape == dense.shape
    np.testing.assert_allclose(banded.numpy(), dense, atol=1e-5)


class _RunsOutOfMemory(torch.nn.Module):
    """A model that raises CUDA's out-of-memory error on inputs larger than `limit` pixels a side."""

    def __init__(self, inner, limit):
        super().__init__()
        self.inner, self.net, self.limit, self.sizes = inner, inner.net, limit, []

    def forward(self, x, *args):
        self.sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x, *args)


def test_a_chunk_that_runs_out_of_memory_is_retried_in_smaller_tiles_and_later_chunks_start_there(monkeypatch):
    from restore.diffusion import infer
    from restore.errors import RestoreError

    monkeypatch.setattr(infer, "_TILE_CAP", {})
    inner = tiny_model()
    model = _RunsOutOfMemory(inner, limit=64)
    cond = with_anchors(torch.rand(2, 3, 96, 96) * 2 - 1, None)
    est = cond[:, :3]
    with pytest.warns(RuntimeWarning, match="tiles of 48 px"):
        out = restore_chunk(model, cond, est, start_sigma=0.2, steps=1, seed=3)
    # the same result as asking for 48-px tiles from the start (the start noise is seeded)
    assert torch.equal(out, restore_chunk(inner, cond, est, start_sigma=0.2, steps=1, seed=3, tile=48))
    model.sizes.clear()
    restore_chunk(model, cond, est, start_sigma=0.2, steps=1, seed=3)
    assert max(model.sizes) <= 64                       # the next chunk starts at the size that fitted
    monkeypatch.setattr(infer, "_TILE_CAP", {})
    with pytest.raises(RestoreError, match="out of memory even on tiles of 48 px"):
        with pytest.warns(RuntimeWarning):
            restore_chunk(_RunsOutOfMemory(inner, limit=16), cond, est, start_sigma=0.2, steps=1)
