"""VMAF against Netflix's expected scores for their own test vectors (tests/data/vmaf/README.md).

The expected values are the ones Netflix/vmaf's test-suite asserts (or, where marked, libvmaf
3.2.0's output for the same files); restore computes the features in floating point, libvmaf in
fixed point, so the bar is the issue's 0.05 VMAF points rather than upstream's 4 decimals.
"""
from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import pytest

from restore.metrics.vmaf import VMAFMeter, parse_models, vmaf

DATA = Path(__file__).parent / "data" / "vmaf"
TOL = 0.05

A_REF = "ref_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv"
A_DIS = "dis_test_0_1_src01_hrc00_576x324_576x324_vs_src01_hrc01_576x324_576x324_q_160x90.yuv"
B_REF, B_DIS = "sparks_ref_480x270.yuv42010le.yuv", "sparks_dis_480x270.yuv42010le.yuv"
C_REF = "refp_vmaf_hacking_investigation_0_0_akiyo_cif_notyuv_0to0_identity_vs_akiyo_cif_notyuv_0to0_multiply_q_352x288"
C_DIS = "disp_vmaf_hacking_investigation_0_0_akiyo_cif_notyuv_0to0_identity_vs_akiyo_cif_notyuv_0to0_multiply_q_352x288"


def read_yuv420(name, width, height, bits=8):
    """All planes of a raw yuv420p / yuv420p10le file: (Y, U, V) arrays of shape (T, h, w)."""
    raw = lzma.decompress((DATA / f"{name}.xz").read_bytes())
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    a = np.frombuffer(raw, dtype)
    cw, ch = width // 2, height // 2
    per = width * height + 2 * cw * ch
    a = a.reshape(-1, per)
    y = a[:, :width * height].reshape(-1, height, width)
    u = a[:, width * height:width * height + cw * ch].reshape(-1, ch, cw)
    v = a[:, width * height + cw * ch:].reshape(-1, ch, cw)
    return y, u, v


@pytest.fixture(scope="module")
def pair_a():
    return read_yuv420(A_REF, 160, 90)[0], read_yuv420(A_DIS, 160, 90)[0]


@pytest.fixture(scope="module")
def pair_b():
    return read_yuv420(B_REF, 480, 270, 10)[0], read_yuv420(B_DIS, 480, 270, 10)[0]


@pytest.fixture(scope="module")
def pair_c():
    return read_yuv420(C_REF, 352, 288)[0], read_yuv420(C_DIS, 352, 288)[0]


def test_pair_a_8bit_48_frames(pair_a):
    ref, dis = pair_a
    assert ref.shape == (48, 90, 160)
    r = vmaf(ref, dis, models=("vmaf", "vmaf_neg"))
    # python/test/quality_runner_test.py:1314 (vmaf_v0.6.1); libvmaf 3.2.0 run for the NEG model
    assert r["pooled"]["vmaf"]["mean"] == pytest.approx(92.52095888042386, abs=TOL)
    assert r["pooled"]["vmaf_neg"]["mean"] == pytest.approx(90.509594, abs=TOL)
    # the features upstream asserts (quality_runner_test.py:1291-1296): motion2 is the one that
    # exercises streaming across batches (the meter's batch is smaller than the clip)
    f = r["features"]
    assert f["motion2"].mean() == pytest.approx(1.3577417291666667, abs=5e-3)
    assert f["adm2"].mean() == pytest.approx(0.9807496975664337, abs=1e-4)
    for k, want in enumerate((0.6895391472210215, 0.9576202275437821, 0.97696930627404, 0.9829181243754922)):
        assert f[f"vif_scale{k}"].mean() == pytest.approx(want, abs=1e-4)
    assert len(r["frames"]["vmaf"]) == 48 and r["features"]["motion2"][0] == 0.0
    same = vmaf(ref, ref, models="vmaf")
    assert same["pooled"]["vmaf"]["mean"] == pytest.approx(99.30667316266532, abs=TOL)  # :1315


def test_pair_b_10bit(pair_b):
    ref, dis = pair_b
    r = vmaf(ref, dis, models="both", bits=10)
    assert r["pooled"]["vmaf"]["mean"] == pytest.approx(97.9006316, abs=TOL)        # vmafexec_test.py:589
    assert r["pooled"]["vmaf_neg"]["mean"] == pytest.approx(96.969872, abs=TOL)     # libvmaf 3.2.0 run
    assert r["features"]["motion2"].mean() == pytest.approx(0.7523686, abs=1e-3)    # :573
    assert r["features"]["adm2"].mean() == pytest.approx(0.998177, abs=1e-4)        # :574
    same = vmaf(ref, ref, models="vmaf", bits=10)
    assert same["pooled"]["vmaf"]["mean"] == pytest.approx(98.4716976, abs=TOL)     # :590


