"""Correctness of restore.metrics against reference implementations (ffmpeg, scikit-image, lpips)."""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from restore.errors import ConfigError, MediaError
from restore.metrics import psnr as P
from restore.metrics.bdrate import BDWarning, bd
from restore.metrics.score import ScoreWarning, score
from restore.metrics.ssim import ssim, ssim_skimage
from tests.media import make_audio_only, make_clip, synthetic_frames

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg CLI not installed")
DATA = Path(__file__).parent / "data"


def _ff(*args):
    subprocess.run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", *args], check=True)


def _ffmpeg_psnr(dist: Path, ref: Path, tmp: Path):
    """ffmpeg's psnr filter: per-frame stats file and the sequence line (main=dist, ref=ref)."""
    stats = tmp / f"{dist.stem}_psnr.txt"
    out = subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref),
                          "-lavfi", f"psnr=stats_file={stats}", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    line = re.search(r"PSNR (y:.*)", out).group(1)
    seq = {k: float(v) for k, v in re.findall(r"(\w+):(\S+)", line)}
    frames = []
    for row in stats.read_text().splitlines():
        kv = dict(re.findall(r"(\w+):(\S+)", row))
        frames.append({k: float(kv[k]) for k in ("psnr_avg", "psnr_y", "psnr_u", "psnr_v")})
    return seq, frames


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """8-bit 4:2:0 and 10-bit 4:2:0 (reference lossless FFV1, distorted lossy) at 160x120, 10 frames."""
    if FFMPEG is None:
        pytest.skip("ffmpeg CLI not installed")
    tmp = tmp_path_factory.mktemp("psnr")
    src = "testsrc2=s=160x120:r=25:d=0.4"
    _ff("-f", "lavfi", "-i", src, "-pix_fmt", "yuv420p", "-c:v", "ffv1", str(tmp / "ref8.mkv"))
    _ff("-i", str(tmp / "ref8.mkv"), "-c:v", "libx264", "-qp", "32", "-pix_fmt", "yuv420p", str(tmp / "dist8.mkv"))
    _ff("-f", "lavfi", "-i", src, "-pix_fmt", "yuv420p10le", "-c:v", "ffv1", str(tmp / "ref10.mkv"))
    # 10-bit distortion: noise added, kept lossless so the code values are exactly what was made
    _ff("-i", str(tmp / "ref10.mkv"), "-vf", "format=yuv420p10le,noise=alls=12:allf=t,gblur=sigma=0.6",
        "-c:v", "ffv1", "-pix_fmt", "yuv420p10le", str(tmp / "dist10.mkv"))
    return tmp


@needs_ffmpeg
def test_yuv_psnr_of_an_rgb_reference_against_a_yuv_encode_matches_ffmpeg(tmp_path):
    # ffmpeg tags RGB "pc"; converted by that tag the reference came out full-range YUV against
    # the encode's TV range (Y 4 dB off on real footage). ffmpeg's scale makes TV range.
    ref, dist = tmp_path / "rgb.mkv", tmp_path / "enc.mkv"
    _ff("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=0.2", "-pix_fmt", "bgr0", "-c:v", "ffv1", str(ref))
    _ff("-i", str(ref), "-c:v", "libx264", "-qp", "20", "-pix_fmt", "yuv420p", str(dist))
    out = subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref), "-lavfi",
                          "[0:v]format=yuv444p[a];[1:v]format=yuv444p[b];[a][b]psnr", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    seq = {k: float(v) for k, v in re.findall(r"(\w+):(\S+)", re.search(r"PSNR (y:.*)", out).group(1))}
    with pytest.warns(ScoreWarning, match="measured as planar yuv444p"):
        rep = score(ref, dist, metrics=("psnr",), psnr_mode="yuv", align="none")
    # Y only: chroma is upsampled differently from ffmpeg's default (bicubic here), which on the
    # test pattern's saturated edges moves U and V (on camera footage they agree to 0.01 dB)
    assert rep.aggregates["psnr_y"] == pytest.approx(seq["y"], abs=0.01)


