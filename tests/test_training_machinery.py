"""The v2 training machinery: degradation registry, objective, window network, inference block."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from restore.diffusion import checkpoint
from restore.diffusion.degradations import DEGRADATIONS, build_chain
from restore.diffusion.objective import RestorationLoss
from restore.diffusion.precond import EDMPrecond
from restore.diffusion.restorers import DiffusionDenoiser, DiffusionUpscaler
from restore.diffusion.trainconfig import load_train_config
from restore.diffusion.windownet import WindowNet
from restore.errors import ConfigError

CHAIN = [{"name": "jpeg", "p": 0.5, "quality": [50, 90]},
         {"name": "gaussian_noise", "sigma255": [0, 50], "power": 0.7},
         {"name": "quantize", "p": 0.8}]


def _clip(seed=0, t=3, size=32):
    return torch.from_numpy(np.random.default_rng(seed).random((t, 3, size, size), dtype=np.float32))


def test_degradation_chain_is_reproducible_for_a_seed():
    chain = build_chain(CHAIN)
    a, sa = chain(_clip(), np.random.default_rng(7))
    b, sb = chain(_clip(), np.random.default_rng(7))
    c, _ = chain(_clip(), np.random.default_rng(8))
    assert torch.equal(a, b) and sa == sb
    assert not torch.equal(a, c)
    assert 0 <= sa["sigma255"] <= 50


def test_gaussian_noise_has_the_recorded_std():
    chain = build_chain([{"name": "gaussian_noise", "sigma255": [20, 20]}])
    clean = torch.full((4, 3, 64, 64), 0.5)
    noisy, state = chain(clean, np.random.default_rng(0))
    assert state["sigma255"] == 20
    assert abs(float((noisy - clean).std()) * 255 - 20) < 0.5


def test_bicubic_down_records_the_scale_and_shrinks():
    out, state = build_chain([{"name": "bicubic_down", "scale": 4}, {"name": "quantize"}])(_clip(size=64),
                                                                                         np.random.default_rng(0))
    assert out.shape == (3, 3, 16, 16) and state["scale"] == 4
    assert torch.allclose(out * 255, torch.round(out * 255), atol=1e-4)


@pytest.mark.parametrize("entry, named", [
    ({"name": "blur"}, "unknown degradation 'blur'"),
    ({"name": "jpeg", "qualty": 50}, "unknown parameter(s) qualty"),
    ({"name": "quantize", "p": 2}, "p must be in [0, 1]"),
    ("jpeg", "expected a mapping"),
])
def test_bad_degradation_entries_name_the_entry(entry, named):
    with pytest.raises(ConfigError, match=r"degradations\[0\]") as err:
        build_chain([entry])
    assert named in str(err.value)


def test_training_config_validates_degradations_and_inference(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"task": "denoise", "degradations": [{"name": "nope"}]}))
    with pytest.raises(ConfigError, match="nope"):
        load_train_config(path)
    path.write_text(yaml.safe_dump({"task": "denoise", "inference": {"windw": 3}}))
    with pytest.raises(ConfigError, match="windw"):
        load_train_config(path)


def test_registry_names_are_unique():
    from restore.diffusion import degradations

    with pytest.raises(ValueError, match="twice"):
        degradations.register("jpeg")(lambda clip, rng, state: clip)
    assert {"gaussian_noise", "jpeg", "quantize", "bicubic_down"} <= set(DEGRADATIONS)


def _window_model(factor=2):
    return EDMPrecond(WindowNet(cond_channels=7, factor=factor, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1)))


def test_window_net_sees_its_neighbours_and_no_further():
    torch.manual_seed(0)
    net = WindowNet(cond_channels=7, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1), radius=2)
    for p in net.parameters():  # the zero-initialised head would hide every dependency
        torch.nn.init.normal_(p, std=0.1)
    x, cond, s = torch.randn(1, 8, 3, 16, 16), torch.randn(1, 8, 7, 16, 16), torch.zeros(1, 2)
    base = net(x, cond, s)
    x2 = x.clone()
    x2[:, 5] += 1
    diff = (net(x2, cond, s) - base).abs().flatten(2).amax(2)[0]
    assert all(diff[t] > 0 for t in (3, 4, 5, 6, 7))
    assert all(diff[t] == 0 for t in (0, 1, 2))


@pytest.mark.parametrize("align, propagate", [(False, 0), (True, 0), (True, 4)])
def test_window_net_inference_groups_match_one_pass(align, propagate):
    torch.manual_seed(0)
    net = WindowNet(cond_channels=7, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1), align=align,
                    propagate=propagate).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, cond, s = torch.randn(1, 11, 3, 32, 32), torch.randn(1, 11, 7, 32, 32), torch.zeros(1, 2)
    with torch.no_grad():
        grouped = net(x, cond, s)
    net.group = 100
    with torch.no_grad():
        whole = net(x, cond, s)
    assert torch.allclose(grouped, whole, atol=1e-5)


def _panning_clip(t: int, factor: int, step=(2, 3)) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth texture moving `step` pixels a frame at the network's resolution."""
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((200, 260, 3)) * 255).astype(np.uint8), (0, 0), 3)
    base = base.astype(np.float32) / 127.5 - 1
    frames = np.stack([np.roll(base, (step[0] * factor * i, step[1] * factor * i), axis=(0, 1))
                       for i in range(t)])[:, 40:168, 40:232]
    clip = torch.from_numpy(frames).permute(0, 3, 1, 2)[None]
    return clip, torch.cat([clip, torch.zeros(1, t, 4, *clip.shape[-2:])], 2)