def test_pair_c_enhancement_gain_neg(pair_c):
    """A contrast boost: plain VMAF goes above 100 (clipped), NEG does not reward it."""
    ref, dis = pair_c
    r = vmaf(ref, dis, models="both")
    assert r["pooled"]["vmaf_neg"]["mean"] == pytest.approx(88.030463, abs=TOL)     # quality_runner_test.py:1447
    assert r["features"]["vmaf_unclipped"][0] == pytest.approx(132.732952, abs=TOL)  # vmafexec_test.py:641
    assert r["pooled"]["vmaf"]["mean"] == 100.0
    assert r["features"]["adm2_egl_1"][0] == pytest.approx(0.9574308606115118, abs=1e-4)  # :663
    for k, want in enumerate((0.983708, 0.997443, 0.998483, 0.999151)):             # :664-667
        assert r["features"][f"vif_scale{k}_egl_1"][0] == pytest.approx(want, abs=1e-4)


def test_batch_size_does_not_change_scores(pair_a):
    ref, dis = pair_a
    out = []
    for bs in (1, 7, 64):
        m = VMAFMeter(("vmaf",), batch_size=bs, device="cpu")
        for r, d in zip(ref[:12], dis[:12]):
            m.add(r, d)
        out.append(m.result()["frames"]["vmaf"])
    # float32 convolutions sum in a batch-dependent order: equal to ~1e-3 points, not bit-exact
    np.testing.assert_allclose(out[0], out[1], atol=5e-3)
    np.testing.assert_allclose(out[0], out[2], atol=5e-3)


def test_parse_models_and_small_frames():
    assert parse_models("both") == ("vmaf", "vmaf_neg")
    assert parse_models("neg") == ("vmaf_neg",)
    from restore.errors import ConfigError

    with pytest.raises(ConfigError, match="--vmaf"):
        parse_models("vmaf4k")
    m = VMAFMeter(("vmaf",), device="cpu")
    with pytest.raises(ValueError, match="at least 32x32"):
        m.add(np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8))


def _ffv1_from_planes(path, y, u, v):
    """A lossless FFV1 clip of raw yuv420p planes (bit-exact code values after decoding)."""
    import av

    t, h, w = y.shape
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(t):
            img = np.concatenate([y[i].ravel(), u[i].ravel(), v[i].ravel()]).reshape(h * 3 // 2, w)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="yuv420p")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="module")
def clips_a(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vmaf")
    return (_ffv1_from_planes(tmp / "a_ref.mkv", *read_yuv420(A_REF, 160, 90)),
            _ffv1_from_planes(tmp / "a_dis.mkv", *read_yuv420(A_DIS, 160, 90)))


def test_score_cli_vmaf_end_to_end(clips_a, capsys):
    """Through decoding, alignment and the report: the same numbers as on the raw planes."""
    import json

    from restore.cli.main import main

    ref, dis = clips_a
    assert main(["score", str(ref), str(dis), "--no-lpips", "--vmaf", "--psnr-mode", "yuv", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["reports"][0]
    assert rep["aggregates"]["vmaf"] == pytest.approx(92.52095888042386, abs=TOL)
    assert rep["aggregates"]["vmaf_neg"] == pytest.approx(90.509594, abs=TOL)
    assert len(rep["frames"]) == 48 and {"vmaf", "vmaf_neg"} <= set(rep["frames"][0])
    # libvmaf's psnr_y is the mean of per-frame PSNR on Y (README of the vectors: 37.481772)
    assert rep["aggregates"]["psnr_y_frame_mean"] == pytest.approx(37.481772, abs=1e-4)
    assert rep["settings"]["vmaf"]["models"] == {"vmaf": "vmaf_v0.6.1", "vmaf_neg": "vmaf_v0.6.1neg"}
    assert main(["score", str(ref), str(dis), "--no-lpips", "--no-ssim", "--vmaf", "neg"]) == 0
    text = capsys.readouterr().out
    assert "VMAF NEG" in text and "VMAF v0.6.1" not in text


def test_compare_bd_rate_on_vmaf(tmp_path, capsys):
    import json

    from restore.cli.main import main

    y, u, v = read_yuv420(A_REF, 160, 90)
    ref = _ffv1_from_planes(tmp_path / "a_ref12.mkv", y[:12], u[:12], v[:12])   # 8 encodes: keep it short
    rc = main(["compare", str(ref), "--encode", "libx264:22,28,34,40", "--encode", "libx264:24,30,36,42",
               "--preset", "ultrafast", "--vmaf", "vmaf", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert all(0 <= p["quality"]["vmaf"] <= 100 for p in res["points"])
    # higher CRF is lower rate and lower VMAF along each ladder
    first = sorted(res["points"][:4], key=lambda p: p["kbps"])
    assert [p["quality"]["vmaf"] for p in first] == sorted(p["quality"]["vmaf"] for p in first)
    assert "vmaf" in {b["metric"] for b in res["bd"]}
