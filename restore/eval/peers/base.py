"""Peer base classes: the interface (`Peer`) and the child-process runner (`WorkerPeer`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


class PeerError(RuntimeError):
    """A peer failed while running (its message ends up in the report as the reason)."""


class Peer:
    """name: the --methods name; tasks: subset of ("denoise", "upscale", "interpolate");
    scales: upscale factors it supports."""

    name: str = "peer"
    tasks: tuple[str, ...] = ()
    scales: tuple[int, ...] = (1,)
    description: str = ""

    def supports(self, task) -> bool:
        return task.kind in self.tasks and (task.kind != "upscale" or task.scale in self.scales)

    def unavailable(self, ctx) -> str | None:
        """Why this peer cannot run here, or None when it can."""
        return None

    def unsuited(self, task) -> str | None:
        """Why this peer does not take part in `task` although it does the task's kind (listed as
        skipped), or None."""
        return None

    def build(self, task, ctx, dataset) -> Callable:
        """The method for `task` on `dataset` (restore.eval.methods contracts). The callable may
        carry `seconds` (set after each call: the processing time when part of the call, such as
        starting a child process and loading weights, should not count) and `params` (settings
        chosen while building, e.g. a tuned strength, shown in the report)."""
        raise NotImplementedError

    def params(self, task, ctx, dataset) -> dict:
        """Settings known before building, shown in the report next to the numbers."""
        return {}


class WorkerPeer(Peer):
    """A learned peer run by restore.eval.peers.worker in a child process.

    Timing: the child reports the seconds spent on the frames themselves, after its imports and
    weight loading, which is what the report's seconds per frame count for every method (our
    models are built, weights loaded, before their clock starts too)."""

    worker_name: str = ""

    def pythonpath(self, ctx) -> list[str]:
        return [str(p) for p in ctx.peer_paths]

    def job_params(self, task, ctx) -> dict:
        return {}

    def _run(self, ctx, params: dict, arrays: dict) -> tuple[np.ndarray, float]:
        """(output, seconds the child spent on the frames)."""
        with tempfile.TemporaryDirectory(prefix=f"restore-bench-{self.name}-") as tmp:
            tmp = Path(tmp)
            np.savez(tmp / "input.npz", **arrays)
            job = {"peer": self.worker_name, "input": str(tmp / "input.npz"), "output": str(tmp / "output.npy"),
                   "report": str(tmp / "report.json"), "threads": ctx.threads, "params": params}
            (tmp / "job.json").write_text(json.dumps(job))
            env = dict(os.environ)
            # The project root (for `-m restore.eval.peers.worker` from a source checkout) goes after
            # the peer folders so a peer's own modules win inside the child only.
            root = str(Path(__file__).resolve().parents[3])
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath(ctx) + [root] + (
                [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
            proc = subprocess.run([sys.executable, "-m", "restore.eval.peers.worker", str(tmp / "job.json")],
                                  env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                tail = (proc.stderr or proc.stdout).strip().splitlines()
                raise PeerError(f"{self.name} failed: {tail[-1] if tail else 'exit code ' + str(proc.returncode)}")
            report = json.loads((tmp / "report.json").read_text())
            return np.load(tmp / "output.npy"), float(report["run_seconds"])

    def build(self, task, ctx, dataset) -> Callable:
        return _WorkerMethod(self, ctx, self.job_params(task, ctx), task.kind == "interpolate")


class _WorkerMethod:
    """The callable a WorkerPeer builds; `seconds` holds the child's processing time of the last call."""

    def __init__(self, peer: WorkerPeer, ctx, params: dict, interpolate: bool):
        self.peer, self.ctx, self.job_params, self.interpolate = peer, ctx, params, interpolate
        self.seconds: float | None = None

    def __call__(self, *arrays):
        params = self.job_params
        if self.interpolate and len(arrays) == 3:  # (first, second, t)
            *arrays, t = arrays
            params = {**params, "t": float(t)}
        names = ("first", "second") if self.interpolate else ("frames",)
        out, self.seconds = self.peer._run(self.ctx, params, dict(zip(names, arrays)))
        return out