@needs_ffmpeg
@pytest.mark.parametrize("bits", [8, 10])
def test_yuv_psnr_matches_ffmpeg(pairs, bits):
    ref, dist = pairs / f"ref{bits}.mkv", pairs / f"dist{bits}.mkv"
    seq, frames = _ffmpeg_psnr(dist, ref, pairs)
    rep = score(ref, dist, metrics=("psnr",), psnr_mode="yuv", align="none")
    assert rep.settings["psnr_peak"] == 2 ** bits - 1
    assert rep.frames_scored == len(frames) == 10
    # the sequence line has 6 decimals: the same number, not just close
    for plane in ("y", "u", "v"):
        assert rep.aggregates[f"psnr_{plane}"] == pytest.approx(seq[plane], abs=2e-6)
    assert rep.aggregates["psnr"] == pytest.approx(seq["average"], abs=2e-6)
    # ffmpeg's min/max are per-frame averages; its stats file has 2 decimals
    assert rep.summary["psnr"]["min"] == pytest.approx(seq["min"], abs=0.01)
    assert rep.summary["psnr"]["max"] == pytest.approx(seq["max"], abs=0.01)
    for row, ff in zip(rep.frames, frames):
        assert row["psnr"] == pytest.approx(ff["psnr_avg"], abs=0.01)
        for plane in ("y", "u", "v"):
            assert row[f"psnr_{plane}"] == pytest.approx(ff[f"psnr_{plane}"], abs=0.01)
    if bits == 8:  # x264 frame qualities vary: PSNR of the mean MSE != mean of per-frame PSNR
        assert rep.aggregates["psnr"] != pytest.approx(rep.aggregates["psnr_frame_mean"], abs=1e-3)


def test_plane_weights_follow_pixel_counts():
    y, u, v = np.zeros((8, 8)), np.zeros((4, 4)), np.zeros((4, 4))
    assert P.plane_weights([y, u, v]).tolist() == [4 / 6, 1 / 6, 1 / 6]


def test_identical_frames_rule():
    acc = P.PSNRAccumulator(("y",), 255.0)
    assert math.isinf(acc.add(0.0)["psnr"])           # per frame: inf
    acc.add(1.0)
    s = acc.summary()
    assert s["psnr"] == pytest.approx(10 * math.log10(255 ** 2 / 0.5))  # mean MSE 0.5: finite
    assert s["psnr_frame_mean"] == pytest.approx((100.0 + 10 * math.log10(255 ** 2)) / 2)  # inf capped at 100
    all_same = P.PSNRAccumulator(("y",), 255.0)
    all_same.add(0.0); all_same.add(0.0)
    assert math.isinf(all_same.summary()["psnr"]) and all_same.summary()["psnr_frame_mean"] == 100.0


def test_y601_psnr_and_crop_border():
    ref = np.full((32, 32, 3), 128, np.uint8)
    dist = ref + np.uint8(1)
    # every RGB channel +1/255 moves BT.601 Y by (65.481 + 128.553 + 24.966) / 255 = 219/255 on 0..255
    assert P.psnr_y(ref, dist) == pytest.approx(20 * math.log10(255 / (219 / 255)), abs=1e-6)
    assert P.psnr_rgb(ref, dist) == pytest.approx(20 * math.log10(255), abs=1e-6)
    border = ref.copy(); border[:2] = 0; border[:, -2:] = 0
    assert math.isinf(P.psnr_y(ref, border, crop_border=2)) and P.psnr_y(ref, border) < 30
    # 16-bit RGB on its full scale gives the same number as the 8-bit one it came from
    assert P.psnr_rgb(ref.astype(np.uint16) * 257, dist.astype(np.uint16) * 257) == pytest.approx(P.psnr_rgb(ref, dist))


# ---- SSIM ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image():
    rgb = synthetic_frames(1, 96, 80, seed=3)[0]
    return P.rgb_to_y601(rgb)


def test_ssim_identity_symmetry_monotonic(image):
    rng = np.random.default_rng(0)
    assert ssim(image, image, 255) == pytest.approx(1.0, abs=1e-6)
    noisy = image + rng.normal(0, 5, image.shape)
    assert ssim(image, noisy, 255) == pytest.approx(ssim(noisy, image, 255), abs=1e-7)
    noise = rng.normal(0, 1, image.shape)
    values = [ssim(image, image + s * noise, 255) for s in (1, 2, 4, 8, 16, 32)]
    assert all(a > b for a, b in zip(values, values[1:])), values


