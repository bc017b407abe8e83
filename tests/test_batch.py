"""Batch restoration: plan, manifest resume policy, failure isolation, local engine faults, CLI.

Items are processed by `recording_worker`: the real PyAV transcode worker plus a completion log
(to check "done exactly once") and faults chosen per file name (hang, die, raise) that fire on
the first attempt only (a marker file remembers it).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from restore.batch import manifest as mf
from restore.batch.plan import discover, output_name
from restore.batch.runner import BatchSettings, run_batch
from restore.batch.workers import transcode_worker
from restore.errors import ConfigError, RestoreError
from restore.io.atomic import atomic_output
from tests.media import make_clip, make_hdr10_clip

REPO = Path(__file__).resolve().parents[1]
FRAMES = 10


# ------------------------------------------------------------------------------------------
# the test worker (module level: worker processes and Ray import it by name)
# ------------------------------------------------------------------------------------------
def recording_worker(input_path: str, output_path: str, options: dict) -> dict:
    t = options["test"]
    name = os.path.basename(input_path)
    marker = Path(t["dir"]) / f"{name}.started"
    first = not marker.exists()
    if first:
        marker.write_text(str(os.getpid()))
    if first and name in t.get("hang", ()):
        with atomic_output(output_path, overwrite=True) as tmp:  # a partial output, as a real attempt leaves it
            tmp.write_bytes(b"partial")
            Path(t["dir"], f"{name}.hanging").write_text(str(os.getpid()))
            time.sleep(120)
    if first and name in t.get("die", ()):
        with atomic_output(output_path, overwrite=True) as tmp:
            tmp.write_bytes(b"partial")
            os.kill(os.getpid(), signal.SIGKILL)
    if name in t.get("raise", ()):
        raise RuntimeError(f"flaky failure of {name}")
    for victim in t.get("delete", {}).get(name, []) if isinstance(t.get("delete"), dict) else []:
        os.remove(victim)  # another input vanishes while this one runs
    result = transcode_worker(input_path, output_path, options)
    if t.get("record_gpu"):  # what Ray granted this task
        import ray

        result["gpu_ids"] = [str(g) for g in ray.get_gpu_ids()]
        result["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    with open(Path(t["dir"]) / "completed.log", "a") as f:
        f.write(f"{input_path}\n")
    return result


def resuming_worker(input_path: str, output_path: str, options: dict) -> dict:
    """enhance_worker whose first attempt dies by SIGKILL at the 40th frame write (mid-item,
    chunks already committed to the item's work folder)."""
    from restore.batch.workers import enhance_worker
    from restore.io import encode

    marker = Path(options["test"]["dir"]) / f"{os.path.basename(input_path)}.killed"
    if not marker.exists():
        marker.write_text("x")
        orig, count = encode.VideoWriter.write, [0]

        def write(self, *a, **k):
            count[0] += 1
            if count[0] == 40:
                os.kill(os.getpid(), signal.SIGKILL)
            return orig(self, *a, **k)
        encode.VideoWriter.write = write
    return enhance_worker(input_path, output_path, options)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def make_tree(root: Path) -> dict[str, Path]:
    """src/a.mp4, src/b.mp4, src/c.mp4, src/sub/d.mkv, src/sub/e.mov, src/sub/bad.mp4 (corrupt),
    src/notes.txt (not matched)."""
    src = root / "src"
    (src / "sub").mkdir(parents=True)
    clips = {}
    for i, rel in enumerate(["a.mp4", "b.mp4", "c.mp4", "sub/d.mkv", "sub/e.mov"]):
        clips[rel] = make_clip(src / rel, FRAMES, width=64, height=48, seed=i)
    (src / "sub" / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    (src / "notes.txt").write_text("not a video")
    return clips


def settings(tmp_path, **kw) -> BatchSettings:
    tmp_path = Path(tmp_path)
    test = {"dir": str(tmp_path / "t")}
    for k in ("hang", "die", "raise", "delete"):
        test[k] = kw.pop(k, {} if k == "delete" else [])
    test["record_gpu"] = kw.pop("record_gpu", False)
    (tmp_path / "t").mkdir(exist_ok=True)
    options = {"overrides": kw.pop("overrides", {}), "test": test}
    # Faults are not configuration: changing them must not redo finished items.
    return BatchSettings(options=options, config={"overrides": options["overrides"]},
                         worker=recording_worker, workers=kw.pop("workers", 0), **kw)


def completions(tmp_path: Path) -> list[str]:
    log = tmp_path / "t" / "completed.log"
    return log.read_text().split() if log.exists() else []


def tree_hashes(root: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(root)): (hashlib.blake2b(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def assert_clean_outputs(out: Path, expected: set[str]) -> None:
    """Exactly the expected outputs (each fully decodable) plus the manifest; no partial files."""
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    bookkeeping = {n for n in files if n.startswith(".restore-batch.")}
    assert files - bookkeeping == expected
    for rel in expected:
        assert frame_count(out / rel) == FRAMES, rel


GOOD_OUTPUTS = {"a_restored.mp4", "b_restored.mp4", "c_restored.mp4", "sub/d_restored.mkv",
                "sub/e_restored.mov"}


def quiet(msg):
    pass


# ------------------------------------------------------------------------------------------
# plan
# ------------------------------------------------------------------------------------------
def test_plan_mirrors_tree_excludes_out_and_refuses_conflicts(tmp_path):
    make_tree(tmp_path)
    src = tmp_path / "src"
    out = src / "restored"            # --out inside the source: excluded, not refused
    out.mkdir()
    make_clip(out / "old_restored.mp4", 2, width=64, height=48)
    (src / ".hidden").mkdir()
    make_clip(src / ".hidden" / "x.mp4", 2, width=64, height=48)
    make_clip(src / "UPPER.MP4", 2, width=64, height=48)
    items = discover([src], out)
    rel = [it.rel for it in items]
    assert rel == ["UPPER.MP4", "a.mp4", "b.mp4", "c.mp4", "sub/bad.mp4", "sub/d.mkv", "sub/e.mov"]
    assert items[-1].output == out / "sub" / "e_restored.mov"
    assert all(it.input.is_absolute() for it in items)

    assert [it.rel for it in discover([src], out, patterns="*.mkv")] == ["sub/d.mkv"]
    assert [it.rel for it in discover([src / "notes.txt"], out)] == ["notes.txt"]  # named files always
    assert output_name("clip.mov", "{name}.x2.mkv") == "clip.mov.x2.mkv"
    assert output_name("clip.mov", "{stem}_{task}x{scale}{ext}", task="upscale", scale=2) == "clip_upscalex2.mov"
    with pytest.raises(ConfigError, match="unknown placeholder"):
        discover([src], out, name_pattern="{stem}_{size}{ext}")
    for bad in ("{stem.__class__}{ext}", "{stem[0]}{ext}", "{stem!r}{ext}", "a\x00b{ext}"):
        with pytest.raises(ConfigError, match="--name-pattern"):
            output_name("clip.mp4", bad)
    with pytest.raises(RestoreError, match="inside --out"):
        discover([out], tmp_path / "src")
    with pytest.raises(RestoreError, match="no such file"):
        discover([tmp_path / "missing"], out)
    with pytest.raises(RestoreError, match="overwrite an input"):
        discover([src / "a.mp4"], src, name_pattern="{name}")
    (tmp_path / "b").mkdir()
    make_clip(tmp_path / "b" / "a.mp4", 2, width=64, height=48)
    with pytest.raises(RestoreError, match="same output"):
        discover([src, tmp_path / "b"], tmp_path / "o")


# ------------------------------------------------------------------------------------------
# manifest and resume policy
# ------------------------------------------------------------------------------------------
def test_run_isolates_corrupt_file_and_rerun_is_idempotent(tmp_path):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    before = tree_hashes(src)

    s = run_batch([src], out, settings(tmp_path), log=quiet)
    assert (s.total, s.done, s.failed, s.skipped, s.stopped) == (6, 5, 1, 0, None)
    assert s.exit_code == 1 and s.frames == 5 * FRAMES
    assert s.failures[0]["path"].endswith("bad.mp4") and "cannot transcode" in s.failures[0]["error"]
    assert_clean_outputs(out, GOOD_OUTPUTS)

    with mf.Manifest(out, readonly=True) as m:
        assert m.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = {Path(r["path"]).name: r for r in m.rows()}
        assert rows["bad.mp4"]["status"] == "failed" and rows["bad.mp4"]["attempts"] == 1
        assert "bad.mp4: cannot transcode" in rows["bad.mp4"]["last_error"]
        a = rows["a.mp4"]
        assert (a["status"], a["attempts"], a["frames_in"]) == ("done", 1, FRAMES)
        assert a["output"] == str(out / "a_restored.mp4") and a["seconds"] > 0
        assert a["content_hash"] == mf.quick_hash(src / "a.mp4") and a["size"] == (src / "a.mp4").stat().st_size

    s2 = run_batch([src], out, settings(tmp_path), log=quiet)
    assert (s2.done, s2.failed, s2.skipped) == (0, 1, 5)  # the corrupt file is retried (1 < 3 tries)
    assert sorted(Path(p).name for p in completions(tmp_path)) == ["a.mp4", "b.mp4", "c.mp4", "d.mkv", "e.mov"]
    with mf.Manifest(out, readonly=True) as m:
        assert m.row(src / "sub" / "bad.mp4")["attempts"] == 2
    assert tree_hashes(src) == before  # inputs never modified (content and mtime)


def test_changed_input_config_or_missing_output_is_redone(tmp_path):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    run_batch([src / "a.mp4", src / "b.mp4", src / "c.mp4"], out, settings(tmp_path), log=quiet)
    assert len(completions(tmp_path)) == 3

    make_clip(src / "a.mp4", FRAMES, width=64, height=48, seed=42)   # new content
    st = os.stat(src / "b.mp4")
    os.utime(src / "b.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: mtime only
    (out / "c_restored.mp4").unlink()                                 # output deleted by the user
    dry = run_batch([src / "a.mp4", src / "b.mp4", src / "c.mp4"], out, settings(tmp_path),
                    dry_run=True, log=quiet)
    assert [(Path(i["input"]).name, i["reason"]) for i in dry.items] == [
        ("a.mp4", "input changed"), ("b.mp4", "input changed"), ("c.mp4", "output missing")]
    s = run_batch([src / "a.mp4", src / "b.mp4", src / "c.mp4"], out, settings(tmp_path), log=quiet)
    assert (s.done, s.skipped) == (3, 0)

    s = run_batch([src / "a.mp4", src / "b.mp4", src / "c.mp4"], out, settings(tmp_path), log=quiet)
    assert (s.done, s.skipped) == (0, 3)
    s = run_batch([src / "a.mp4", src / "b.mp4", src / "c.mp4"], out,
                  settings(tmp_path, overrides={"crf": 30}), log=quiet)
    assert (s.done, s.skipped) == (3, 0)  # config changed: everything redone
    assert len(completions(tmp_path)) == 9
    with mf.Manifest(out, readonly=True) as m:
        assert all(r["attempts"] == 1 and r["status"] == "done" for r in m.rows())


def test_max_tries_and_retry_failed(tmp_path):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    inputs = [src / "a.mp4", src / "b.mp4"]
    s = run_batch(inputs, out, settings(tmp_path, max_tries=2, **{"raise": ["b.mp4"]}), log=quiet)
    assert (s.done, s.failed, s.retried) == (1, 1, 1)  # transient error: retried within the run
    with mf.Manifest(out, readonly=True) as m:
        b = m.row(src / "b.mp4")
        assert (b["status"], b["attempts"]) == ("failed", 2)
        assert b["last_error"] == "RuntimeError: flaky failure of b.mp4" and "Traceback" in b["error_detail"]

    s = run_batch(inputs, out, settings(tmp_path, max_tries=2, **{"raise": ["b.mp4"]}), log=quiet)
    assert (s.done, s.failed, s.skipped, s.skipped_failed) == (0, 0, 2, 1)  # no tries left

    s = run_batch(inputs, out, settings(tmp_path, max_tries=2, retry_failed=True), log=quiet)
    assert (s.done, s.failed, s.skipped) == (1, 0, 1)
    with mf.Manifest(out, readonly=True) as m:
        b = m.row(src / "b.mp4")
        assert (b["status"], b["attempts"], b["last_error"]) == ("done", 1, None)


def test_dry_run_writes_nothing(tmp_path):
    make_tree(tmp_path)
    out = tmp_path / "out"
    s = run_batch([tmp_path / "src"], out, settings(tmp_path), dry_run=True, log=quiet)
    assert not out.exists() and completions(tmp_path) == []
    assert (s.total, s.remaining) == (6, 6) and {i["reason"] for i in s.items} == {"new"}
    assert s.items[0]["output"] == str(out / "a_restored.mp4")


def test_low_disk_space_stops_cleanly_and_resumes(tmp_path):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    inputs = [src / "a.mp4", src / "b.mp4", src / "c.mp4"]
    size = (src / "a.mp4").stat().st_size
    calls = []

    def free(path):  # room for exactly one item at space_factor 2
        calls.append(path)
        return 2 * size + size if len(calls) == 1 else size

    s = run_batch(inputs, out, settings(tmp_path, space_factor=2.0, min_free=0), log=quiet, free_space=free)
    assert (s.done, s.remaining, s.exit_code) == (1, 2, 75) and "low disk space" in s.stopped
    s = run_batch(inputs, out, settings(tmp_path, space_factor=2.0, min_free=0), log=quiet)
    assert (s.done, s.skipped, s.stopped) == (2, 1, None)
    assert len(completions(tmp_path)) == 3


def test_existing_foreign_output_is_not_overwritten(tmp_path):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    out.mkdir()
    (out / "a_restored.mp4").write_bytes(b"the user's own file")
    s = run_batch([src / "a.mp4"], out, settings(tmp_path), log=quiet)
    assert s.failed == 1 and "not written by this batch" in s.failures[0]["error"]
    assert (out / "a_restored.mp4").read_bytes() == b"the user's own file"


# ------------------------------------------------------------------------------------------
# local engine: worker pool faults, killed and terminated drivers
# ------------------------------------------------------------------------------------------
def test_pool_worker_killed_mid_item_is_retried(tmp_path):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    s = run_batch([src], out, settings(tmp_path, workers=2, die=["b.mp4"]), log=quiet)
    assert (s.done, s.failed, s.retried) == (5, 1, 1)
    with mf.Manifest(out, readonly=True) as m:
        b = m.row(src / "b.mp4")
        assert (b["status"], b["attempts"]) == ("done", 2)
    assert sorted(Path(p).name for p in completions(tmp_path)) == ["a.mp4", "b.mp4", "c.mp4", "d.mkv", "e.mov"]
    assert_clean_outputs(out, GOOD_OUTPUTS)


DRIVER = """
import json, sys
from restore.batch.runner import run_batch
from tests.test_batch import settings
a = json.loads(sys.argv[1])
if a.get("ray_address"):
    import ray
    ray.init(address=a["ray_address"], logging_level="ERROR", log_to_driver=False)
s = run_batch(a["sources"], a["out"], settings(a["tmp"], workers=a["workers"], hang=a["hang"],
                                               engine=a.get("engine", "local")))
sys.exit(s.exit_code)
"""


def _start_driver(tmp_path, workers, hang, **extra):
    arg = json.dumps({"sources": [str(tmp_path / "src")], "out": str(tmp_path / "out"),
                      "tmp": str(tmp_path), "hang": hang, "workers": workers, **extra})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", DRIVER, arg], cwd=REPO, env=env,
                            start_new_session=True, stderr=subprocess.PIPE, text=True)


def _wait_for(paths, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the driver never reached the hanging items"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("workers", [0, 2])
def test_killed_driver_then_rerun_does_every_file_exactly_once(tmp_path, workers):
    make_tree(tmp_path)
    before = tree_hashes(tmp_path / "src")
    # In-process, c.mp4 hangs after a.mp4 and b.mp4 are done. With two workers c.mp4 and d.mkv
    # hang together: each was dispatched only after its worker's previous item was recorded.
    hang = ["c.mp4"] if workers == 0 else ["c.mp4", "d.mkv"]
    proc = _start_driver(tmp_path, workers, hang)
    try:
        _wait_for([tmp_path / "t" / f"{n}.hanging" for n in hang], proc)
        hung_pids = [int((tmp_path / "t" / f"{n}.hanging").read_text()) for n in hang]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if workers:  # workers die with their driver instead of finishing orphaned items
            deadline = time.monotonic() + 10
            while any(map(_alive, hung_pids)) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not any(map(_alive, hung_pids))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = tmp_path / "out"
    with mf.Manifest(out, readonly=True) as m:
        assert {Path(r["path"]).name for r in m.rows("running")} == set(hang)
        assert {Path(r["path"]).name for r in m.rows("done")} == {"a.mp4", "b.mp4"}

    s = run_batch([tmp_path / "src"], out, settings(tmp_path, workers=workers, hang=hang), log=quiet)
    assert (s.done, s.failed, s.skipped) == (3, 1, 2)
    assert sorted(Path(p).name for p in completions(tmp_path)) == ["a.mp4", "b.mp4", "c.mp4", "d.mkv", "e.mov"]
    assert_clean_outputs(out, GOOD_OUTPUTS)
    with mf.Manifest(out, readonly=True) as m:
        assert m.row(tmp_path / "src" / "c.mp4")["attempts"] == 2  # the killed attempt counts
    assert tree_hashes(tmp_path / "src") == before


@pytest.mark.parametrize("workers", [0, 1])
def test_sigterm_stops_gracefully_and_requeues_current_item(tmp_path, workers):
    make_tree(tmp_path)
    proc = _start_driver(tmp_path, workers, ["b.mp4"])
    try:
        _wait_for([tmp_path / "t" / "b.mp4.hanging"], proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, err  # SIGTERM: 128 + 15 (Ctrl-C gives 130)
    assert "interrupted" in err
    out = tmp_path / "out"
    assert_clean_outputs(out, {"a_restored.mp4"})  # the stopped item removed its partial file
    with mf.Manifest(out, readonly=True) as m:
        b = m.row(tmp_path / "src" / "b.mp4")
        assert (b["status"], b["attempts"]) == ("queued", 0)
        assert m.last_run()["summary"]["stopped"] == "interrupted"
    s = run_batch([tmp_path / "src"], out, settings(tmp_path, workers=workers, hang=["b.mp4"]), log=quiet)
    assert (s.done, s.skipped) == (4, 1)
    assert sorted(Path(p).name for p in completions(tmp_path)) == ["a.mp4", "b.mp4", "c.mp4", "d.mkv", "e.mov"]


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
def test_cli_run_status_json_and_csv(tmp_path, capsys):
    from restore.cli.main import main

    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    (tmp_path / "t").mkdir()
    worker = ["--worker", "restore.batch.workers:transcode_worker"]
    with pytest.raises(SystemExit) as exc:  # one item failed: exit status 1
        main(["batch", str(src), "--out", str(out), "--workers", "0", "--scale", "2", "--json",
              "--csv", str(tmp_path / "m.csv"), *worker])
    assert exc.value.code == 1
    summary = json.loads(capsys.readouterr().out)
    assert (summary["done"], summary["failed"], summary["exit_code"]) == (5, 1, 1)
    with av.open(str(out / "sub" / "d_restored.mkv")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (128, 96)

    assert main(["batch", "status", str(out), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["counts"] == {"queued": 0, "running": 0, "done": 5, "failed": 1}
    assert st["failures"][0]["path"].endswith("bad.mp4") and st["frames_done"] == 5 * FRAMES
    lines = (tmp_path / "m.csv").read_text().splitlines()
    assert lines[0].startswith("path,rel,status,attempts,last_error,output") and len(lines) == 7

    assert main(["batch", "run", str(src / "a.mp4"), "--out", str(out), "--scale", "2", "--dry-run",
                 "--device", "cpu", *worker]) == 0  # the device is not part of the config
    assert "skip  done" in capsys.readouterr().out
    assert main(["batch", str(src / "a.mp4"), "--out", str(out), "--dry-run", *worker]) == 0
    assert "run   config changed" in capsys.readouterr().out
    assert main(["batch", str(src), "--out", str(out), "--max-tries", "0", *worker]) == 2
    assert "--max-tries" in capsys.readouterr().err
    assert main(["batch", "status", str(tmp_path)]) == 2  # no manifest there


def test_cli_with_restore_enhance_in_a_worker_process(tmp_path, capsys):
    """The real work function: restore.enhance (classical x2 upscale) in one worker process."""
    from restore.cli.main import main

    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["batch", str(src / "a.mp4"), str(src / "sub"), "--out", str(out), "--model", "classical",
              "--scale", "2", "--name-pattern", "{stem}_{task}x{scale}{ext}", "--workers", "1", "--json"])
    assert exc.value.code == 1
    s = json.loads(capsys.readouterr().out)
    assert (s["done"], s["failed"]) == (3, 1) and "bad.mp4" in s["failures"][0]["error"]
    assert_clean_outputs(out, {"a_upscalex2.mp4", "d_upscalex2.mkv", "e_upscalex2.mov"})
    with av.open(str(out / "e_upscalex2.mov")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (128, 96)
    with mf.Manifest(out, readonly=True) as m:
        r = m.row(src / "a.mp4")
        assert json.loads(r["result"])["methods"]["upscale"] and r["frames_out"] == FRAMES
    assert main(["batch", str(src), "--out", str(out), "--scale", "3", "--model", "classical"]) == 2
    assert "scale" in capsys.readouterr().err  # bad flags fail up front, not per item


# ------------------------------------------------------------------------------------------
# failure cases found in review (issue 15)
# ------------------------------------------------------------------------------------------
def _cli(capsys, args) -> tuple[int, str]:
    from restore.cli.main import main

    rc = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, err


@pytest.mark.parametrize("flags, needle", [
    (["--space-factor", "nan"], "--space-factor nan"),
    (["--space-factor", "-1"], "--space-factor -1"),
    (["--workers", "-1"], "--workers -1"),
    (["--cpus-per-task", "nan"], "--cpus-per-task nan"),
    (["--engine", "ray", "--ray-address", "http://::bad"], "--ray-address 'http://::bad'"),
    (["--engine", "ray", "--ray-address", "localhost:1"], "cannot reach localhost:1"),
])
def test_bad_numbers_and_addresses_are_one_line_errors_before_anything(tmp_path, capsys, flags, needle):
    make_tree(tmp_path)
    out = tmp_path / "out"
    rc, err = _cli(capsys, ["batch", str(tmp_path / "src"), "--out", str(out), *flags])
    assert rc == 2 and err.count("\n") == 1 and needle in err, err
    assert not out.exists()  # refused before the output folder, the manifest or Ray


def test_ray_address_that_is_not_a_gcs_fails_within_the_timeout(monkeypatch):
    """A port that accepts connections but never speaks GCS (Ray itself retries for minutes)."""
    import socket as socketlib

    from restore.batch import engines

    server = socketlib.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        port = server.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            engines.check_ray_address(f"127.0.0.1:{port}", timeout=2)
        assert time.monotonic() - t0 < 30
    finally:
        server.close()


def test_unwritable_out_is_one_line(tmp_path, capsys):
    make_tree(tmp_path)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out in (blocker / "out", Path("/proc/restore-batch-test")):
        rc, err = _cli(capsys, ["batch", str(tmp_path / "src"), "--out", str(out)])
        assert rc == 2 and err.count("\n") == 1 and f"{out}: output folder is not writable" in err, err
    assert blocker.read_text() == "x"


def test_corrupt_manifest_is_one_line_for_run_and_status(tmp_path, capsys):
    make_tree(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    manifest = out / mf.MANIFEST_NAME
    manifest.write_bytes(b"not a database, just junk " * 100)
    for args in (["batch", str(tmp_path / "src"), "--out", str(out)], ["batch", "status", str(out)]):
        rc, err = _cli(capsys, args)
        assert rc == 2 and err.count("\n") == 1 and "manifest is unreadable" in err and str(manifest) in err
    assert manifest.read_bytes() == b"not a database, just junk " * 100  # left for the user to judge


def test_inputs_deleted_during_the_run_fail_alone(tmp_path, monkeypatch):
    clips = make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    # c.mp4 vanishes while a.mp4 runs (after planning); a file the scan found vanishes before
    # its stat (monkeypatched discover)
    from restore.batch import runner

    real_discover = runner.discover

    def discover_with_ghost(*a, **kw):
        from restore.batch.plan import PlanItem

        ghost = PlanItem(input=src / "ghost.mp4", rel="ghost.mp4", output=out / "ghost_restored.mp4")
        return [*real_discover(*a, **kw), ghost]

    monkeypatch.setattr(runner, "discover", discover_with_ghost)
    s = run_batch([src], out, settings(tmp_path, delete={"a.mp4": [str(clips["c.mp4"])]}), log=quiet)
    assert (s.done, s.failed) == (4, 3)  # a b d e done; bad.mp4, c.mp4 and ghost.mp4 failed
    errors = {Path(f["path"]).name: f["error"] for f in s.failures}
    assert "cannot read the input" in errors["c.mp4"] and "cannot read the input" in errors["ghost.mp4"]
    with mf.Manifest(out, readonly=True) as m:
        assert m.row(src / "c.mp4")["status"] == "failed"
        assert m.row(src / "ghost.mp4")["status"] == "failed"


def test_symlinks_at_the_lock_and_the_csv_export_are_not_followed(tmp_path):
    make_tree(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = out / ".restore-batch.lock"
    lock.symlink_to(victim)
    with pytest.raises(RestoreError, match="lock file .* symbolic link"):
        run_batch([tmp_path / "src"], out, settings(tmp_path), log=quiet)
    lock.unlink()
    run_batch([tmp_path / "src"], out, settings(tmp_path), log=quiet)
    export = tmp_path / "export.csv"
    export.symlink_to(victim)
    with mf.Manifest(out, readonly=True) as m:
        assert m.export_csv(export) == 6
    assert victim.read_text() == "precious"
    assert not export.is_symlink() and export.read_text().startswith("path,rel,status")
    (out / mf.MANIFEST_NAME).rename(out / "real.sqlite")
    (out / mf.MANIFEST_NAME).symlink_to(out / "real.sqlite")
    with pytest.raises(RestoreError, match="symbolic link"):
        mf.Manifest(out)


def test_status_during_a_run_says_it_is_running(tmp_path, capsys):
    make_tree(tmp_path)
    out = tmp_path / "out"
    proc = _start_driver(tmp_path, 0, ["b.mp4"])
    try:
        _wait_for([tmp_path / "t" / "b.mp4.hanging"], proc)
        from restore.cli.main import main

        assert main(["batch", "status", str(out)]) == 0
        shown = capsys.readouterr().out
        assert f"running now (driver {os.uname().nodename}:{proc.pid}" in shown, shown
        assert "did not finish" not in shown
    finally:
        proc.kill()
        proc.communicate()
    assert main(["batch", "status", str(out)]) == 0  # killed: now it did not finish
    assert "did not finish" in capsys.readouterr().out


def test_an_item_killed_mid_way_resumes_from_its_finished_chunks(tmp_path):
    """Batch items run with --resume: the retry after a dead worker replays the chunks the killed
    attempt finished and gives the output an uninterrupted run gives."""
    import numpy as np

    from restore.io import decode
    from restore.pipeline import enhance

    src = tmp_path / "src"
    src.mkdir()
    make_clip(src / "a.mp4", 30, width=64, height=48, cuts=[13])
    overrides = {"denoise": True, "scale": 2, "model": "classical", "chunk.min_len": 3, "chunk.max_len": 6}
    (tmp_path / "t").mkdir()
    st = BatchSettings(options={"overrides": overrides, "test": {"dir": str(tmp_path / "t")}},
                       config={"overrides": overrides}, worker=resuming_worker, workers=1)
    s = run_batch([src], tmp_path / "out", st, log=quiet)
    assert (s.done, s.failed, s.retried) == (1, 0, 1)
    with mf.Manifest(tmp_path / "out", readonly=True) as m:
        row = m.row(src / "a.mp4")
        assert row["attempts"] == 2 and json.loads(row["result"])["resumed_chunks"] >= 2
    ref = enhance(src / "a.mp4", tmp_path / "ref.mp4", **overrides)
    out = tmp_path / "out" / "a_restored.mp4"
    np.testing.assert_array_equal(np.stack([f.image for f in decode(out)]),
                                  np.stack([f.image for f in decode(ref.output)]))
    left = sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".restore-batch."))
    assert left == ["a_restored.mp4"]  # the work folder and the killed attempt's temp files are gone


def test_capture_and_disc_containers_are_found_and_an_items_warnings_reach_the_log(tmp_path, capsys):
    """.ts / .vob / .mts are batch inputs by default (.vob and .mts, which cannot be written, get .mkv);
    a warning raised while an item is restored (here: HDR10 metadata libx264 cannot write) is a
    line of the batch log."""
    from restore.cli.main import main

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    make_clip(src / "cap.ts", 8, width=64, height=48)
    make_clip(src / "disc.vob", 8, width=64, height=48, codec="mpeg2video")
    make_clip(src / "cam.mts", 8, width=64, height=48)
    make_hdr10_clip(src / "hdr.mkv", 8)
    rc = main(["batch", str(src), "--out", str(out), "--model", "classical", "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "cam_restored.mkv", "cap_restored.ts", "disc_restored.mkv", "hdr_restored.mkv"]
    assert "  warning: " in err and "cannot be written by libx264" in err