@pytest.mark.parametrize("factor", [2, 4])
def test_aligned_window_net_warps_neighbours_onto_the_moving_scene(factor):
    from restore.diffusion.windownet import _FlowChain

    torch.manual_seed(0)
    clip, cond = _panning_clip(5, factor)
    idx = torch.tensor([[0, 1, 2, 3, 4]])
    err = {}
    for align in (False, True):
        net = WindowNet(cond_channels=7, factor=factor, radius=2, enc=16, align=align).eval()
        with torch.no_grad():
            win = net._gather(net._encode(clip, cond, torch.zeros(1, 2)), idx)
            if align:
                win = net._aligned(win, [_FlowChain(g) for g in net._grey(cond)], idx)
        w = win.reshape(1, 5, 16, *win.shape[-2:])[..., 6:-6, 6:-6]  # away from the rolled-in border
        err[align] = [float((w[0, s] - w[0, 2]).abs().mean()) for s in (0, 1, 3, 4)]
    assert min(err[False]) > 0.002
    # one and two frames away (two consecutive flows composed) alike
    assert max(err[True]) < 0.2 * min(err[False])


def test_aligned_window_net_flows_each_clip_of_a_batch_by_its_own_motion():
    # a batch's flows are computed side by side in threads: each clip must still get its own
    torch.manual_seed(0)
    net = WindowNet(cond_channels=7, factor=2, radius=2, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1),
                    align=True)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    clips = [_panning_clip(5, 2, step) for step in ((2, 3), (-3, 1), (0, 0))]
    x, cond = torch.cat([c[0] for c in clips]), torch.cat([c[1] for c in clips])
    batch = net(x, cond, torch.zeros(3, 2)).detach()  # with grad: one pass, as in training
    with torch.no_grad():
        one_by_one = torch.cat([net(c[0], c[1], torch.zeros(1, 2)) for c in clips])
    assert torch.allclose(batch, one_by_one, atol=1e-4)


def test_aligned_window_net_keeps_a_still_and_runs_in_bf16():
    torch.manual_seed(0)
    net = WindowNet(cond_channels=7, factor=4, radius=2, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1)).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    clip, cond = _panning_clip(1, 4)
    with torch.no_grad():
        plain = net(clip, cond, torch.zeros(1, 2))
        net.align = True
        assert torch.allclose(net(clip, cond, torch.zeros(1, 2)), plain, atol=1e-5)
        out = net.to(torch.bfloat16)(clip.bfloat16(), cond.bfloat16(), torch.zeros(1, 2).bfloat16())
    assert torch.isfinite(out).all()
    assert net.config()["align"] is True
    assert "align" not in WindowNet(cond_channels=7).config()  # older checkpoints' arch, unchanged


