"""The batch driver: plan, sync the manifest, feed an engine, record outcomes, summarise.

Only this process writes the manifest. One driver per output folder at a time (an flock on
OUT/.restore-batch.lock), which is also what makes a `running` row found at start-up stale.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import shutil
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from restore.errors import ConfigError, RestoreError

from . import manifest as mf
from .engines import Interrupted, LocalEngine, RayEngine
from .plan import DEFAULT_NAME_PATTERN, discover
from .workers import enhance_worker, sweep_temps

LOCK_NAME = ".restore-batch.lock"

# exit codes of `restore batch`
EXIT_OK, EXIT_FAILED, EXIT_LOW_SPACE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 75, 130, 143


@dataclass
class BatchSettings:
    options: dict = field(default_factory=dict)      # passed to the work function
    config: dict | None = None                       # what decides "config changed"; default: options
    worker: Callable = enhance_worker
    patterns: str | None = None
    name_pattern: str = DEFAULT_NAME_PATTERN
    name_fields: dict = field(default_factory=dict)  # {task, scale} for the name pattern
    engine: str = "local"
    workers: int = 1
    ray_address: str | None = None
    num_cpus: float = 1.0                            # Ray resources per task
    num_gpus: float = 0.0
    max_tries: int = 3
    retry_failed: bool = False
    space_factor: float = 2.0                        # expected output size / input size
    min_free: int = 256 << 20                        # bytes that must stay free on --out
    sources: list | None = None                      # recorded in the manifest's runs table


@dataclass
class BatchSummary:
    out: str
    engine: str
    workers: int
    total: int = 0            # inputs planned
    done: int = 0             # finished in this run
    failed: int = 0           # failed in this run (after its retries)
    skipped: int = 0          # not run: done before, or failed with no tries left
    skipped_failed: int = 0   # ... of which failed earlier (use --retry-failed)
    remaining: int = 0        # still queued (stopped early)
    retried: int = 0          # extra attempts made in this run
    wall_seconds: float = 0.0
    frames: int = 0           # input frames of the items done in this run
    frames_per_second: float = 0.0
    files_per_second: float = 0.0
    stopped: str | None = None
    terminated: bool = False  # stopped by SIGTERM rather than Ctrl-C (exit 143, not 130)
    failures: list = field(default_factory=list)
    dry_run: bool = False
    items: list = field(default_factory=list)   # dry run: what each input would do

    @property
    def exit_code(self) -> int:
        if self.stopped == "interrupted":
            return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED
        if self.stopped:
            return EXIT_LOW_SPACE
        return EXIT_FAILED if self.failed else EXIT_OK

    def add_failure(self, item, error: str) -> None:
        self.failed += 1
        self.failures.append({"path": str(item.input), "error": error})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["exit_code"] = self.exit_code
        if not self.dry_run:
            d.pop("items")
        return d


def _stat(item) -> dict:
    st = os.stat(item.input)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "content_hash": mf.quick_hash(item.input, st.st_size)}


@contextlib.contextmanager
def _driver_lock(out: Path):
    try:
        # O_NOFOLLOW: a symlink planted at the lock's name must not make us truncate its target
        fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        what = "is a symbolic link" if err.errno == errno.ELOOP else f"cannot be opened ({err.strerror})"
        raise RestoreError(f"the batch lock file {LOCK_NAME} {what}", out) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise RestoreError(f"another batch is running on this output folder (driver {other})",
                               out) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.uname().nodename}:{os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


class _Signals:
    """SIGINT/SIGTERM: stop dispatching, abort in-flight items (requeued), exit cleanly.
    A second signal while an in-process item runs aborts it at once."""

    def __init__(self, engine):
        self.engine = engine
        self.stop = False
        self.signum: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers, no stop
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.stop = True
        self.signum = self.signum or signum
        if getattr(self.engine, "current", None) is not None:
            raise Interrupted()  # in-process item: unwind it now (it removes its temp file)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _make_engine(settings: BatchSettings):
    if settings.engine == "local":
        return LocalEngine(settings.worker, settings.workers)
    if settings.engine == "ray":
        return RayEngine(settings.worker, address=settings.ray_address,
                         slots=settings.workers or None, num_cpus=settings.num_cpus,
                         num_gpus=settings.num_gpus, max_retries=max(0, settings.max_tries - 1))
    raise ConfigError(f"--engine {settings.engine!r}: expected local or ray")


def check_settings(settings: BatchSettings) -> None:
    """Refuse bad numbers before anything is touched (nan passes every comparison)."""
    if settings.max_tries < 1:
        raise ConfigError(f"--max-tries {settings.max_tries}: expected 1 or more")
    if settings.workers is not None and settings.workers < 0:
        raise ConfigError(f"--workers {settings.workers}: expected 0 or more "
                          "(local: 0 runs items in this process; ray: 0 fits the cluster)")
    for option, value in (("--space-factor", settings.space_factor), ("--min-free", settings.min_free),
                          ("--cpus-per-task", settings.num_cpus), ("--gpus-per-task", settings.num_gpus)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{option} {value}: expected a finite number >= 0")
    if settings.engine == "ray":
        from .engines import check_ray_address

        check_ray_address(settings.ray_address)


def _prepare_out(out: Path) -> None:
    """Create --out and prove it writable (os.access says yes to root everywhere, and read-only
    mounts only refuse at creation time); RestoreError naming it otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".restore-batch.check-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise RestoreError(f"output folder is not writable ({err.strerror or err})", out) from None


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_batch(sources, out_dir, settings: BatchSettings | None = None, *, dry_run: bool = False,
              log: Callable[[str], None] | None = _log_default,
              free_space: Callable[[str], int] = lambda p: shutil.disk_usage(p).free) -> BatchSummary:
    settings = settings or BatchSettings()
    log = log or (lambda msg: None)
    check_settings(settings)
    out = Path(os.path.abspath(out_dir))
    items = discover(sources, out, patterns=settings.patterns, name_pattern=settings.name_pattern,
                     name_fields=settings.name_fields)
    config = settings.config if settings.config is not None else settings.options
    cfg_hash = mf.config_hash(config)
    summary = BatchSummary(out=str(out), engine=settings.engine, workers=settings.workers,
                           total=len(items), dry_run=dry_run)
    if dry_run:
        return _dry_run(items, out, cfg_hash, settings, summary, log)

    _prepare_out(out)
    t0 = time.monotonic()
    with _driver_lock(out), mf.Manifest(out) as m:
        removed = sweep_temps(it.output for it in items)
        if removed:
            log(f"removed {len(removed)} partial output(s) of an interrupted run")
        queue: deque[tuple[int, object]] = deque()
        for item in items:
            try:
                stat = _stat(item)
            except OSError as err:  # deleted or made unreadable since the scan: this item only
                msg = f"{item.input}: cannot read the input ({err.strerror or err})"
                m.record_unreadable(item, cfg_hash, msg)
                summary.add_failure(item, msg)
                log(f"failed {item.rel}: {msg}")
                continue
            row = m.row(item.input)
            d = mf.decide(row, cfg_hash=cfg_hash, output=str(item.output), max_tries=settings.max_tries,
                          retry_failed=settings.retry_failed, **stat)
            item_id = m.apply(item, stat, cfg_hash, d)
            if d.run:
                queue.append((item_id, item))
            else:
                summary.skipped += 1
                summary.skipped_failed += d.reason == "failed"
        if summary.skipped_failed:
            log(f"{summary.skipped_failed} item(s) failed {settings.max_tries} time(s) before and are "
                "skipped (use --retry-failed)")
        # The engine first: a cluster that cannot be reached fails before a run is recorded.
        engine = _make_engine(settings) if queue else None
        run_id = m.start_run(config, settings.engine, settings.sources)
        log(f"batch: {len(queue)} to do, {summary.skipped} skipped, engine {settings.engine}"
            + (f" ({settings.workers} workers)" if settings.engine == "local" and settings.workers else ""))
        if engine is not None:
            try:
                _drive(m, engine, queue, out, settings, summary, log, free_space)
            finally:
                engine.close()
                # Stopped attempts (Ctrl-C, SIGTERM) were just killed; their processes may take
                # a moment to die and release their temp files.
                sweep_temps((it.output for it in items), wait=15.0 if summary.stopped else 0.0)
        summary.remaining = len(queue)
        summary.wall_seconds = time.monotonic() - t0
        if summary.wall_seconds > 0:
            summary.frames_per_second = summary.frames / summary.wall_seconds
            summary.files_per_second = summary.done / summary.wall_seconds
        m.finish_run(run_id, summary.to_dict())
    return summary


