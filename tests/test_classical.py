"""Classical methods: each must beat its degraded input (or a naive baseline) on generated clips."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import restore.methods  # noqa: F401  (registers the built-in methods)
from restore import registry
from restore.metrics import psnr as P
from restore.ops.flow import dis_flow, interpolate_pair, occlusion_mask, warp
from restore.ops.noise import estimate_noise_sigma
from restore.registry import MethodOptions
from tests.media import synthetic_frames


def psnr(a, b) -> float:
    return P.psnr(np.asarray(a), np.asarray(b), peak=1.0)


def panning_texture(n=8, h=48, w=64, dx=1.5, dy=0.75, seed=0) -> np.ndarray:
    """(n, h, w, 3) float32 frames of a detailed texture translating by (dx, dy) px per frame."""
    rng = np.random.default_rng(seed)
    H, W = h + int(n * abs(dy)) + 16, w + int(n * abs(dx)) + 16
    coarse = cv2.resize(rng.random((H // 8, W // 8, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(rng.random((H, W, 3)).astype(np.float32), (0, 0), 1.0)
    tex = np.clip(0.6 * coarse + 0.8 * (fine - 0.5) + 0.2, 0, 1)
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, t * dx + 4], [0, 1, t * dy + 4]])
        frames.append(cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP))
    return np.clip(np.stack(frames), 0, 1).astype(np.float32)


def add_noise(frames, sigma, seed=1):
    rng = np.random.default_rng(seed)
    return np.clip(frames + rng.normal(0, sigma / 255, frames.shape), 0, 1).astype(np.float32)


def make(task, name, **kw):
    return registry.get(task, name, kw.get("scale", 1)).factory(MethodOptions(**kw))


def test_registry_lists_the_classical_methods():
    got = {(s.task, s.name): s for s in registry.methods() if s.family == "classical"}
    assert set(got) == {("deblock", "dct"), ("denoise", "nlmeans"), ("upscale", "bicubic"), ("upscale", "lanczos"),
                        ("interpolate", "blend"), ("interpolate", "dis")}
    assert got[("upscale", "lanczos")].scales == (2, 4)


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        registry.register("denoise", "nlmeans", description="again", family="classical")(lambda opts: None)
    assert registry.get("denoise", "nlmeans").description != "again"


@pytest.mark.parametrize("sigma", [10, 25])
def test_noise_sigma_estimate(sigma):
    clean = panning_texture(6)
    assert estimate_noise_sigma(clean) < 5  # fine texture reads as a little noise
    est = estimate_noise_sigma(add_noise(clean, sigma))
    assert abs(est - sigma) < 0.15 * sigma
    # integer frames are read on their own scale
    u8 = (add_noise(clean, sigma) * 255).round().astype(np.uint8)
    assert abs(estimate_noise_sigma(u8) - sigma) < 0.15 * sigma


def test_noise_sigma_estimate_is_not_fooled_by_noise_clipped_at_black_and_white():
    # half the frame near black, half near white: 8-bit clipping shrinks the noise there, and
    # counting those blocks read sigma 50 as about 40
    rng = np.random.default_rng(3)
    h, w = 96, 128
    level = np.where(np.arange(w) < w // 2, 12.0, 243.0)[None, :, None]
    middle = np.full((h, w, 3), 128.0)
    frames = []
    for i in range(4):
        base = np.where(np.arange(h)[:, None, None] < h // 3, middle, level)  # a third mid-grey
        frames.append(np.clip(np.rint(base + rng.normal(0, 50, (h, w, 3))), 0, 255).astype(np.uint8))
    assert abs(estimate_noise_sigma(np.stack(frames)) - 50) < 0.1 * 50


@pytest.mark.parametrize("strength", [25.0, None])
def test_nlmeans_improves_psnr_at_sigma_25(strength):
    clean = panning_texture(7)
    noisy = add_noise(clean, 25)
    out = make("denoise", "nlmeans", strength=strength)(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    gain = psnr(out, clean) - psnr(noisy, clean)
    assert gain > 3.0, gain  # a dense texture: NLM has few similar patches


def test_nlmeans_on_smooth_content_and_tiny_frames():
    clean = synthetic_frames(5, 64, 48).astype(np.float32) / 255
    noisy = add_noise(clean, 25)
    den = make("denoise", "nlmeans", strength=25)
    assert psnr(den(noisy), clean) - psnr(noisy, clean) > 8.0
    # odd and degenerate sizes go through unchanged in shape
    for h, w, t in [(5, 7, 3), (1, 1, 2), (48, 64, 1)]:
        assert den(np.full((t, h, w, 3), 0.5, np.float32)).shape == (t, h, w, 3)


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("name", ["bicubic", "lanczos"])
def test_upscale_beats_nearest_neighbour(name, scale):
    hr = panning_texture(3, h=64, w=96)
    # Degrade with a bicubic downscale (the usual "BI" degradation of SR benchmarks).
    lr = np.stack([cv2.resize(f, (96 // scale, 64 // scale), interpolation=cv2.INTER_CUBIC) for f in hr])
    up = make("upscale", name, scale=scale)
    assert up.scale == scale
    out = up(lr)
    assert out.shape == hr.shape and out.dtype == np.float32
    nearest = np.stack([cv2.resize(f, (96, 64), interpolation=cv2.INTER_NEAREST) for f in lr])
    assert psnr(out, hr) > psnr(nearest, hr) + 1.0


def test_upscale_rejects_unsupported_scale():
    from restore.errors import ConfigError

    with pytest.raises(ConfigError):
        registry.get("upscale", "bicubic", 3)


def _interp_gains(frames):
    """PSNR of repetition, blend and DIS for every odd frame rebuilt from its even neighbours."""
    a, b, mid = frames[0:-2:2], frames[2::2], frames[1:-1:2]
    rep = psnr(a, mid)
    bl = psnr(make("interpolate", "blend")(a, b, 0.5), mid)
    dis = psnr(make("interpolate", "dis")(a, b, 0.5), mid)
    return rep, bl, dis


def test_interpolation_on_panning_texture():
    rep, bl, dis = _interp_gains(panning_texture(9, h=64, w=96, dx=3.0, dy=1.5))
    assert bl > rep + 1.0
    assert dis > bl + 5.0


def test_interpolation_on_moving_shapes_with_occlusions():
    # Overlapping shapes moving over a drifting gradient: occlusions and disocclusions.
    frames = synthetic_frames(17, 96, 64, seed=3).astype(np.float32) / 255
    # Every second frame, so the motion between the frames used is larger.
    rep, bl, dis = _interp_gains(frames[::2])
    assert bl > rep + 1.0
    assert dis > bl + 5.0
    # Full-strength occlusion weighting over-trusts the forward-backward check; half strength
    # (the default) is better here, as on real footage (see interpolate_pair).
    f = frames[::2]
    full = np.mean([psnr(interpolate_pair(f[k], f[k + 2], 0.5, occlusion_weight=1.0), f[k + 1]) for k in (0, 2, 4)])
    half = np.mean([psnr(interpolate_pair(f[k], f[k + 2], 0.5), f[k + 1]) for k in (0, 2, 4)])
    assert half > full + 0.1


def test_interpolation_at_other_times_and_batch_shapes():
    frames = panning_texture(5, dx=2.0, dy=0.0)
    dis = make("interpolate", "dis")
    # frames 0 and 4, times 1/4, 2/4, 3/4 -> frames 1, 2, 3
    for k in (1, 2, 3):
        out = dis(frames[[0]], frames[[4]], k / 4)
        assert out.shape == (1, *frames.shape[1:])
        assert psnr(out, frames[[k]]) > psnr(frames[[0 if k < 2 else 4]], frames[[k]]) + 5
    # tiny frames fall back to zero flow (a blend) instead of failing
    tiny = np.random.default_rng(0).random((2, 5, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(dis(tiny[:1], tiny[1:], 0.5)[0], 0.5 * (tiny[0] + tiny[1]), atol=1e-5)
    # OpenCV's DIS refuses frames with neither side reaching 12 (an 8x8 tile of a 7x5 clip)
    for h, w in ((8, 8), (11, 11), (8, 12)):
        assert dis_flow(np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)).shape == (h, w, 2)


def test_thin_frames_get_a_flow_instead_of_crashing_the_process():
    # OpenCV's DIS dies with SIGSEGV on e.g. 24x640 frames (an x2 of a 12-line strip, a thin
    # letterbox tile): run it in a child, so a crash fails this test instead of the suite
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from restore.ops.flow import dis_flow\n"
        "from tests.test_classical import panning_texture\n"
        "for h, w in ((24, 640), (12, 96), (16, 300), (10, 50)):\n"
        "    f = panning_texture(2, h=h, w=w, dx=2.0, dy=0.0)\n"
        "    for preset in ('ultrafast', 'fast', 'medium'):\n"
        "        flow = dis_flow(f[0], f[1], preset)\n"
        "        assert flow.shape == (h, w, 2) and flow.flags.c_contiguous, (h, w, preset)\n"
        "        if h >= 16:\n"
        "            mid = np.median(flow[2:-2, 8:-8].reshape(-1, 2), axis=0)\n"
        "            assert abs(mid[0] + 2) < 0.5 and abs(mid[1]) < 0.5, (h, w, preset, mid)\n"
        "print('ok')\n")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, (r.returncode, r.stderr[-2000:])


def test_flow_utilities_recover_a_known_translation():
    f = panning_texture(2, h=64, w=96, dx=3.0, dy=1.0)
    flow = dis_flow(f[0], f[1])
    inner = flow[8:-8, 8:-8]
    # frame1(x) = tex(x + 3); frame0(x) = frame1(x - 3) -> flow from 0 to 1 is (-3, -1)
    assert np.allclose(np.median(inner.reshape(-1, 2), axis=0), [-3.0, -1.0], atol=0.2)
    back = warp(f[1], flow)
    assert psnr(back[8:-8, 8:-8], f[0][8:-8, 8:-8]) > 30
    occ = occlusion_mask(flow, dis_flow(f[1], f[0]))
    assert occ.shape == f.shape[1:3] and occ[8:-8, 8:-8].mean() < 0.05
    mid = interpolate_pair(f[0], f[1], 0.5)
    assert mid.shape == f[0].shape and mid.dtype == np.float32


def _square_over_texture(h=64, w=96, shift=16, scale=1, seed=0):
    """Frames 0, 1/2, 1 of a textured square moving `shift` px right over a static textured
    background, and the exact flows 0 -> 1 and 1 -> 0 (so only the projection is under test)."""
    rng = np.random.default_rng(seed)
    h, w, shift, side, top, left = h * scale, w * scale, shift * scale, 20 * scale, 22 * scale, 20 * scale
    bg = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.5 * scale) * 0.6
    tex = 0.4 + cv2.GaussianBlur(rng.random((side, side, 3)).astype(np.float32), (0, 0), 1.0 * scale) * 0.6

    def frame(x0):
        f = bg.copy()
        f[top:top + side, x0:x0 + side] = tex
        return f

    f01 = np.zeros((h, w, 2), np.float32)
    f01[top:top + side, left:left + side, 0] = shift
    f10 = np.zeros((h, w, 2), np.float32)
    f10[top:top + side, left + shift:left + shift + side, 0] = -shift
    return frame(left), frame(left + shift // 2), frame(left + shift), f01, f10


def test_motion_is_projected_to_where_the_content_is_at_t():
    from restore.ops.flow import project_motion

    f0, mid, f1, f01, f10 = _square_over_texture()
    motion, cover = project_motion(f01, 0.5, f0, f1)
    row = 30
    # the square (x 20..39 at t=0, 36..55 at t=1) sits at 28..47 halfway: its motion is there,
    # including in front of where it started, where the flow of frame 0 at the same pixel is 0
    np.testing.assert_allclose(motion[row, 28:48, 0], 16, atol=1e-3)
    assert (cover[row, 28:48] > 0.5).all()
    # where the square was and no longer is (x 20..27), nothing of frame 0 lands: a hole
    assert (cover[row, 20:28] < 1e-3).all()
    # the background in front, covered by the square halfway, lost the collision to it
    np.testing.assert_allclose(motion[row, 56:, 0], 0, atol=1e-3)
    # with the exact flows, the interpolated frame is right; Super SloMo's per-pixel approximation
    # of the flows at t (which this replaced) smeared the square's edges: 25.8 dB
    assert psnr(interpolate_pair(f0, f1, 0.5, f01, f10), mid) > 31


def test_large_frames_project_motion_at_reduced_size(monkeypatch):
    from restore.ops import flow

    f0, mid, f1, f01, f10 = _square_over_texture(scale=8)  # 768x512: above _PROJECT_MAX_PIXELS
    assert f0.shape[0] * f0.shape[1] > flow._PROJECT_MAX_PIXELS
    reduced = interpolate_pair(f0, f1, 0.5, f01, f10)
    monkeypatch.setattr(flow, "_PROJECT_MAX_PIXELS", 10 ** 9)
    full = interpolate_pair(f0, f1, 0.5, f01, f10)
    assert psnr(full, mid) > 31
    assert psnr(reduced, mid) > psnr(full, mid) - 1.0


def test_inside_frame_fades_over_the_margin():
    from restore.ops.flow import inside_frame

    flow = np.zeros((4, 10, 2), np.float32)
    flow[0, :, 0] = -np.arange(10) - 1.0   # row 0: every sample 1 px left of the frame
    flow[1, :, 0] = -np.arange(10) - 0.5   # row 1: half a pixel outside
    flow[2, :, 1] = 5.0                     # rows 2-3: below the frame's last row (3) or not
    v = inside_frame(flow, margin=2.0)
    np.testing.assert_allclose(v[0], 0.5)
    np.testing.assert_allclose(v[1], 0.75)
    np.testing.assert_allclose(v[2], 0.0)
    np.testing.assert_allclose(v[3], 1.0)
    assert set(np.unique(inside_frame(flow, margin=0))) == {0.0, 1.0}


def _pan_with_exact_flows(dx=6.0, dy=0.0):
    """Frames 0, 1, 2 of a pan whose new content enters at the right edge, and the exact flows
    between frames 0 and 2."""
    f = panning_texture(n=3, h=48, w=80, dx=dx, dy=dy)
    f02 = np.broadcast_to(np.float32([-2 * dx, -2 * dy]), (48, 80, 2)).copy()
    return f[0], f[1], f[2], f02, -f02


def test_blend_takes_the_in_frame_sample_where_content_enters():
    f0, mid, f1, f01, f10 = _pan_with_exact_flows()
    ruled = interpolate_pair(f0, f1, 0.5, f01, f10)
    plain = interpolate_pair(f0, f1, 0.5, f01, f10, edge_margin=None)
    edge = (slice(None), slice(-8, None))  # frame 0 has no sample of these columns: they entered
    inner = (slice(None), slice(8, -8))
    assert psnr(ruled[edge], mid[edge]) > psnr(plain[edge], mid[edge]) + 6
    np.testing.assert_allclose(ruled[inner], plain[inner], atol=1e-6)


def test_interpolator_applies_the_edge_rule_its_hints_leave_out(monkeypatch):
    """The shipped model was trained on blends without the frame-edge rule: its hints still leave
    it out, and the rule's change of the blend is added to the model's output."""
    from restore.diffusion import tasks

    f0, mid, f1, _, _ = _pan_with_exact_flows()
    model = make("interpolate", "diffusion", seed=1)
    ruled = model(f0[None], f1[None], 0.5)[0]
    monkeypatch.setattr(tasks, "edge_weights", lambda w0, w1, *a, **k: (w0, w1))
    plain = make("interpolate", "diffusion", seed=1)(f0[None], f1[None], 0.5)[0]
    edge, inner = (slice(None), slice(-8, None)), (slice(None), slice(8, -8))
    assert psnr(ruled[edge], mid[edge]) > psnr(plain[edge], mid[edge]) + 3
    np.testing.assert_allclose(ruled[inner], plain[inner], atol=1e-5)
