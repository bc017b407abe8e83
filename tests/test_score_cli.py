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
               "--json", str(out_json), "--plot", str(out_png)])
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


def test_score_lpips_yuv_and_json_stdout(clips, capsys):
    _, ref, dist = clips
    assert main(["score", str(ref), str(dist), "--psnr-mode", "yuv", "--device", "cpu", "--json", "-"]) == 0
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