def test_ssim_agrees_with_scikit_image_wang_settings(image):
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    gaps = []
    for sigma in (2, 10, 25):
        dist = np.clip(image + rng.normal(0, sigma, image.shape), 0, 255)
        ours, ref = ssim(image, dist, 255), ssim_skimage(image, dist, 255)
        assert ours == pytest.approx(ref, abs=1e-4)
        direct = structural_similarity(image, dist, data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False)
        assert ref == pytest.approx(direct, abs=1e-12)
        defaults = structural_similarity(image, dist, data_range=255)  # 7x7 uniform, sample covariance
        gaps.append(abs(defaults - ref))
    assert max(gaps) > 1e-2, f"the Wang settings must matter: {gaps}"
    # 10-bit code values: data_range is 1023, not the uint16 container's 65535
    a10 = np.round(image * 4).astype(np.uint16)
    b10 = np.clip(a10 + rng.normal(0, 20, a10.shape), 0, 1023).astype(np.uint16)
    assert ssim(a10, b10, 1023) == pytest.approx(ssim_skimage(a10, b10, 1023), abs=1e-4)


# ---- LPIPS --------------------------------------------------------------------------------------
def test_lpips_reproduces_official_examples():
    from PIL import Image

    from restore.metrics.lpips_metric import LPIPS

    load = lambda n: np.asarray(Image.open(DATA / "lpips" / n).convert("RGB"))
    ref, p0, p1 = load("ex_ref.png"), load("ex_p0.png"), load("ex_p1.png")
    lp = LPIPS(device="cpu", batch_size=2)
    d = lp(np.stack([ref, ref, ref]), np.stack([p0, p1, ref]))  # one batch of three
    assert round(float(d[0]), 3) == 0.722
    assert round(float(d[1]), 3) == 0.138
    assert abs(float(d[2])) < 1e-6
    # float [0, 1] input gives the same distance (scaled to [-1, 1] internally)
    assert lp(ref / 255.0, p0 / 255.0)[0] == pytest.approx(d[0], abs=1e-5)
    # stored values of the official forward, lpips.LPIPS(net="alex", version="0.1")(ref, p, normalize
    # on [-1, 1] input) with the shipped backbone: the rearranged computation keeps them to 1e-6
    assert float(d[0]) == pytest.approx(0.7218807, abs=1e-6)
    assert float(d[1]) == pytest.approx(0.1375656, abs=1e-6)