def test_propagation_reaches_the_whole_window_and_starts_as_the_plain_network():
    torch.manual_seed(0)
    kw = dict(cond_channels=7, factor=2, radius=1, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1), align=True)
    plain = WindowNet(**kw).eval()
    for p in plain.parameters():
        torch.nn.init.normal_(p, std=0.1)
    grown = WindowNet(**kw, propagate=4).eval()
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and {k.split(".")[0] for k in missing} == {"back", "forth", "inject"}
    clip, cond = _panning_clip(8, 2)
    x, s = torch.randn_like(clip), torch.zeros(1, 2)
    x2 = x.clone()
    x2[:, 0] += 1
    with torch.no_grad():
        assert torch.allclose(grown(x, cond, s), plain(x, cond, s), atol=1e-5)  # inject starts at zero
        for p in grown.parameters():
            torch.nn.init.normal_(p, std=0.2)
        far = [(net(x2, cond, s) - net(x, cond, s))[0, 7].abs().max() for net in (plain, grown)]
    # frame 7 is six frames from frame 0: out of a radius-1 window, within the propagation's reach
    assert far[0] == 0 and far[1] > 1e-6
    assert grown.config()["propagate"] == 4 and "propagate" not in plain.config()
    with pytest.raises(ValueError, match="align"):
        WindowNet(cond_channels=7, propagate=4)


def test_a_phase_grows_propagation_onto_trained_weights(tmp_path):
    import cv2
    import torch.nn.functional as F

    from restore.diffusion.train import train

    frames = tmp_path / "frames" / "pan"
    frames.mkdir(parents=True)
    clip, _ = _panning_clip(6, 2)
    for i, f in enumerate(clip[0].permute(0, 2, 3, 1).numpy()):
        cv2.imwrite(str(frames / f"{i:05d}.png"), ((f + 1) * 127.5).round().astype(np.uint8))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("task: sr\nname: tiny\nscale: 2\n"
                   f"out_dir: {tmp_path / 'run'}\n"
                   f"sources: [{{path: '{tmp_path / 'frames' / '*'}', kind: frames}}]\n"
                   "model: {type: window, factor: 2, radius: 1, enc: 8, channels: [8, 16], blocks: [1, 1], align: true}\n"
                   "degradations: [{name: bicubic_down, scale: 2}]\n"
                   "frames: 4\npatch: 32\nbatch: 1\niters: 1\nlog_every: 1\nval_every: 100\nthreads: 1\n")
    stem = train(load_train_config(cfg), log=lambda *_: None)
    logged = []
    stem2 = train(load_train_config(cfg, {"out_dir": str(tmp_path / "run2"), "model.propagate": 4,
                                          "init_weights": str(stem), "lr": 0.0}), log=logged.append)
    assert any("start from their initialisation" in line for line in logged)
    m1, _ = checkpoint.load(stem)
    m2, meta2 = checkpoint.load(stem2)
    assert meta2["arch"]["propagate"] == 4 and meta2["step"] == 2
    lr = torch.rand(1, 4, 3, 16, 16) * 2 - 1
    cond = torch.cat([F.interpolate(lr[0], scale_factor=2, mode="bicubic")[None], torch.zeros(1, 4, 4, 32, 32)], 2)
    with torch.no_grad():
        args = (cond[:, :, :3], torch.full((1,), 0.01), cond, torch.full((1,), 0.01), cond[:, :, :3])
        assert torch.allclose(m1(*args), m2(*args), atol=1e-5)  # lr 0: the grown model is the old one
    # the grown modules learn at their own lr (they start at zero effect, behind the trained layers)
    from restore.diffusion.train import _build_model

    net, _, _, opt = _build_model(load_train_config(cfg, {"model.propagate": 4, "lr_scale_new": 10}),
                                  torch.device("cpu"))
    assert [g["lr_scale"] for g in opt.param_groups] == [1.0, 10]
    assert {id(p) for p in opt.param_groups[1]["params"]} == {
        id(p) for m in (net.back, net.forth, net.inject) for p in m.parameters()}