def _drive(m, engine, queue, out, settings, summary, log, free_space) -> None:
    estimates: dict[int, int] = {}  # in flight: expected output bytes
    items = {item_id: item for item_id, item in queue}
    n_total = len(queue)
    n_finished = 0
    with _Signals(engine) as sig:
        try:
            while True:
                while queue and not sig.stop and summary.stopped is None \
                        and len(engine.running()) < engine.slots:
                    item_id, item = queue[0]
                    try:
                        size = os.path.getsize(item.input)
                        item.output.parent.mkdir(parents=True, exist_ok=True)
                    except OSError as err:  # input gone, or its output folder cannot be made
                        queue.popleft()
                        what = "cannot read the input" if not os.path.exists(item.input) else "cannot prepare its output"
                        msg = f"{item.input}: {what} ({err.strerror or err})"
                        m.fail_item(item_id, msg)
                        summary.add_failure(item, msg)
                        log(f"failed {item.rel}: {msg}")
                        continue
                    need = int(size * settings.space_factor) + settings.min_free + sum(estimates.values())
                    free = free_space(str(item.output.parent))
                    if free < need:
                        summary.stopped = (f"low disk space on {out}: {free / 2**20:.0f} MiB free, "
                                           f"about {need / 2**20:.0f} MiB needed for {item.input.name}; "
                                           "free some space and run the same command again to resume")
                        log(f"stopping: {summary.stopped}")
                        break
                    queue.popleft()
                    row = m.get(item_id)
                    if item.output.exists() and not row["owns_output"]:
                        err = f"{item.output}: output exists and was not written by this batch; move it away"
                        m.refuse_output(item_id, err)
                        summary.add_failure(item, err)
                        log(f"failed {item.rel}: {err}")
                        continue
                    m.mark_running(item_id)
                    estimates[item_id] = int(size * settings.space_factor)
                    engine.submit({"id": item_id, "input": str(item.input), "output": str(item.output),
                                   "options": settings.options})
                if sig.stop:
                    summary.stopped = "interrupted"
                    break
                if not engine.running():
                    break
                try:
                    outcomes = engine.poll(0.5)
                except Interrupted:
                    summary.stopped = "interrupted"
                    break
                for o in outcomes:
                    item_id = o["id"]
                    estimates.pop(item_id, None)
                    item = items[item_id]
                    if o["ok"]:
                        res = o["result"]
                        m.mark_done(item_id, res)
                        summary.done += 1
                        summary.frames += int(res.get("frames_in") or 0)
                        n_finished += 1
                        secs = res.get("seconds")
                        log(f"[{n_finished}/{n_total}] done {item.rel}"
                            + (f" ({secs:.1f} s)" if isinstance(secs, (int, float)) else ""))
                        for note in res.get("warnings") or ():
                            log(f"  warning: {note}")
                        continue
                    attempts = m.get(item_id)["attempts"] + max(0, int(o.get("tries", 1)) - 1)
                    retry = o.get("retryable") and attempts < settings.max_tries
                    m.mark_failed(item_id, o["error"], o.get("detail"), requeue=retry,
                                  extra_attempts=max(0, int(o.get("tries", 1)) - 1))
                    if retry:
                        summary.retried += 1
                        queue.append((item_id, item))
                        log(f"retrying {item.rel} (attempt {attempts}/{settings.max_tries} failed: {o['error']})")
                    else:
                        summary.add_failure(item, o["error"])
                        n_finished += 1
                        log(f"[{n_finished}/{n_total}] failed {item.rel}: {o['error']}")
        except Interrupted:
            summary.stopped = "interrupted"
        summary.terminated = sig.signum == signal.SIGTERM
        if summary.stopped == "interrupted":
            log("interrupted: stopping the running item(s); they will be redone by the next run")
            for item_id in engine.stop():
                m.requeue_interrupted(item_id)
                queue.appendleft((item_id, items[item_id]))


