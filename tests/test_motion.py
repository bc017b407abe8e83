"""The interpolator's learned motion refinement: warps, cost volume, identity at initialisation,
the training bank's augmentations, and checkpoints."""
from __future__ import annotations

import numpy as np
import torch

from restore.diffusion.motionbank import MotionBank, crop_arrays, motion_sample
from restore.diffusion.motionnet import (MotionRefiner, backward_warp, load_refiner, refined_hints,
                                         save_refiner, symmetric_cost)
from restore.ops.flow import interpolate_pair_parts, warp
from tests.test_classical import panning_texture, psnr


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]


def test_backward_warp_matches_the_classical_warp():
    rng = np.random.default_rng(0)
    img = rng.random((40, 56, 3)).astype(np.float32)
    flow = (rng.normal(0, 3, (40, 56, 2))).astype(np.float32)
    ours = backward_warp(_chw(img), _chw(flow))[0].permute(1, 2, 0).numpy()
    # inside the frame both are bilinear; at the border both replicate the edge
    assert np.abs(ours - warp(img, flow))[2:-2, 2:-2].max() < 1e-4


def test_cost_volume_is_lowest_at_the_true_motion():
    frames = panning_texture(n=2, h=48, w=64, dx=4.0, dy=-2.0)  # frame 1 (x) = frame 0 (x + (4, -2))
    s0, s1 = _chw(frames[0]), _chw(frames[1])
    zero = torch.zeros(1, 2, 48, 64)
    cost = symmetric_cost(s0, s1, zero, zero, torch.tensor([0.5]), radius=3, step=2.0)[0, :, 12:-12, 12:-12]
    k = int(cost.mean((1, 2)).argmin())
    # content moves by (-4, +2) from frame 0 to frame 1: that is the motion of the cheapest cell
    assert ((k % 7 - 3) * 2, (k // 7 - 3) * 2) == (-4, 2)


def test_untrained_refiner_returns_the_classical_hints():
    frames = panning_texture(n=3, h=64, w=96, dx=3.0, dy=1.0)
    s = motion_sample(frames[0], frames[1], frames[2], 0.5)
    net = MotionRefiner(((4, 16, 1, 0), (2, 8, 1, 2)))  # zero-initialised heads
    w0, w1, blend = refined_hints(net, s.f0, s.f1, 0.5, s.flow_t0, s.flow_t1, s.weight0)
    ref_blend, ref_w0, ref_w1 = interpolate_pair_parts(s.f0, s.f1, 0.5, edge_margin=None)  # as the model's hints
    assert blend.shape == ref_blend.shape == (64, 96, 3)
    for ours, ref in ((w0, ref_w0), (w1, ref_w1), (blend, ref_blend)):
        assert np.abs(ours - ref)[2:-2, 2:-2].max() < 2e-3


def test_bank_augmentations_keep_motion_consistent():
    """Flips, transposes and time reversal must move flows with the pixels: the teacher's warp
    and the classical blend still reproduce the true frame after any of them."""
    frames = panning_texture(n=3, h=64, w=64, dx=2.5, dy=-1.5)
    s = motion_sample(frames[0], frames[1], frames[2], 0.5)
    bank = MotionBank([crop_arrays(s, 0, 0, 64)])
    rng = np.random.default_rng(3)
    for _ in range(8):
        b = bank.batch(2, rng)
        inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
        teacher = backward_warp(b["f0"], b["teacher_t0"])
        base = (b["weight0"] * backward_warp(b["f0"], b["flow_t0"])
                + (1 - b["weight0"]) * backward_warp(b["f1"], b["flow_t1"]))
        assert psnr(teacher[inner].numpy(), b["mid"][inner].numpy()) > 30
        assert psnr(base[inner].numpy(), b["mid"][inner].numpy()) > 30


def test_refiner_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = MotionRefiner(((4, 16, 1, 0), (2, 8, 1, 0)))
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    save_refiner(tmp_path / "m", net, {"step": 3})
    back = load_refiner(tmp_path / "m")
    x = torch.rand(1, 3, 32, 32)
    f = torch.zeros(1, 2, 32, 32)
    with torch.no_grad():
        a = net(x, x.flip(-1), f, f, torch.zeros(1, 1, 32, 32), torch.tensor([0.5]))
        b = back(x, x.flip(-1), f, f, torch.zeros(1, 1, 32, 32), torch.tensor([0.5]))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], f)  # the random heads did move the flow


def test_interpolator_takes_the_refiner_named_by_its_inference_block(tmp_path, monkeypatch):
    """The shipped interpolator with a refiner named in its `inference:` block: loaded from the same
    weights folder, and (untrained, so the identity) giving the output of DIS alone."""
    import shutil

    import yaml

    from restore import registry
    from restore.diffusion import zoo
    from restore.registry import MethodOptions

    name = zoo.model_name("interpolate")
    for suffix in (".safetensors", ".yaml"):
        shutil.copy(zoo.model_path(name).with_suffix(suffix), tmp_path / f"{name}{suffix}")
    meta = yaml.safe_load((tmp_path / f"{name}.yaml").read_text())
    meta["inference"]["motion"] = "interp-motion"
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    save_refiner(tmp_path / "interp-motion", MotionRefiner(((4, 16, 1, 0), (2, 8, 1, 0))), {"step": 0})

    frames = panning_texture(n=3, h=64, w=80, dx=2.0, dy=1.0)
    plain = registry.get("interpolate", "diffusion").factory(MethodOptions(seed=1))
    assert plain.motion is None
    expected = plain(frames[:1], frames[2:], 0.5)
    monkeypatch.setenv("RESTORE_WEIGHTS_DIR", str(tmp_path))
    zoo.load.cache_clear()
    try:
        refined = registry.get("interpolate", "diffusion").factory(MethodOptions(seed=1))
        assert isinstance(refined.motion, MotionRefiner)
        out = refined(frames[:1], frames[2:], 0.5)
    finally:
        zoo.load.cache_clear()
        zoo.load_motion.cache_clear()
    assert np.abs(out - expected).max() < 0.01


def test_bf16_refiner_keeps_flows_in_float32():
    torch.manual_seed(1)
    net = MotionRefiner(((4, 16, 1, 0),))
    for q in net.parameters():
        q.data.normal_(0, 0.02)
    frames = torch.rand(1, 3, 32, 32)
    flow = torch.full((1, 2, 32, 32), 100.3)  # bf16 steps are 0.5 px at this size
    args = (frames, frames, flow, -flow, torch.zeros(1, 1, 32, 32), torch.tensor([0.5]))
    with torch.no_grad():
        ref = net(*args)
        low = net.to(torch.bfloat16)(*args)
    assert low[0].dtype == torch.float32
    assert (low[0] - ref[0]).abs().max() < 0.05
