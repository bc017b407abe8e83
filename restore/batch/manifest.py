"""The batch manifest: one SQLite database (WAL mode) in the output folder.

One row per input. Only the batch driver writes it (workers return results to the driver), so a
cluster never needs the database on shared storage; WAL lets `restore batch status` read it while
a batch runs.

Content hash ("quick hash"): BLAKE2b-128 over the file size, its first MiB and its last MiB. It
costs two 1 MiB reads per file per run and catches a replaced file whose size and mtime were
preserved (cp -p, rsync -t). An item is redone when its size, mtime or quick hash changed.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from restore.errors import RestoreError
from restore.io.workdir import quick_hash  # noqa: F401  (the manifest's content hash)

MANIFEST_NAME = ".restore-batch.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("queued", "running", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL UNIQUE,      -- absolute input path
    rel          TEXT NOT NULL,             -- path under its source folder (mirrored under --out)
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    content_hash TEXT NOT NULL,             -- quick hash, see module docstring
    config_hash  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,                      -- one line
    error_detail TEXT,                      -- traceback of an unexpected error
    output       TEXT NOT NULL,
    owns_output  INTEGER NOT NULL DEFAULT 0,  -- 1 once this batch may overwrite `output`
    worker       TEXT,                      -- host:pid that ran the last attempt
    added_at     REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    seconds      REAL,                      -- worker time of the last attempt
    frames_in    INTEGER,
    frames_out   INTEGER,
    result       TEXT,                      -- JSON returned by the worker (EnhanceResult.to_dict())
    metrics      TEXT                       -- JSON, when the item was scored
);
CREATE INDEX IF NOT EXISTS items_status ON items (status);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    started_at  REAL NOT NULL,
    finished_at REAL,
    sources     TEXT,                       -- JSON list of the SRC arguments
    config      TEXT NOT NULL,              -- JSON of the hashed configuration
    engine      TEXT NOT NULL,
    summary     TEXT                        -- JSON of the end-of-batch summary
);
"""

CSV_COLUMNS = ("path", "rel", "status", "attempts", "last_error", "output", "size", "mtime_ns",
               "content_hash", "config_hash", "started_at", "finished_at", "seconds",
               "frames_in", "frames_out", "metrics")