def test_objective_is_zero_for_an_oracle_and_ignores_anchor_slots():
    b, t = 2, 3
    x0 = torch.rand(b, t, 3, 8, 8) * 2 - 1
    batch = {"x0": x0, "start": x0 + 0.3, "estimate": x0 + 0.3, "cond": torch.zeros(b, t, 7, 8, 8),
             "sigma_s": torch.full((b,), 0.3), "loss_mask": torch.tensor([[0., 1, 1], [1, 1, 1]])}

    def oracle(x, sigma, cond, start_sigma, estimate):
        out = x0.clone()
        out[0, 0] += 5  # an anchor slot: must not count
        return out

    loss, per_chunk, _ = RestorationLoss("l2")(oracle, batch)
    assert float(loss) == pytest.approx(0, abs=1e-6)
    loss_id, _, _ = RestorationLoss("l2")(lambda x, *a: a[-1], batch)
    assert float(loss_id) == pytest.approx(0.09, rel=1e-4)
    # the training log's yardstick is the loss of a model that returns the estimate
    assert RestorationLoss("l2").estimate_loss(batch) == pytest.approx(float(loss_id), rel=1e-6)
    batch["estimate"] = x0.clone()
    batch["estimate"][0, 0] -= 1  # again an anchor slot
    assert RestorationLoss("charbonnier").estimate_loss(batch) == pytest.approx(1e-3, rel=1e-3)


def test_training_log_records_the_estimates_loss_and_keeps_an_older_logs_shape(tmp_path):
    import csv

    from restore.diffusion.train import _CsvLog

    old = tmp_path / "old.log.csv"
    old.write_text("step,wall_s,loss,lr,val_psnr,val_baseline_psnr,val_lpips\n1,0.5,0.1,1e-4,,,\n")
    log = _CsvLog(old, resume=True)
    log.row(2, 1.0, 0.09, 1e-4, ["", "", ""], 0.12)
    log.close()
    rows = list(csv.reader(old.open()))
    assert {len(r) for r in rows} == {7} and rows[-1][:3] == ["2", "1.0", "0.09000"]
    new = tmp_path / "new.log.csv"
    log = _CsvLog(new, resume=True)  # nothing to resume: a new log with every column
    log.row(1, 1.0, 0.09, 1e-4, ["30.1", "29.0", "0.2"], 0.12)
    log.close()
    rows = list(csv.DictReader(new.open()))
    assert rows[0]["est_loss"] == "0.12000" and rows[0]["val_psnr"] == "30.1"


def test_training_autocasts_to_bf16_only_where_the_device_has_it(monkeypatch):
    from restore.diffusion import train as train_mod
    from restore.diffusion.trainconfig import TrainConfig

    cpu = torch.device("cpu")
    monkeypatch.setattr(train_mod, "cpu_has_bf16", lambda: False)
    assert not train_mod._amp(TrainConfig(), cpu)
    monkeypatch.setattr(train_mod, "cpu_has_bf16", lambda: True)
    assert train_mod._amp(TrainConfig(), cpu) and not train_mod._amp(TrainConfig(amp=False), cpu)
    _, autocast = train_mod._objective(TrainConfig(), cpu)
    with autocast:
        y = torch.nn.functional.conv2d(torch.randn(1, 2, 4, 4), torch.randn(2, 2, 1, 1))
    assert y.dtype == torch.bfloat16


def test_inference_block_from_the_checkpoint_and_its_legacy_form(tmp_path):
    legacy = {"task": "denoise", "scale": 1, "sampling": {"steps": 2, "start_sigma": 0.1},
              "config": {"frames": 3, "sigma_floor": 0.01}}
    assert checkpoint.inference_block(legacy) == {"window": 4, "anchors": 1, "steps": 2, "start_sigma": 0.1,
                                                  "sampler": "euler", "sigma_floor": 0.01}
    meta = {"task": "denoise", "scale": 1, "arch": {k: v for k, v in _window_model().net.config().items()
                                                      if k != "cond_channels"},
            "inference": {"window": 6, "anchors": 2, "lookahead": 2, "steps": 1, "start_sigma": 0.0,
                          "sampler": "euler", "sigma_floor": 0.004, "tile": 64}}
    model = _window_model()
    checkpoint.save(tmp_path / "m", model, meta)
    loaded, meta2 = checkpoint.load(tmp_path / "m")
    r = DiffusionDenoiser(loaded, meta2, sigma255=10.0)
    assert (r.window, r.inner_anchors, r.lookahead, r.steps, r.tile) == (6, 2, 2, 1, 64)


