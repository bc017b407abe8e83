"""`restore score` and `restore compare` from the command line."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from restore.cli.main import main
from tests.media import make_clip, synthetic_frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    frames = synthetic_frames(12, 96, 64, seed=4)
    ref = make_clip(tmp / "ref.mkv", frames, codec="ffv1")
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 6, frames.shape), 0, 255).astype(np.uint8)
    dist = make_clip(tmp / "noisy.mkv", noisy, codec="ffv1")
    return tmp, ref, dist


def test_score_table_csv_json_plot(clips, capsys):
    tmp, ref, dist = clips
    out_csv, out_json, out_png = tmp / "f.csv", tmp / "r.json", tmp / "p.png"
    rc = main(["score", str(ref), str(dist), str(ref), "--no-lpips", "--csv", str(out_csv),
               "--json-file", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "PSNR-Y (BT.601)" in text and "SSIM (Y)" in text and "p5" in text and "median" in text
    assert "noisy.mkv" in text and "inf" in text  # the reference against itself
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 24 and {"frame", "psnr", "ssim"} <= set(rows[0])
    assert float(rows[0]["psnr"]) < 40 and float(rows[-1]["psnr"]) == float("inf")
    data = json.loads(out_json.read_text())  # strict JSON: inf written as "inf"
    noisy, same = data["reports"]
    assert len(noisy["frames"]) == 12 and set(noisy["summary"]["psnr"]) == {"mean", "min", "p5", "median", "max"}
    assert same["aggregates"]["psnr"] == "inf" and same["summary"]["psnr"]["mean"] == 100.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_score_default_modes(tmp_path, capsys):
    """The default on YUV files is ffmpeg's PSNR and SSIM (test_metrics checks the numbers against
    ffmpeg); RGB files (the clips above) and --crop-border get the papers' BT.601 Y and Gaussian SSIM."""
    frames = synthetic_frames(6, 96, 64, seed=6)
    noisy = np.clip(frames + np.random.default_rng(1).normal(0, 6, frames.shape), 0, 255).astype(np.uint8)
    ref = make_clip(tmp_path / "ref.mkv", frames, codec="ffv1", pix_fmt="yuv420p")
    dist = make_clip(tmp_path / "dist.mkv", noisy, codec="ffv1", pix_fmt="yuv420p")
    assert main(["score", str(ref), str(dist), "--no-lpips"]) == 0
    text = capsys.readouterr().out
    assert "PSNR-YUV avg" in text and "SSIM All (ffmpeg)" in text and "8-bit code values" in text
    assert main(["score", str(ref), str(dist), "--no-lpips", "--crop-border", "4"]) == 0
    text = capsys.readouterr().out
    assert "PSNR-Y (BT.601)" in text and "SSIM (Y)" in text
    assert main(["score", str(ref), str(dist), "--no-lpips", "--psnr-mode", "yuv", "--ssim-mode", "wang"]) == 0
    text = capsys.readouterr().out
    assert "PSNR-YUV avg" in text and "SSIM (Y)" in text


