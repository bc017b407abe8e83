"""Batch on a local Ray cluster (started here, 2 CPUs): a worker process SIGKILLed mid-item is
retried by Ray, the corrupt file fails alone, and every good file is done exactly once."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import ray

from restore.batch import manifest as mf
from restore.batch.runner import run_batch
from tests.test_batch import GOOD_OUTPUTS, assert_clean_outputs, completions, make_tree, quiet, settings


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_engine_retries_killed_worker_and_isolates_corrupt_file(tmp_path, ray_cluster):
    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    # b.mp4's worker writes a partial output, then SIGKILLs itself on its first attempt.
    s = run_batch([src], out, settings(tmp_path, engine="ray", workers=0, die=["b.mp4"]), log=quiet)
    assert (s.engine, s.done, s.failed, s.skipped, s.stopped) == ("ray", 5, 1, 0, None)
    assert (tmp_path / "t" / "b.mp4.started").exists()  # the kill really happened
    assert sorted(Path(p).name for p in completions(tmp_path)) == ["a.mp4", "b.mp4", "c.mp4", "d.mkv", "e.mov"]
    assert_clean_outputs(out, GOOD_OUTPUTS)  # the killed attempt's partial file is gone
    with mf.Manifest(out, readonly=True) as m:
        bad = m.row(src / "sub" / "bad.mp4")
        assert bad["status"] == "failed" and "bad.mp4: cannot transcode" in bad["last_error"]
        done = m.rows("done")
        assert len(done) == 5 and all(r["frames_in"] == 10 for r in done)
        # results came back from Ray worker processes, not from the driver
        assert all(r["worker"] and not r["worker"].endswith(f":{os.getpid()}") for r in done)

    s = run_batch([src], out, settings(tmp_path, engine="ray", workers=0), log=quiet)
    assert (s.done, s.failed, s.skipped) == (0, 1, 5)
    assert len(completions(tmp_path)) == 5


def test_ray_gpu_tasks_get_a_gpu_each(tmp_path, ray_cluster):
    """The test cluster declares one (logical) GPU: GPU tasks run one at a time, each granted it."""
    from restore.batch.engines import RayEngine
    from restore.errors import ConfigError
    from tests.test_batch import recording_worker

    make_tree(tmp_path)
    src, out = tmp_path / "src", tmp_path / "out"
    s = run_batch([src / "a.mp4", src / "b.mp4"], out,
                  settings(tmp_path, engine="ray", workers=0, num_gpus=1, record_gpu=True), log=quiet)
    assert s.done == 2
    with mf.Manifest(out, readonly=True) as m:
        for r in m.rows("done"):
            res = json.loads(r["result"])
            assert res["gpu_ids"] == ["0"] and res["cuda_visible_devices"] == "0"
    assert RayEngine(recording_worker, num_gpus=1).slots == 1  # GPU-bound, not CPU-bound
    assert RayEngine(recording_worker).slots == 2
    with pytest.raises(ConfigError, match="GPU"):
        RayEngine(recording_worker, num_gpus=2)


def test_ray_driver_sigterm_cancels_and_requeues(tmp_path, ray_cluster):
    """A driver connected to the cluster is stopped with SIGTERM while a task hangs: the task is
    cancelled (its partial file removed), the item requeued, and a rerun finishes the batch."""
    from tests.test_batch import _start_driver, _wait_for

    make_tree(tmp_path)
    address = ray.get_runtime_context().gcs_address
    proc = _start_driver(tmp_path, 0, ["b.mp4"], engine="ray", ray_address=address)
    try:
        _wait_for([tmp_path / "t" / "b.mp4.hanging"], proc, timeout=90)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, err
    out = tmp_path / "out"
    with mf.Manifest(out, readonly=True) as m:
        b = m.row(tmp_path / "src" / "b.mp4")
        assert (b["status"], b["attempts"]) == ("queued", 0)
        done = {Path(r["output"]).relative_to(out).as_posix() for r in m.rows("done")}
        # A task may finish (its output renamed into place, complete) between the SIGTERM and the
        # cancel; the driver never recorded it, so the item is requeued and simply redone.
        finished_unrecorded = {Path(r["output"]).relative_to(out).as_posix() for r in m.rows("queued")
                               if r["output"] and Path(r["output"]).exists()}
        assert {r["status"] for r in m.rows()} <= {"done", "queued", "failed"}  # nothing left running
    assert "b_restored.mp4" not in done | finished_unrecorded  # the hanging task was cancelled
    assert_clean_outputs(out, done | finished_unrecorded)  # complete files only, no partial output
    s = run_batch([tmp_path / "src"], out, settings(tmp_path, engine="ray", workers=0), log=quiet)
    assert s.failed == 1 and s.done + s.skipped == 5
    assert sorted(Path(p).name for p in completions(tmp_path)) == ["a.mp4", "b.mp4", "c.mp4", "d.mkv", "e.mov"]
    assert_clean_outputs(out, GOOD_OUTPUTS)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def test_sigkilled_driver_leaves_no_ray_processes(tmp_path):
    """A driver that started its own throwaway cluster is SIGKILLed mid-item: its watchdog
    (restore.batch.raywatch) stops the GCS, raylet, dashboard and runtime-env agents and workers
    it left behind, so nothing keeps running or listening."""
    from restore.batch.raywatch import _alive, descendants
    from tests.test_batch import _start_driver, _wait_for

    make_tree(tmp_path)
    env_address = os.environ.pop("RAY_ADDRESS", None)
    try:
        proc = _start_driver(tmp_path, 0, ["b.mp4"], engine="ray")
    finally:
        if env_address is not None:
            os.environ["RAY_ADDRESS"] = env_address
    try:
        _wait_for([tmp_path / "t" / "b.mp4.hanging"], proc, timeout=180)
        tree = descendants(proc.pid, exclude=-1)
        cmds = " ".join(_cmdline(p) for p in tree)
        assert "raylet" in cmds and "gcs_server" in cmds and "raywatch" in cmds, cmds
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 30
        while any(_alive(p, s) for p, s in tree.items()) and time.monotonic() < deadline:
            time.sleep(0.2)
        survivors = [f"{p} {_cmdline(p)}" for p, s in tree.items() if _alive(p, s)]
        assert survivors == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