def test_an_aligned_checkpoint_round_trips_and_upscales_a_panning_clip_in_tiles(tmp_path):
    torch.manual_seed(0)
    net = WindowNet(cond_channels=7, factor=2, radius=2, enc=8, channels=(8, 16, 16), blocks=(1, 1, 1),
                    align=True)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    meta = {"task": "sr", "scale": 2, "arch": {k: v for k, v in net.config().items() if k != "cond_channels"},
            "inference": {"window": 6, "anchors": 2, "lookahead": 1, "steps": 1, "start_sigma": 0.01,
                          "sampler": "euler", "sigma_floor": 0.004, "tile": 64, "overlap": 16}}
    checkpoint.save(tmp_path / "m", EDMPrecond(net), meta)
    loaded, meta2 = checkpoint.load(tmp_path / "m")
    assert meta2["arch"]["align"] is True and loaded.net.align
    clip, _ = _panning_clip(8, 2)
    lr = ((clip[0, :, :, :48, :80] + 1) / 2).permute(0, 2, 3, 1).numpy()   # 8 frames of 48 x 80
    tiled = DiffusionUpscaler(loaded, meta2)(lr)                      # 64 px tiles of a 96 x 160 output
    whole = DiffusionUpscaler(loaded, meta2, tile=4096)(lr)
    loaded.net.align = False
    unaligned = DiffusionUpscaler(loaded, meta2, tile=4096)(lr)
    assert tiled.shape == (8, 96, 160, 3) and np.isfinite(tiled).all()
    assert np.abs(whole - unaligned).mean() > 1e-4       # the restorer's path reaches the warp
    assert np.abs(tiled - whole).max() < 0.02             # each tile aligns by its own crop's flow