def test_lpips_equals_the_official_forward():
    """features + distance (scaling folded into conv1, fused norms, linear layers as dot products)
    against lpips.LPIPS.forward itself, on sizes that exercise every padding and pooling border,
    8-bit and 16-bit input, and the broadcast form tLP uses."""
    import torch

    from restore.metrics.lpips_metric import LPIPS, _build_model

    official = _build_model()
    lp = LPIPS(device="cpu", batch_size=2)
    rng = np.random.default_rng(7)
    a = rng.integers(0, 256, (3, 77, 131, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    b[2] = rng.integers(0, 256, b[2].shape)   # an unrelated image: a large distance
    to_t = lambda x: torch.from_numpy(np.array(x)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        want = official(to_t(a), to_t(b)).reshape(-1).numpy()
    got = lp(a, b)
    assert want.min() > 0.01 and want.max() > 0.1
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lp(a.astype(np.uint16) * 257, b.astype(np.uint16) * 257), want, atol=1e-6)
    fa, fb = lp.features(a), lp.features(b)
    np.testing.assert_allclose(lp.distance([x[:1] for x in fa], fb), lp(np.repeat(a[:1], 3, 0), b), atol=1e-6)


# ---- BD-rate ------------------------------------------------------------------------------------
RATES = [400.0, 800.0, 1600.0, 3200.0]
PSNRS = [30.1, 33.4, 36.2, 38.5]


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_bd_rate_self_and_scaled(method):
    same = bd(RATES, PSNRS, RATES, PSNRS, method=method)
    assert same.bd_rate == pytest.approx(0.0, abs=1e-9) and same.bd_quality == pytest.approx(0.0, abs=1e-9)
    cheaper = bd(RATES, PSNRS, [r * 0.8 for r in RATES], PSNRS, method=method)
    assert cheaper.bd_rate == pytest.approx(-20.0, abs=1e-6)
    assert cheaper.bd_quality > 0


def test_bd_lpips_lower_is_better():
    lp = [0.30, 0.20, 0.12, 0.07]
    better = bd(RATES, lp, [r * 0.8 for r in RATES], lp, metric="lpips", higher_is_better=False)
    assert better.bd_rate == pytest.approx(-20.0, abs=1e-6)
    assert better.bd_quality < 0  # lower LPIPS at equal rate


def test_bd_warns_on_little_overlap():
    with pytest.warns(BDWarning, match="overlap"):
        r = bd(RATES, PSNRS, RATES, [p + 6 for p in PSNRS])
    assert r.warnings and r.overlap < 0.75
    with pytest.raises(ConfigError):
        bd(RATES[:3], PSNRS[:3], RATES[:3], PSNRS[:3])


# ---- temporal -----------------------------------------------------------------------------------
def test_ewarp_static_is_zero_and_flicker_raises_it():
    from restore.metrics.temporal import TemporalMeter

    frame = synthetic_frames(1, 96, 64, seed=5)[0]
    static, flick = TemporalMeter(), TemporalMeter()
    e_static, e_flick, f_flick = [], [], []
    for t in range(6):
        r = static.add(frame, frame)
        gain = 1.0 + (0.08 if t % 2 else -0.08)
        out = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        q = flick.add(frame, out)
        if r is not None:
            e_static.append(r["ewarp"]); e_flick.append(q["ewarp"]); f_flick.append(q["flicker"])
            assert r["flicker"] == pytest.approx(0.0, abs=1e-9)
    assert max(e_static) < 1e-8
    assert min(e_flick) > 1e-4 and min(f_flick) > 0.01


def test_temporal_through_score(tmp_path):
    frames = synthetic_frames(12, 96, 64, seed=7)
    ref = make_clip(tmp_path / "ref.mkv", frames, codec="ffv1")
    flick = frames.astype(np.float32)
    flick[1::2] *= 0.85
    dist = make_clip(tmp_path / "flick.mkv", np.clip(flick, 0, 255).astype(np.uint8), codec="ffv1")
    same = score(ref, ref, temporal=True, align="none")
    bad = score(ref, dist, temporal=True, align="none")
    assert same.frames[0]["ewarp"] is None and same.summary["ewarp"]["max"] < 1e-3
    assert bad.summary["ewarp"]["mean"] > 10 * max(same.summary["ewarp"]["mean"], 1e-5)
    assert bad.summary["flicker"]["mean"] > 0.02 > same.summary["flicker"]["max"]


# ---- alignment and bad input ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("align")
    frames = synthetic_frames(30, 96, 64, seed=11)
    return tmp, frames, make_clip(tmp / "ref.mkv", frames, codec="ffv1")


def test_alignment_detects_offset(moving):
    tmp, frames, ref = moving
    late = make_clip(tmp / "late.mkv", np.concatenate([frames[:1]] * 3 + [frames]), codec="ffv1")
    with pytest.warns(ScoreWarning, match="offset"):
        rep = score(ref, late, metrics=("psnr",), psnr_mode="rgb")
    assert rep.offset == 3 and math.isinf(rep.aggregates["psnr"])
    early = make_clip(tmp / "early.mkv", frames[2:], codec="ffv1")
    with pytest.warns(ScoreWarning):
        rep = score(ref, early, metrics=("psnr",), psnr_mode="rgb")
    assert rep.offset == -2 and math.isinf(rep.aggregates["psnr"]) and rep.frames[0]["frame"] == 2
    # the same file without alignment is misaligned: finite PSNR
    with pytest.warns(ScoreWarning, match="frame count"):
        none = score(ref, early, metrics=("psnr",), psnr_mode="rgb", align="none")
    assert none.offset == 0 and none.aggregates["psnr"] < 40
    fixed = score(ref, early, metrics=("psnr",), psnr_mode="rgb", align=-2)
    assert math.isinf(fixed.aggregates["psnr"])


def test_static_clip_keeps_offset_zero(tmp_path):
    still = np.repeat(synthetic_frames(1, 64, 48, seed=2), 12, axis=0)
    a = make_clip(tmp_path / "a.mkv", still, codec="ffv1")
    assert score(a, a, metrics=("psnr",)).offset == 0


def test_different_duration_warns(moving):
    tmp, frames, ref = moving
    short = make_clip(tmp / "short.mkv", frames[:20], codec="ffv1")
    with pytest.warns(ScoreWarning) as rec:
        rep = score(ref, short, metrics=("psnr",), align="none")
    text = " ".join(str(w.message) for w in rec)
    assert "duration" in text and "frame count 20" in text
    assert rep.frames_scored == 20 and rep.frames_reference == 30 and rep.warnings


def test_size_mismatch_is_an_error_unless_scaled(moving):
    tmp, frames, ref = moving
    import cv2

    big = np.stack([cv2.resize(f, (192, 128), interpolation=cv2.INTER_CUBIC) for f in frames])
    up = make_clip(tmp / "big.mkv", big, codec="ffv1")
    with pytest.raises(MediaError, match="scale-to-reference"):
        score(ref, up)
    with pytest.warns(ScoreWarning, match="resized"):
        rep = score(ref, up, scale_to_reference=True, align="none")
    assert rep.frames_scored == 30 and rep.aggregates["psnr"] > 30
    with pytest.warns(ScoreWarning, match="resized"):
        rep = score(ref, up, scale_to_reference=True, psnr_mode="yuv", align="none")
    assert rep.aggregates["psnr"] > 30


def test_bad_inputs(tmp_path, moving):
    _, _, ref = moving
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(MediaError, match="junk.mp4"):
        score(ref, junk)
    with pytest.raises(MediaError, match="missing.mp4"):
        score(ref, tmp_path / "missing.mp4")
    audio = make_audio_only(tmp_path / "audio.m4a")
    with pytest.raises(MediaError, match="no video"):
        score(audio, ref)
    with pytest.raises(ConfigError):
        score(ref, ref, psnr_mode="hsv")
    with pytest.raises(ConfigError):
        score(ref, ref, align="sideways")


def test_tlp_and_tof_match_their_definitions(tmp_path):
    """tLP from cached features equals TecoGAN's |LPIPS(r_t-1, r_t) - LPIPS(o_t-1, o_t)| computed
    with the plain LPIPS call; tOF equals the Farneback-flow difference on the cropped field."""
    import cv2

    from restore.io import decode
    from restore.metrics.lpips_metric import LPIPS
    from restore.metrics.temporal import FARNEBACK, teco_crop

    frames = synthetic_frames(5, 80, 64, seed=9)
    rng = np.random.default_rng(3)
    out = np.clip(frames + rng.normal(0, 8, frames.shape), 0, 255).astype(np.uint8)
    ref_p = make_clip(tmp_path / "r.mkv", frames, codec="ffv1")
    out_p = make_clip(tmp_path / "o.mkv", out, codec="ffv1")
    lp = LPIPS(device="cpu", batch_size=2)   # batches of 2: tLP has to carry features across batches
    rep = score(ref_p, out_p, metrics=("psnr",), temporal=True, align="none", lpips_model=lp)
    r = [f.image for f in decode(ref_p)]
    o = [f.image for f in decode(out_p)]
    for t in range(1, 5):
        want = abs(float(lp(r[t - 1], r[t])[0]) - float(lp(o[t - 1], o[t])[0]))
        assert rep.frames[t]["tlp"] == pytest.approx(want, abs=1e-6)
        g = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (r[t - 1], r[t], o[t - 1], o[t])]
        fr = cv2.calcOpticalFlowFarneback(g[0], g[1], None, *FARNEBACK)
        fo = cv2.calcOpticalFlowFarneback(g[2], g[3], None, *FARNEBACK)
        ys, xs = teco_crop(64, 80)
        assert (ys, xs) == (slice(16, 48), slice(8, 72))     # TecoGAN's crop_8x8 of 64x80
        want_tof = np.linalg.norm(fr[ys, xs] - fo[ys, xs], axis=-1).mean()
        assert rep.frames[t]["tof"] == pytest.approx(float(want_tof), rel=1e-6)
    assert rep.frames[0]["tlp"] is None and "lpips" not in rep.frames[0]


@needs_ffmpeg
@pytest.mark.parametrize("bits", [8, 10])
def test_ssim_ffmpeg_mode_equals_ffmpeg_ssim_filter(pairs, bits):
    """--ssim-mode ffmpeg: every plane and All, per frame and for the sequence, as ffmpeg prints them."""
    ref, dist = pairs / f"ref{bits}.mkv", pairs / f"dist{bits}.mkv"
    stats = pairs / f"ssim{bits}.txt"
    err = subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref),
                          "-lavfi", f"ssim=stats_file={stats}", "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    seq = dict(re.findall(r"(\w+):([\d.]+) \(", re.search(r"SSIM (Y:.*)", err).group(1)))
    rep = score(ref, dist, metrics=("psnr", "ssim"), psnr_mode="yuv", ssim_mode="ffmpeg", align="none")
    rows = [dict(re.findall(r"(\w+):([\d.]+)", line)) for line in stats.read_text().splitlines()]
    assert len(rows) == len(rep.frames) == 10
    for mine, theirs in zip(rep.frames, rows):
        for key, name in (("ssim", "All"), ("ssim_y", "Y"), ("ssim_u", "U"), ("ssim_v", "V")):
            assert mine[key] == pytest.approx(float(theirs[name]), abs=1.5e-6)   # ffmpeg prints 6 decimals
    assert rep.summary["ssim"]["mean"] == pytest.approx(float(seq["All"]), abs=1.5e-6)
    assert rep.summary["ssim_y"]["mean"] == pytest.approx(float(seq["Y"]), abs=1.5e-6)
    with pytest.raises(ConfigError, match="--psnr-mode yuv"):
        score(ref, dist, psnr_mode="y", ssim_mode="ffmpeg")


@needs_ffmpeg
@pytest.mark.parametrize("bits", [8, 10])
def test_cli_default_is_ffmpegs_psnr_and_ssim(pairs, bits, capsys):
    """`restore score` with no mode options (psnr and ssim modes 'auto') on YUV files gives ffmpeg's
    psnr and ssim filters' numbers: the fast default is the reference tool's number, not an
    approximation of it."""
    from restore.cli.main import main

    ref, dist = pairs / f"ref{bits}.mkv", pairs / f"dist{bits}.mkv"
    seq, _ = _ffmpeg_psnr(dist, ref, pairs)
    err = subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-i", str(dist), "-i", str(ref),
                          "-lavfi", "ssim", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    ff_ssim = dict(re.findall(r"(\w+):([\d.]+) \(", re.search(r"SSIM (Y:.*)", err).group(1)))
    assert main(["score", str(ref), str(dist), "--no-lpips", "--json"]) == 0
    rep = __import__("json").loads(capsys.readouterr().out)["reports"][0]
    assert rep["psnr_mode"] == "yuv" and rep["settings"]["ssim"]["mode"] == "ffmpeg"
    agg = rep["aggregates"]
    assert agg["psnr"] == pytest.approx(seq["average"], abs=2e-6)
    for plane in ("y", "u", "v"):
        assert agg[f"psnr_{plane}"] == pytest.approx(seq[plane], abs=2e-6)
        assert agg[f"ssim_{plane}"] == pytest.approx(float(ff_ssim[plane.upper()]), abs=1.5e-6)
    assert agg["ssim"] == pytest.approx(float(ff_ssim["All"]), abs=1.5e-6)


def test_auto_modes():
    """psnr_mode / ssim_mode 'auto' (the CLI's defaults): ffmpeg's numbers on YUV, the papers' BT.601
    Y and Gaussian SSIM on 8-bit RGB sources and with a crop border; the API's defaults stay y/wang."""
    import inspect

    from restore.metrics.score import resolve_psnr_mode, resolve_ssim_mode
    from restore.metrics.sources import SourceInfo

    def info(pix_fmt, bits=8, transfer=None):
        return SourceInfo("x", 64, 48, pix_fmt, bits, 1, 1.0, 25.0, transfer)

    assert resolve_psnr_mode("auto", info("yuv420p")) == "yuv"
    assert resolve_psnr_mode("auto", info("nv12")) == "yuv"
    assert resolve_psnr_mode("auto", info("gray")) == "yuv"
    assert resolve_psnr_mode("auto", info("yuv420p10le", 10, "smpte2084")) == "yuv"
    assert resolve_psnr_mode("auto", info("gbrp10le", 10)) == "yuv"      # deep: code values, as before
    assert resolve_psnr_mode("auto", info("bgr0")) == "y"
    assert resolve_psnr_mode("auto", info("rgb24")) == "y"
    assert resolve_psnr_mode("auto", info("pal8")) == "y"
    assert resolve_psnr_mode("auto", info("yuv420p"), crop_border=4) == "y"
    assert resolve_psnr_mode("rgb", info("yuv420p")) == "rgb"
    assert resolve_ssim_mode("auto", "yuv") == "ffmpeg"
    assert resolve_ssim_mode("auto", "y") == "wang" and resolve_ssim_mode("auto", "rgb") == "wang"
    assert resolve_ssim_mode("wang", "yuv") == "wang"
    assert resolve_ssim_mode("auto", "yuv", (14, 12)) == "wang"      # too small for 8x8 chroma windows
    assert resolve_ssim_mode("auto", "yuv", (16, 16)) == "ffmpeg"
    defaults = inspect.signature(score).parameters
    assert defaults["psnr_mode"].default == "y" and defaults["ssim_mode"].default == "wang"
