"""Batch on a local Ray cluster (started here, 2 CPUs): a worker process SIGKILLed mid-item is
retried by Ray, the corrupt file fails alone, and every good file is done exactly once."""
from __future__ import annotations

from pathlib import Path

import pytest
import ray

from restore.batch import manifest as mf
from restore.batch.runner import run_batch
from tests.test_batch import GOOD_OUTPUTS, assert_clean_outputs, completions, make_tree, quiet, settings


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
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
        assert all(r["worker"] and not r["worker"].endswith(f":{__import__('os').getpid()}") for r in done)

    s = run_batch([src], out, settings(tmp_path, engine="ray", workers=0), log=quiet)
    assert (s.done, s.failed, s.skipped) == (0, 1, 5)
    assert len(completions(tmp_path)) == 5