class _Recorder(torch.nn.Module):
    """A 'model' returning its estimate, recording which frames each pass saw."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.calls = []
        self.net = type("N", (), {"multiple": 8})()

    def forward(self, x, sigma, cond, start, estimate):
        self.calls.append(estimate[0, :, 0, 0, 0].tolist())
        return estimate


def test_windows_carry_anchors_and_look_ahead():
    model = _Recorder()
    meta = {"task": "denoise", "scale": 1, "inference": {"window": 5, "anchors": 2, "lookahead": 2, "steps": 1,
                                                         "start_sigma": 0.0, "sampler": "euler",
                                                         "sigma_floor": 0.004}}
    frames = np.stack([np.full((8, 8, 3), i / 20, np.float32) for i in range(10)])
    out = DiffusionDenoiser(model, meta, sigma255=5.0, tile=None)(frames)
    assert np.allclose(out, frames, atol=1e-6)  # every frame restored once, in order
    seen = [[round((v + 1) / 2 * 20) for v in call] for call in model.calls]
    assert seen[0] == [0, 1, 2, 3, 4, 5, 6]           # 5 outputs + 2 frames of lookahead
    assert seen[1][:2] == [3, 4]                       # the previous window's last two outputs as anchors
    assert seen[1][2:] == [5, 6, 7, 8, 9]


def test_start_index_makes_the_noise_independent_of_call_order():
    torch.manual_seed(0)
    model = _window_model().eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    meta = {"task": "sr", "scale": 2, "inference": {"window": 4, "anchors": 1, "steps": 2, "start_sigma": 0.2,
                                                     "sampler": "euler", "sigma_floor": 0.004}}
    frames = _clip(t=4, size=16).permute(0, 2, 3, 1).numpy()
    a = DiffusionUpscaler(model, meta, tile=None)
    a(frames[:2], start_index=0)
    first = a(frames[2:], start_index=2)
    b = DiffusionUpscaler(model, meta, tile=None)
    again = b(frames[2:], start_index=2)
    assert np.array_equal(first, again)
    assert not np.array_equal(again, b(frames[2:], start_index=3))


def test_tiles_are_few_and_even():
    from restore.diffusion.infer import _spans

    size, starts = _spans(856, 512, 32, 8)
    assert len(starts) == 2 and size % 8 == 0 and size < 512 and starts[-1] + size == 856
    assert starts[1] < size - 32  # the two tiles overlap by at least the requested overlap
    assert _spans(480, 512, 32, 8) == (480, [0])
    # every start on the network's grid (a pixel-unshuffling network reads phases from it)
    for length in (864, 1712, 2560):
        size, starts = _spans(length, 384, 16, 16)
        assert all(s % 16 == 0 for s in starts) and starts[-1] + size == length and size % 16 == 0


@pytest.mark.parametrize("task, extra", [("denoise", {}), ("sr", {"scale": 2})])
def test_loader_batches_expand_to_the_full_batch(task, extra):
    from restore.diffusion.data import Sequence
    from restore.diffusion.pairs import make_batch
    from restore.diffusion.train import compact, expand
    from restore.diffusion.trainconfig import TrainConfig

    frames = (np.random.default_rng(0).random((12, 48, 48, 3)) * 255).astype(np.uint8)
    cfg = TrainConfig(task=task, frames=4, patch=32, batch=6, p_anchor=0.9, **extra)
    full = make_batch(task, [Sequence("s", frames)], cfg, np.random.default_rng(3))
    assert (full["loss_mask"] == 0).any()  # some chunks carry anchors
    back = expand(compact(full), torch.device("cpu"))
    assert set(back) == set(full)
    for key in full:
        assert torch.allclose(back[key].float(), full[key].float(), atol=1e-3), key


@pytest.mark.parametrize("codec", ["libx264", "libx265", "mpeg2video", "mpeg4"])
def test_codec_degradation_is_a_real_reproducible_encode(codec):
    import cv2

    base = np.random.default_rng(0).random((5, 64, 64, 3)).astype(np.float32)
    clean = torch.from_numpy(np.stack([cv2.GaussianBlur(f, (7, 7), 2) for f in base])).permute(0, 3, 1, 2)
    chain = build_chain([{"name": "codec", "codecs": [codec], "crf": [40, 40], "bits_per_pixel": [0.05, 0.05]}])
    a, state = chain(clean, np.random.default_rng(1))
    b, _ = chain(clean, np.random.default_rng(1))
    assert state["codec"].startswith(codec)
    assert a.shape == clean.shape and torch.equal(a, b)
    err = float((a - clean).abs().mean()) * 255
    assert 0.5 < err < 40  # damaged, but still the same pictures


def test_sr_config_must_downscale_by_its_scale(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"task": "sr", "scale": 4, "patch": 64,
                                    "degradations": [{"name": "bicubic_down", "scale": 2}]}))
    with pytest.raises(ConfigError, match="bicubic_down with scale 4"):
        load_train_config(path)


def _write_video(path, frames, codec="ffv1", **opts):
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
        stream.options = {k: str(v) for k, v in opts.items()}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode())


def _smooth_frames(n=6, h=48, w=64):
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur((rng.random((h * 2, w * 3, 3)) * 255).astype(np.uint8), (5, 5), 1.5)
    return np.stack([np.ascontiguousarray(base[i:i + h, 8 * i:8 * i + w]) for i in range(n)])


def test_device_clips_cut_what_host_clips_cut():
    from restore.diffusion.data import Sequence
    from restore.diffusion.device_clips import DeviceClips
    from restore.diffusion.pairs import HostClips, make_batch
    from restore.diffusion.trainconfig import TrainConfig

    frames = (np.random.default_rng(0).random((10, 40, 56, 3)) * 255).astype(np.uint8)
    seqs = [Sequence("a", frames), Sequence("b", frames[:, ::-1].copy())]
    for task, extra in (("denoise", {}), ("sr", {"scale": 2})):
        cfg = TrainConfig(task=task, frames=4, patch=32, batch=5, **extra)
        host = make_batch(task, HostClips(seqs), cfg, np.random.default_rng(5))
        dev = make_batch(task, DeviceClips(seqs, torch.device("cpu")), cfg, np.random.default_rng(5))
        for key in host:
            assert torch.allclose(host[key], dev[key], atol=1e-5), (task, key)


def test_encoded_sources_pair_each_encode_with_its_clean_frames(tmp_path):
    from restore.diffusion.data import load_sources
    from restore.diffusion.pairs import HostClips

    clean = _smooth_frames()
    (tmp_path / "clean").mkdir()
    (tmp_path / "bank").mkdir()
    _write_video(tmp_path / "clean" / "c.mkv", clean)
    _write_video(tmp_path / "bank" / "c.mkv~x264-crf40.mkv", clean, "libx264", crf=40)
    seqs = load_sources([{"path": str(tmp_path / "bank" / "*.mkv"), "kind": "encoded",
                          "clean": str(tmp_path / "clean")}])
    assert len(seqs) == 1 and [lb for lb, _ in seqs[0].encoded] == ["x264-crf40"]
    enc = seqs[0].encoded[0][1].astype(float)
    same = np.abs(enc - seqs[0].frames).mean()
    shifted = np.abs(enc[1:] - seqs[0].frames[:-1]).mean()
    assert 0 < same < shifted  # the encode lines up with its own frames, not its neighbours'

    chain = build_chain([{"name": "encoded"}])
    x0, state = HostClips(seqs)(3, 32, np.random.default_rng(0))
    out, state = chain(x0, np.random.default_rng(0), state)
    assert state["codec"] == "x264-crf40" and out.shape == x0.shape
    assert 0 < float((out - x0).abs().mean()) * 255 < 3 * same
    with pytest.raises(ValueError, match="sources of kind 'encoded'"):
        chain(x0, np.random.default_rng(0))


def test_an_encode_pairs_with_a_clean_folder_of_frames(tmp_path):
    import cv2

    from restore.diffusion.data import load_sources

    clean = _smooth_frames()
    folder = tmp_path / "clean" / "shot"
    folder.mkdir(parents=True)
    for i, f in enumerate(clean):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    (tmp_path / "bank").mkdir()
    _write_video(tmp_path / "bank" / "shot~x264-crf40.mkv", clean, "libx264", crf=40)
    seqs = load_sources([{"path": str(tmp_path / "bank" / "*.mkv"), "kind": "encoded",
                          "clean": str(tmp_path / "clean")}])
    assert len(seqs) == 1 and seqs[0].name == "shot"
    np.testing.assert_array_equal(seqs[0].frames, clean)  # the folder's frames, in order, unchanged
    enc = seqs[0].encoded[0][1].astype(float)
    assert 0 < np.abs(enc - clean).mean() < np.abs(enc[1:] - clean[:-1]).mean()


def test_a_source_weight_sets_how_often_its_clips_are_drawn(tmp_path):
    import cv2

    from restore.diffusion.data import load_sources, pick_sequence

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i, f in enumerate(_smooth_frames()):
            cv2.imwrite(str(tmp_path / name / f"{i:05d}.png"), f)
    seqs = load_sources([{"path": str(tmp_path / "a"), "kind": "frames"},
                         {"path": str(tmp_path / "b"), "kind": "frames", "weight": 3}])
    assert [(s.name, s.weight) for s in seqs] == [("a", 1.0), ("b", 3.0)]
    rng = np.random.default_rng(0)
    drawn = [pick_sequence(seqs, rng).name for _ in range(4000)]
    assert 0.72 < drawn.count("b") / len(drawn) < 0.78  # 3 : 1 for clips of the same length


def test_encodes_are_cut_on_the_codec_block_grid_on_host_and_device():
    from restore.diffusion.data import CODEC_GRID, Sequence, random_clip_encoded
    from restore.diffusion.device_clips import DeviceClips

    rng = np.random.default_rng(0)
    # frames that record their own coordinates: the cut's first pixel tells where it was taken
    ys, xs = np.meshgrid(np.arange(72), np.arange(100), indexing="ij")
    frames = np.stack([np.stack([ys, xs, np.full_like(ys, t)], -1) for t in range(6)]).astype(np.uint8)
    seq = Sequence("a", frames, encoded=(("x264-crf40", frames.copy()),))
    plain = Sequence("b", frames)
    corners = {"host": set(), "device": set(), "clean": set()}
    dev = DeviceClips([seq], torch.device("cpu"))
    for i in range(40):
        clip, (label, enc) = random_clip_encoded([seq], 3, 32, np.random.default_rng(i))
        corners["host"].add(tuple(int(v) % CODEC_GRID for v in clip[0].reshape(-1, 3).min(0)[:2]))
        dclip, state = dev(3, 32, np.random.default_rng(i))
        corner = (dclip[0] * 255).round().reshape(3, -1).min(1).values[:2]
        corners["device"].add(tuple(int(v) % CODEC_GRID for v in corner))
        corners["clean"].add(int(random_clip_encoded([plain], 3, 32, np.random.default_rng(i))[0][0].min()) % CODEC_GRID)
    assert corners["host"] == corners["device"] == {(0, 0)}
    assert len(corners["clean"]) > 1  # clean-only clips keep every offset


def test_encoded_source_without_its_clean_file_is_a_clear_error(tmp_path):
    from restore.diffusion.data import load_sources
    from restore.errors import MediaError

    _write_video(tmp_path / "gone.mkv~x264-crf30.mkv", _smooth_frames(), "libx264", crf=30)
    with pytest.raises(MediaError, match="clean source"):
        load_sources([{"path": str(tmp_path / "*.mkv"), "kind": "encoded", "clean": str(tmp_path / "clean")}])