def test_score_lpips_yuv_and_json_stdout(clips, capsys):
    _, ref, dist = clips
    assert main(["score", str(ref), str(dist), "--psnr-mode", "yuv", "--device", "cpu", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["reports"][0]
    assert rep["psnr_mode"] == "yuv" and 0 < rep["summary"]["lpips"]["mean"] < 1
    assert {"psnr_y", "psnr_u", "psnr_v"} <= set(rep["frames"][0])


def test_score_errors_exit_2(clips, tmp_path, capsys):
    _, ref, _ = clips
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    assert main(["score", str(ref), str(bad), "--no-lpips"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("restore: error:") and "bad.mp4" in err and "Traceback" not in err
    small = make_clip(tmp_path / "small.mkv", synthetic_frames(12, 48, 32), codec="ffv1")
    assert main(["score", str(ref), str(small), "--no-lpips"]) == 2
    assert "--scale-to-reference" in capsys.readouterr().err


def test_compare_encode_ladders(clips, capsys):
    tmp, ref, _ = clips
    png = tmp / "rq.png"
    rc = main(["compare", str(ref), "--encode", "libx264:20,26,32,38", "--encode", "libx264:22,28,34,40",
               "--preset", "ultrafast", "--keep", str(tmp / "enc"), "--plot", str(png), "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["points"]) == 8 and all(p["kbps"] > 0 for p in res["points"])
    assert {b["metric"] for b in res["bd"]} == {"psnr", "ssim"}
    assert png.read_bytes()[:4] == b"\x89PNG"
    # files given directly, grouped by --labels: the same ladder twice is BD-rate 0
    files = sorted((tmp / "enc").glob("*crf2[06]*.mp4")) + sorted((tmp / "enc").glob("*crf3[28]*.mp4"))
    assert len(files) == 4
    args = [str(f) for f in files] * 2
    assert main(["compare", str(ref), *args, "--labels", ",".join(["a"] * 4 + ["b"] * 4)]) == 0
    out = capsys.readouterr().out
    assert "BD-rate +0.00%" in out and "b vs a" in out


# ---- output files: one convention, never over an input, checked before scoring -------------------

def _no_scoring(monkeypatch):
    """Make any call to score() fail, to prove a check happened before scoring started."""
    import restore.metrics.score as score_mod

    def boom(*a, **k):
        raise AssertionError("score() ran although an output was unusable")

    monkeypatch.setattr(score_mod, "score", boom)


@pytest.mark.parametrize("option", ["--csv", "--json-file", "-o", "--plot"])
def test_score_refuses_to_overwrite_an_input(clips, capsys, monkeypatch, option):
    _, ref, dist = clips
    before = dist.read_bytes()
    _no_scoring(monkeypatch)
    assert main(["score", str(ref), str(dist), "--no-lpips", option, str(dist), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("restore: error:") and "same file as the input" in err and str(dist) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert dist.read_bytes() == before


def test_score_existing_output_needs_overwrite(clips, tmp_path, capsys, monkeypatch):
    _, ref, dist = clips
    out = tmp_path / "frames.csv"
    out.write_text("keep me\n")
    with monkeypatch.context() as m:
        _no_scoring(m)
        assert main(["score", str(ref), str(dist), "--no-lpips", "--csv", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "keep me\n"
    assert main(["score", str(ref), str(dist), "--no-lpips", "--no-ssim", "--csv", str(out), "--overwrite"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12 and "psnr" in rows[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp file left


def test_score_unwritable_output_fails_before_scoring(clips, tmp_path, capsys, monkeypatch):
    _, ref, dist = clips
    _no_scoring(monkeypatch)
    assert main(["score", str(ref), str(dist), "--no-lpips", "--plot", str(tmp_path / "nodir" / "p.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.access(ro, os.W_OK):   # root ignores the mode bits: nothing to test here
            pytest.skip("running as a user that can write anywhere")
        assert main(["score", str(ref), str(dist), "--no-lpips", "--json-file", str(ro / "r.json")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_score_same_file_for_two_outputs(clips, tmp_path, capsys, monkeypatch):
    _, ref, dist = clips
    _no_scoring(monkeypatch)
    same = tmp_path / "out.dat"
    assert main(["score", str(ref), str(dist), "--csv", str(same), "--json-file", str(same)]) == 2
    assert "its own name" in capsys.readouterr().err


def test_score_json_is_a_flag_and_old_argument_is_explained(clips, tmp_path, capsys):
    _, ref, dist = clips
    assert main(["score", str(ref), str(dist), "--no-lpips", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "--json-file" in err and not (tmp_path / "r.json").exists()
    out = tmp_path / "r.json"
    assert main(["score", str(ref), str(dist), "--no-lpips", "--json", "-o", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed


def test_info_json_flag_and_file(clips, tmp_path, capsys):
    _, ref, _ = clips
    assert main(["info", str(ref), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["streams"]
    out = tmp_path / "info.json"
    assert main(["info", str(ref), "--json-file", str(out)]) == 0
    assert json.loads(out.read_text())["streams"]
    assert main(["info", str(ref), "-o", str(ref)]) == 2
    assert "same file as the input" in capsys.readouterr().err


def test_compare_outputs_follow_the_convention(clips, tmp_path, capsys):
    tmp, ref, dist = clips
    assert main(["compare", str(ref), str(dist), "--csv", str(ref)]) == 2
    assert "same file as the input" in capsys.readouterr().err
    out_csv, out_json = tmp_path / "rq.csv", tmp_path / "rq.json"
    assert main(["compare", str(ref), str(dist), "--csv", str(out_csv), "-o", str(out_json)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 1 and float(rows[0]["kbps"]) > 0 and {"psnr", "ssim"} <= set(rows[0])
    assert json.loads(out_json.read_text())["points"][0]["path"] == str(dist)


# ---- frames no metric can score: one line, no traceback ------------------------------------------

def test_score_tiny_frames_and_oversized_crop(tmp_path, capsys):
    tiny = make_clip(tmp_path / "tiny.mkv", synthetic_frames(3, 8, 8), codec="ffv1")
    assert main(["score", str(tiny), str(tiny), "--no-lpips"]) == 2
    err = capsys.readouterr().err
    assert "8x8" in err and "11x11" in err and "tiny.mkv" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # without SSIM the 8x8 frames score fine
    assert main(["score", str(tiny), str(tiny), "--no-lpips", "--no-ssim"]) == 0
    capsys.readouterr()
    small = make_clip(tmp_path / "small.mkv", synthetic_frames(3, 48, 32), codec="ffv1")
    assert main(["score", str(small), str(small), "--no-lpips", "--crop-border", "16"]) == 2
    err = capsys.readouterr().err
    assert "--crop-border 16" in err and "48x32" in err and "Traceback" not in err
    assert main(["score", str(small), str(small), "--no-lpips", "--crop-border", "12"]) == 2
    assert "after --crop-border" in capsys.readouterr().err   # 24x8 left: under SSIM's window


# ---- temporal: tOF and tLP -------------------------------------------------------------------------

def test_temporal_tof_tlp(tmp_path, capsys):
    frames = synthetic_frames(6, 96, 64, seed=2)
    ref = make_clip(tmp_path / "moving.mkv", frames, codec="ffv1")
    frozen = make_clip(tmp_path / "frozen.mkv", np.repeat(frames[:1], 6, axis=0), codec="ffv1")
    assert main(["score", str(ref), str(ref), str(frozen), "--no-lpips", "--no-ssim", "--temporal",
                 "--align", "none", "--device", "cpu", "--json"]) == 0
    same, still = json.loads(capsys.readouterr().out)["reports"]
    assert same["frames"][0]["tof"] is None and same["frames"][0]["tlp"] is None  # frame 0: no predecessor
    assert same["summary"]["tof"]["max"] == 0.0 and same["summary"]["tlp"]["max"] == pytest.approx(0, abs=1e-6)
    # a frozen output lacks all the reference's motion: tOF is the reference's own flow magnitude
    assert still["summary"]["tof"]["mean"] > 0.05 and still["summary"]["tlp"]["mean"] > 0


# ---- HDR10: transfer stated, PSNR on the 10-bit code values -------------------------------------

def test_hdr10_pq_scored_on_10bit_code_values(tmp_path, capsys):
    from restore.metrics.sources import yuv_frames

    rng = np.random.default_rng(1)
    frames = (synthetic_frames(4, 64, 48, seed=5).astype(np.uint16) * 257)
    noisy = np.clip(frames.astype(np.int64) + rng.normal(0, 300, frames.shape), 0, 65535).astype(np.uint16)
    tags = dict(codec="ffv1", pix_fmt="yuv420p10le", color_transfer="smpte2084", color_primaries="bt2020",
                color_matrix="bt2020nc")
    ref = make_clip(tmp_path / "hdr_ref.mkv", frames, **tags)
    dist = make_clip(tmp_path / "hdr_dist.mkv", noisy, **tags)
    assert main(["score", str(ref), str(dist), "--no-lpips"]) == 0
    text = capsys.readouterr().out
    assert "PSNR-YUV" in text and "scored in: PQ (SMPTE ST 2084) signal, 10-bit code values (PSNR peak 1023)" in text
    assert main(["score", str(ref), str(dist), "--no-lpips", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)["reports"][0]
    assert rep["psnr_mode"] == "yuv" and rep["settings"]["psnr_peak"] == 1023
    assert rep["settings"]["transfer"]["reference"] == "smpte2084"
    # the number itself: PSNR of the mean MSE of the 10-bit Y plane, computed here from the planes
    a = [f.planes[0].astype(np.float64) for f in yuv_frames(ref, fmt="yuv420p10le", width=64, height=48)]
    b = [f.planes[0].astype(np.float64) for f in yuv_frames(dist, fmt="yuv420p10le", width=64, height=48)]
    assert max(x.max() for x in a) > 255   # really 10-bit values
    mse_y = np.mean([np.mean((x - y) ** 2) for x, y in zip(a, b)])
    assert rep["aggregates"]["psnr_y"] == pytest.approx(10 * np.log10(1023 ** 2 / mse_y), abs=1e-9)
    # asking for an RGB-based mode on PQ input is allowed, with a warning that says what it measures
    assert main(["score", str(ref), str(dist), "--no-lpips", "--psnr-mode", "y"]) == 0
    assert "not its 10-bit code values" in capsys.readouterr().out


# ---- batch status --csv ---------------------------------------------------------------------------

def test_batch_status_csv_refuses_manifest_and_existing(tmp_path, capsys):
    from restore.batch.manifest import MANIFEST_NAME, Manifest

    out = tmp_path / "out"
    out.mkdir()
    with Manifest(out):
        pass
    manifest = out / MANIFEST_NAME
    before = manifest.read_bytes()
    assert main(["batch", "status", str(out), "--csv", str(manifest), "--overwrite"]) == 2
    assert "same file as the input" in capsys.readouterr().err and manifest.read_bytes() == before
    existing = tmp_path / "m.csv"
    existing.write_text("old\n")
    assert main(["batch", "status", str(out), "--csv", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err and existing.read_text() == "old\n"
    assert main(["batch", "status", str(out), "--csv", str(existing), "--overwrite"]) == 0
    assert existing.read_text().splitlines()[0].startswith("path,rel,status")


def test_ladder_encodes_of_a_full_range_rgb_master_keep_its_levels(tmp_path):
    # ffmpeg tags RGB masters full range ("pc"); converting to YUV by that tag made full-range
    # YUV that went out untagged and decoded as TV range: every ladder point lost ~2 dB at once
    import av

    from restore.io import decode
    from restore.metrics.ladder import encode_ladder, parse_encode
    from restore.metrics.psnr import psnr_y

    frames = synthetic_frames(6, 96, 64, seed=4)
    ref = tmp_path / "master.mkv"
    with av.open(str(ref), "w") as out:
        st = out.add_stream("ffv1", rate=25)
        st.width, st.height, st.pix_fmt = 96, 64, "bgr0"
        st.codec_context.color_range = 2
        for f in frames:
            vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="bgr0")
            vf.color_range = 2
            out.mux(st.encode(vf))
        out.mux(st.encode())
    with av.open(str(ref)) as c:
        assert next(c.decode(video=0)).color_range == 2
    (enc,) = encode_ladder(ref, parse_encode("libx264:10"), tmp_path / "enc", preset="ultrafast")
    got = np.stack([f.image for f in decode(enc)])
    assert psnr_y(frames.reshape(-1, 96, 3), got.reshape(-1, 96, 3)) > 40
