"""Execution engines: where a batch's items run.

An engine runs jobs (`{"id", "input", "output", "options"}`) through `workers.run_job` and hands
outcomes back to the driver, which alone writes the manifest:

    engine.slots                 how many jobs may be in flight
    engine.submit(job)
    engine.poll(timeout) -> [outcome dict]   finished jobs (see workers.run_job)
    engine.running() -> [job id]
    engine.stop() -> [job id]    abort in-flight jobs (they clean their temp files); ids to requeue
    engine.close()

- LocalEngine(workers=0): in the driver process (simplest; a crash takes the driver down, and the
  next run resumes).
- LocalEngine(workers=N): N long-lived worker processes. Not concurrent.futures: a dead worker
  breaks a whole ProcessPoolExecutor without saying which item killed it, and here a dead worker
  must cost exactly one attempt of exactly one item.
- RayEngine: one Ray task per item with declared CPU/GPU resources; Ray retries tasks whose worker
  process died (max_retries).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import wait as mp_wait

from restore.errors import ConfigError

from .workers import run_job


class Interrupted(BaseException):
    """Raised in the driver by the signal handler to abort an in-process item."""


def _signal_name(code: int | None) -> str:
    if code is None:
        return "unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


# ------------------------------------------------------------------------------------------
# local
# ------------------------------------------------------------------------------------------
def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds `with` blocks, so temp outputs are removed


def _worker_main(conn, fn, parent_pid: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the driver decides
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if sys.platform.startswith("linux"):
        # Die with the driver (SIGTERM, so the current item still removes its temp file): an
        # orphan finishing its item after a killed driver would be redone by the next run.
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(run_job(fn, job))


class _Proc:
    def __init__(self, ctx, fn):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, fn, os.getpid()),
                                   name="restore-batch-worker", daemon=True)
        self.process.start()
        child.close()
        self.job: dict | None = None


class LocalEngine:
    name = "local"

    def __init__(self, fn, workers: int = 1):
        if workers < 0:
            raise ConfigError(f"--workers {workers}: expected 0 (in process) or more")
        self.fn = fn
        self.in_process = workers == 0
        self.slots = max(1, workers)
        self._ctx = mp.get_context("spawn")  # no fork: the driver may hold threads and SQLite
        self._procs: list[_Proc] = []
        self._pending: list[dict] = []       # in-process: submitted, not yet run
        self.current: dict | None = None     # in-process: the job now running

    def submit(self, job: dict) -> None:
        if self.in_process:
            self._pending.append(job)
            return
        proc = next((p for p in self._procs if p.job is None and p.process.is_alive()), None)
        if proc is None:
            if len(self._procs) >= self.slots:
                self._reap()
            proc = _Proc(self._ctx, self.fn)
            self._procs.append(proc)
        proc.job = job
        proc.conn.send(job)

    def running(self) -> list[int]:
        if self.in_process:
            return [j["id"] for j in self._pending]
        return [p.job["id"] for p in self._procs if p.job is not None]

    def poll(self, timeout: float) -> list[dict]:
        if self.in_process:
            return self._run_in_process()
        busy = [p for p in self._procs if p.job is not None]
        if not busy:
            return []
        ready = set(mp_wait([p.conn for p in busy] + [p.process.sentinel for p in busy], timeout))
        outcomes = []
        for p in busy:
            if p.conn not in ready and p.process.sentinel not in ready:
                continue
            try:
                if p.conn.poll():
                    outcomes.append(p.conn.recv())
                    p.job = None
                    continue
            except (EOFError, OSError):
                pass
            p.process.join(5)
            outcomes.append({"id": p.job["id"], "ok": False, "retryable": True, "detail": None,
                             "worker": f"pid {p.process.pid}",
                             "error": f"worker process died ({_signal_name(p.process.exitcode)})"})
            p.job = None
        self._reap()
        return outcomes

    def _run_in_process(self) -> list[dict]:
        outcomes = []
        while self._pending:
            self.current = self._pending[0]
            try:
                outcomes.append(run_job(self.fn, self.current))
            finally:
                self.current = None
            self._pending.pop(0)
        return outcomes

    def _reap(self) -> None:
        self._procs = [p for p in self._procs if p.process.is_alive() or p.job is not None]

    def stop(self, grace: float = 10.0) -> list[int]:
        if self.in_process:
            ids = [j["id"] for j in self._pending]
            self._pending.clear()
            return ids
        ids = []
        for p in self._procs:
            if p.job is not None:
                ids.append(p.job["id"])
                p.process.terminate()  # SIGTERM: the worker unwinds and removes its temp file
        deadline = time.monotonic() + grace
        for p in self._procs:
            if p.job is not None:
                p.process.join(max(0.0, deadline - time.monotonic()))
                if p.process.is_alive():
                    p.process.kill()
                    p.process.join(5)
                p.job = None
        return ids

    def close(self) -> None:
        for p in self._procs:
            if p.process.is_alive():
                try:
                    p.conn.send(None)
                except OSError:
                    pass
        for p in self._procs:
            p.process.join(5)
            if p.process.is_alive():
                p.process.kill()
                p.process.join(5)
            p.conn.close()
        self._procs.clear()


# ------------------------------------------------------------------------------------------
# ray
# ------------------------------------------------------------------------------------------
def _ray_task(fn, job):
    return run_job(fn, job)


_ADDRESS = re.compile(r"(?:(?P<scheme>ray)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")
CONNECT_TIMEOUT = 10.0


def check_ray_address(address: str | None, timeout: float = CONNECT_TIMEOUT) -> None:
    """A malformed or unreachable cluster address is a one-line ConfigError within `timeout`
    seconds (Ray itself raises a multi-line ValueError for a malformed one and retries an
    unreachable one for minutes). "auto" and no address are left to Ray."""
    source = "--ray-address"
    if address is None:
        address, source = os.environ.get("RAY_ADDRESS"), "RAY_ADDRESS"
    if not address or address in ("auto", "local"):
        return
    m = _ADDRESS.fullmatch(address.strip())
    if not m or not 0 < int(m["port"]) < 65536:
        raise ConfigError(f"{source} {address!r}: expected auto, HOST:PORT of the head node's GCS "
                          "(e.g. 10.0.0.5:6379) or ray://HOST:10001 for Ray Client")
    host, port = m["host"].strip("[]"), int(m["port"])
    hint = "is the head node up (`ray start --head`) and the port open?"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise ConfigError(f"{source} {address}: cannot reach {host}:{port} ({reason}); {hint}") from None
    if m["scheme"]:
        return  # Ray Client speaks its own protocol; the TCP check is what we can do
    # A port that accepts TCP is not yet a GCS (a proxy, another service): ask it the first
    # question ray.init asks, with a deadline, since Ray would retry it for minutes.
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return
    channel = grpc.insecure_channel(f"{m['host']}:{port}")
    try:
        gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
            gcs_service_pb2.GetClusterIdRequest(), timeout=timeout)
    except grpc.RpcError as err:
        code = err.code()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return  # a GCS that wants a token: Ray's own login handles that
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise ConfigError(f"{source} {address}: no answer from a Ray head node there "
                              f"({code.name.lower()}); {hint}") from None
        raise ConfigError(f"{source} {address}: something answers there but it is not a Ray head "
                          f"node's GCS port ({code.name.lower()}); the default port is 6379") from None
    finally:
        channel.close()


def _start_watchdog():
    """restore.batch.raywatch for a cluster this driver starts (see its docstring)."""
    if not sys.platform.startswith("linux"):
        return None
    import subprocess

    return subprocess.Popen([sys.executable, "-m", "restore.batch.raywatch", str(os.getpid())],
                            stdin=subprocess.PIPE, close_fds=True)


class RayEngine:
    name = "ray"

    def __init__(self, fn, *, address: str | None = None, slots: int | None = None,
                 num_cpus: float = 1.0, num_gpus: float = 0.0, max_retries: int = 2):
        try:
            import ray
        except ImportError:
            raise ConfigError("--engine ray needs Ray: pip install 'restore[ray]'") from None
        self.ray = ray
        self._owns = False
        self._watch = None
        if not ray.is_initialized():
            check_ray_address(address)
            kwargs = {"address": address, "logging_level": "WARNING", "log_to_driver": True}
            local = address is None and not os.environ.get("RAY_ADDRESS")
            if local:
                kwargs["include_dashboard"] = False  # a throwaway local cluster: nothing to browse
                self._watch = _start_watchdog()
            try:
                ray.init(**kwargs)
            except (ConnectionError, ValueError, RuntimeError, TimeoutError) as err:
                self._stop_watchdog()
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                where = f"--ray-address {address}" if address else (
                    f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}" if os.environ.get("RAY_ADDRESS") else "Ray")
                raise ConfigError(f"{where}: cannot start or connect ({first})") from None
            self._owns = True
        resources = ray.cluster_resources()
        if num_gpus > 0 and resources.get("GPU", 0) < num_gpus:
            raise ConfigError(f"--device cuda on Ray: the cluster has {resources.get('GPU', 0):g} GPUs, "
                              f"each task asks for {num_gpus:g}")
        if slots is None:  # as many tasks in flight as the cluster can run at once
            fits = [resources.get("CPU", 1) / num_cpus] if num_cpus else []
            if num_gpus:
                fits.append(resources.get("GPU", 0) / num_gpus)
            slots = int(min(fits)) if fits else 1
        self.slots = max(1, slots)
        self.num_cpus, self.num_gpus, self.max_retries = num_cpus, num_gpus, max_retries
        self.fn_ref = ray.put(fn)
        self._remote = ray.remote(_ray_task)
        # Only crashed workers are retried by Ray; an exception is an outcome (workers.run_job).
        self._task_options = {"num_cpus": num_cpus, "num_gpus": num_gpus,
                              "max_retries": max_retries, "retry_exceptions": False}
        self._pending: dict = {}  # ObjectRef -> job
        self._crash_errors = tuple(getattr(ray.exceptions, n) for n in
                                   ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
                                   if hasattr(ray.exceptions, n))

    def submit(self, job: dict) -> None:
        name = f"restore-batch:{os.path.basename(job['input'])}"
        ref = self._remote.options(name=name, **self._task_options).remote(self.fn_ref, job)
        self._pending[ref] = job

    def running(self) -> list[int]:
        return [j["id"] for j in self._pending.values()]

    def poll(self, timeout: float) -> list[dict]:
        if not self._pending:
            return []
        ray = self.ray
        ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=timeout)
        outcomes = []
        for ref in ready:
            job = self._pending.pop(ref)
            try:
                outcomes.append(ray.get(ref))
            except ray.exceptions.RayError as err:
                # A crash (dead worker or node, OOM kill) was already retried max_retries times by
                # Ray: count those attempts. Anything else (e.g. the work function could not be
                # loaded on the worker) was one attempt.
                crashed = isinstance(err, self._crash_errors)
                msg = " ".join(f"{type(err).__name__}: {err}".split())
                outcomes.append({"id": job["id"], "ok": False, "retryable": False, "detail": str(err),
                                 "error": msg[:500], "worker": None,
                                 "tries": self.max_retries + 1 if crashed else 1})
        return outcomes

    def stop(self, grace: float = 10.0) -> list[int]:
        ray = self.ray
        refs = list(self._pending)
        for ref in refs:
            ray.cancel(ref)  # KeyboardInterrupt in the task: it unwinds and removes its temp file
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=grace)
            for ref in refs:
                ray.cancel(ref, force=True)  # force is a no-op for tasks that already ended
        ids = [j["id"] for j in self._pending.values()]
        self._pending.clear()
        return ids

    def close(self) -> None:
        if self._owns:
            self.ray.shutdown()
        self._stop_watchdog()

    def _stop_watchdog(self) -> None:
        if self._watch is not None:
            self._watch.stdin.close()  # EOF: it stops whatever ray.shutdown() left, then exits
            try:
                self._watch.wait(15)
            except subprocess.TimeoutExpired:
                self._watch.kill()
            self._watch = None
