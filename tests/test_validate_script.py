"""scripts/validate_models.py is a thin shell over restore.eval.run_bench: it runs the benchmark on a
data folder and writes the report where asked (the docs by default). Tiny generated data; no
weights, no ../shared, no peers needed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "validate_models.py"


def _load():
    spec = importlib.util.spec_from_file_location("validate_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_defaults_point_at_the_docs_and_the_shared_validation_data():
    vm = _load()
    args = vm.parse_args([])
    assert args.md.name == "validation.md" and args.tuning_cache.name == "validation-tuning.json"
    assert args.data is None and args.tasks is None


def test_runs_the_bench_and_writes_the_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i in range(2):
        img = cv2.resize(rng.random((6, 8, 3)).astype(np.float32), (64, 48), interpolation=cv2.INTER_CUBIC)
        (tmp_path / "val" / "images" / "set").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "val" / "images" / "set" / f"{i}.png"), np.rint(img * 255).astype(np.uint8))
    vm = _load()
    md = tmp_path / "docs" / "validation.md"
    rc = vm.main(["--data", str(tmp_path / "val"), "--tasks", "sr2", "--methods", "bicubic,lanczos",
                  "--md", str(md), "--out", str(tmp_path / "plots"), "--tuning-cache", str(tmp_path / "t.json")])
    assert rc == 0
    text = md.read_text()
    assert "| bicubic | classical |" in text and "scripts/validate_models.py --data" in text
    saved = json.loads(md.with_suffix(".json").read_text())
    assert set(saved["tasks"]["sr2"]["datasets"][0]["methods"]) == {"bicubic", "lanczos"}
    assert "](../plots/sr2.png)" in text and (tmp_path / "plots" / "sr2.png").is_file()
    assert text in capsys.readouterr().out


def test_bad_weights_dir_is_a_one_line_error(tmp_path, capsys):
    rc = _load().main(["--weights-dir", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert rc == 2 and "none" in err and err.count("\n") == 1


def test_render_rewrites_the_report_from_its_json(tmp_path, capsys):
    vm = _load()
    results = {"meta": {"command": "restore bench", "started": "then", "seconds": 1.0, "data": ["d"], "frames": 2,
                        "default_frames": 10, "methods": "all", "peers": {},
                        "machine": {"cpu": "cpu", "cpus": 2, "torch_threads": 2, "device": "cpu", "torch": "2",
                                    "python": "3"}},
               "tasks": {"sr2": {"label": "super-resolution x2 (BI)", "kind": "upscale", "datasets": [
                   {"dataset": "set", "kind": "upscale", "protocol": "BI", "scale": 2, "images": ["a"],
                    "methods": {"bicubic": {"family": "classical", "psnr_y": 30.0, "psnr_rgb": 28.0, "ssim": 0.9,
                                            "lpips": 0.2, "ewarp": "nan", "sec_per_frame": 0.01, "params": {}}},
                    "skipped": {}, "failed": {}}]}}}
    js = tmp_path / "v.json"
    js.write_text(json.dumps(results))
    md = tmp_path / "v.md"
    assert vm.main(["--render", str(js), "--md", str(md)]) == 0
    assert "| bicubic | classical | 30.000 | 28.000 | 0.9000 | 0.2000 | - |" in md.read_text()
    assert vm.main(["--render", str(tmp_path / "missing.json"), "--md", str(md)]) == 2