def config_hash(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Decision:
    """What a run does with one planned input."""
    run: bool
    reason: str          # "new", "input changed", "config changed", "output missing",
                         # "interrupted", "queued", "retry", "done", "failed"
    reset: bool = False  # start over: attempts, error and result cleared


def decide(row, *, size: int, mtime_ns: int, content_hash: str, cfg_hash: str, output: str,
           max_tries: int, retry_failed: bool) -> Decision:
    """Pure resume policy (see docs/batch.md)."""
    if row is None:
        return Decision(True, "new", reset=True)
    if (row["size"], row["mtime_ns"], row["content_hash"]) != (size, mtime_ns, content_hash):
        return Decision(True, "input changed", reset=True)
    if (row["config_hash"], row["output"]) != (cfg_hash, output):
        return Decision(True, "config changed", reset=True)
    status = row["status"]
    if status == "done":
        if os.path.exists(row["output"]):
            return Decision(False, "done")
        return Decision(True, "output missing", reset=True)
    if status == "running":  # no driver holds the lock, so it was killed mid-item
        return Decision(True, "interrupted")
    if status == "queued":
        return Decision(True, "queued")
    if retry_failed:
        return Decision(True, "retry", reset=True)
    if row["attempts"] < max_tries:
        return Decision(True, "retry")
    return Decision(False, "failed")


class Manifest:
    """The manifest of one output folder. Use as a context manager."""

    def __init__(self, out_dir: str | os.PathLike, *, readonly: bool = False):
        self.path = Path(os.path.abspath(out_dir)) / MANIFEST_NAME
        if self.path.is_symlink():
            raise RestoreError("the batch manifest is a symbolic link; refusing to follow it", self.path)
        try:
            self._open(out_dir, readonly)
        except sqlite3.DatabaseError as err:  # not a database, truncated, or a damaged page
            with_db = getattr(self, "db", None)
            if with_db is not None:
                with_db.close()
            raise RestoreError(f"the batch manifest is unreadable ({err}); it may be corrupt: move it "
                               "away (the next run then starts a new one and redoes every input "
                               "whose output it did not write) or restore a backup", self.path) from None

    def _open(self, out_dir, readonly: bool) -> None:
        if readonly:
            if not self.path.exists():
                raise RestoreError(f"no batch manifest ({MANIFEST_NAME}) here", out_dir)
            self.db = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30,
                                      isolation_level=None)
        else:
            self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (only power loss can drop the last commit).
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self.db.row_factory = sqlite3.Row
        version = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise RestoreError(f"unsupported manifest schema version {version and version[0]}", self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.db.close()

    # -- planning ---------------------------------------------------------------------------
    def row(self, path) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM items WHERE path=?", (str(path),)).fetchone()

    def get(self, item_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()

    def apply(self, item, stat: dict, cfg_hash: str, decision: Decision) -> int:
        """Record a plan decision for `item` (a PlanItem) and return its row id."""
        row = self.row(item.input)
        now = time.time()
        if row is None:
            cur = self.db.execute(
                "INSERT INTO items (path, rel, size, mtime_ns, content_hash, config_hash, status, "
                "output, added_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                (str(item.input), item.rel, stat["size"], stat["mtime_ns"], stat["content_hash"],
                 cfg_hash, str(item.output), now))
            return cur.lastrowid
        if decision.reset:
            same_output = row["output"] == str(item.output)
            self.db.execute(
                "UPDATE items SET rel=?, size=?, mtime_ns=?, content_hash=?, config_hash=?, "
                "status='queued', attempts=0, last_error=NULL, error_detail=NULL, output=?, "
                "owns_output=?, started_at=NULL, finished_at=NULL, seconds=NULL, frames_in=NULL, "
                "frames_out=NULL, result=NULL, metrics=NULL WHERE id=?",
                (item.rel, stat["size"], stat["mtime_ns"], stat["content_hash"], cfg_hash,
                 str(item.output), int(same_output and bool(row["owns_output"])), row["id"]))
        elif decision.run:
            self.db.execute("UPDATE items SET status='queued' WHERE id=?", (row["id"],))
        return row["id"]

    # -- the driver's transitions -----------------------------------------------------------
    def mark_running(self, item_id: int, worker: str | None = None) -> None:
        self.db.execute("UPDATE items SET status='running', attempts=attempts+1, owns_output=1, "
                        "started_at=?, finished_at=NULL, worker=? WHERE id=?",
                        (time.time(), worker, item_id))

    def mark_done(self, item_id: int, result: dict) -> None:
        metrics = result.get("metrics")
        self.db.execute(
            "UPDATE items SET status='done', last_error=NULL, error_detail=NULL, finished_at=?, "
            "seconds=?, frames_in=?, frames_out=?, result=?, metrics=?, worker=COALESCE(?, worker) "
            "WHERE id=?",
            (time.time(), result.get("seconds"), result.get("frames_in"), result.get("frames_out"),
             json.dumps(result, default=str), None if metrics is None else json.dumps(metrics, default=str),
             result.get("worker"), item_id))

    def mark_failed(self, item_id: int, error: str, detail: str | None = None, *,
                    requeue: bool = False, extra_attempts: int = 0) -> None:
        self.db.execute(
            "UPDATE items SET status=?, last_error=?, error_detail=?, finished_at=?, "
            "attempts=attempts+? WHERE id=?",
            ("queued" if requeue else "failed", error, detail, time.time(), extra_attempts, item_id))

    def requeue_interrupted(self, item_id: int) -> None:
        """The driver stopped the item: put it back without counting the attempt."""
        self.db.execute("UPDATE items SET status='queued', attempts=MAX(attempts-1, 0), "
                        "started_at=NULL WHERE id=? AND status='running'", (item_id,))

    def fail_item(self, item_id: int, error: str) -> None:
        """The item cannot even start (its input vanished): failed, one attempt used."""
        self.db.execute("UPDATE items SET status='failed', attempts=attempts+1, last_error=?, "
                        "error_detail=NULL, finished_at=? WHERE id=?", (error, time.time(), item_id))

    def record_unreadable(self, item, cfg_hash: str, error: str) -> None:
        """An input found by the scan that cannot be read now: a failed row (inserted if new)."""
        row = self.row(item.input)
        if row is None:
            self.db.execute(
                "INSERT INTO items (path, rel, size, mtime_ns, content_hash, config_hash, status, "
                "attempts, last_error, output, added_at, finished_at) "
                "VALUES (?, ?, -1, -1, '', ?, 'failed', 1, ?, ?, ?, ?)",
                (str(item.input), item.rel, cfg_hash, error, str(item.output), time.time(), time.time()))
        else:
            self.fail_item(row["id"], error)

    def refuse_output(self, item_id: int, error: str) -> None:
        """The output path holds a file this batch did not write: fail without touching it."""
        self.db.execute("UPDATE items SET status='failed', attempts=attempts+1, last_error=?, "
                        "finished_at=? WHERE id=?", (error, time.time(), item_id))

    # -- runs -------------------------------------------------------------------------------
    def start_run(self, config: dict, engine: str, sources: list[str] | None = None) -> int:
        cur = self.db.execute("INSERT INTO runs (started_at, sources, config, engine) VALUES (?, ?, ?, ?)",
                              (time.time(), json.dumps(sources), json.dumps(config, sort_keys=True, default=str),
                               engine))
        return cur.lastrowid

    def finish_run(self, run_id: int, summary: dict) -> None:
        self.db.execute("UPDATE runs SET finished_at=?, summary=? WHERE id=?",
                        (time.time(), json.dumps(summary, default=str), run_id))

    # -- reading ----------------------------------------------------------------------------
    def rows(self, status: str | None = None) -> list[sqlite3.Row]:
        if status is None:
            return self.db.execute("SELECT * FROM items ORDER BY path").fetchall()
        return self.db.execute("SELECT * FROM items WHERE status=? ORDER BY path", (status,)).fetchall()

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            counts[status] = n
        return counts

    def last_run(self) -> dict | None:
        r = self.db.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if r is None:
            return None
        return {"id": r["id"], "started_at": r["started_at"], "finished_at": r["finished_at"],
                "engine": r["engine"], "config": json.loads(r["config"]),
                "summary": json.loads(r["summary"]) if r["summary"] else None}

    def export_csv(self, path: str | os.PathLike) -> int:
        """Write the manifest as CSV (one row per input); returns the number of rows."""
        rows = self.rows()
        final = Path(os.fspath(path))
        # A fresh temp name created exclusively (O_EXCL never follows a symlink planted at that
        # name), then renamed over `path`: a symlink at `path` is replaced, its target untouched.
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(CSV_COLUMNS)
                for r in rows:
                    w.writerow(["" if r[c] is None else r[c] for c in CSV_COLUMNS])
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return len(rows)