def _dry_run(items, out, cfg_hash, settings, summary, log) -> BatchSummary:
    path = out / mf.MANIFEST_NAME
    m = mf.Manifest(out, readonly=True) if path.exists() else None
    try:
        for item in items:
            stat = _stat(item)
            d = mf.decide(m.row(item.input) if m else None, cfg_hash=cfg_hash, output=str(item.output),
                          max_tries=settings.max_tries, retry_failed=settings.retry_failed, **stat)
            summary.items.append({"input": str(item.input), "output": str(item.output),
                                  "action": "run" if d.run else "skip", "reason": d.reason})
            if not d.run:
                summary.skipped += 1
                summary.skipped_failed += d.reason == "failed"
        summary.remaining = summary.total - summary.skipped
    finally:
        if m:
            m.close()
    return summary


def running_driver(out: Path) -> str | None:
    """host:pid of the driver running a batch on `out` now (it holds the lock), else None."""
    try:
        fd = os.open(Path(out) / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
        return None
    finally:
        os.close(fd)


def batch_status(out_dir) -> dict:
    """Counts by status, failures with their errors, the last run's summary, and whether a
    driver is running now."""
    driver = running_driver(Path(os.path.abspath(out_dir)))
    with mf.Manifest(out_dir, readonly=True) as m:
        rows = m.rows()
        done = [r for r in rows if r["status"] == "done"]
        return {
            "out": str(Path(os.path.abspath(out_dir))),
            "manifest": str(m.path),
            "total": len(rows),
            "counts": m.counts(),
            "frames_done": sum(r["frames_in"] or 0 for r in done),
            "seconds_done": sum(r["seconds"] or 0 for r in done),
            "failures": [{"path": r["path"], "attempts": r["attempts"], "error": r["last_error"]}
                         for r in rows if r["status"] == "failed"],
            "running": [r["path"] for r in rows if r["status"] == "running"],
            "last_run": m.last_run(),
            "driver": driver,
        }
