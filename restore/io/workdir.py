"""The resume work folder of one restoration: the finished chunks, so a killed run continues.

`restore enhance --resume` (and every batch item) keeps, next to the output,

    .NAME.restore-work-KEY/          NAME = the output's file name, KEY = work_key(input, settings)
        lock                         flock held by the run using the folder
        meta.json                    the chunk plan, the source timestamps, the settings
        progress.json                {"chunks_done": k}: chunks 0..k-1 are committed
        seg-000000.mkv ...           the output frames each chunk emitted, FFV1 (lossless RGB, 8 or
                                     16 bits as given to the encoder), one file per chunk
        times-000000.npy ...         their output times (float64 seconds, exact)
        state.npz                    what the next chunk needs: the anchor frames of every stage
                                     and the held last frame (float32, exact)

Why the emitted frames and not the restored ones: a resumed run then replays them into the final
encoder unchanged and only restores what is left, so the output is bit-identical to an
uninterrupted run (the final encoder is deterministic given the same frames and times), and no
interpolation is redone. The cost is disk: about half the raw RGB size of the output frames
(FFV1 on natural video); `estimate_bytes` gives the figure checked against free space up front.

Commit order makes every crash point safe: segment and times are written and fsynced under their
final names, then state.npz, then progress.json is replaced atomically. Files of a chunk beyond
`chunks_done` are leftovers of a killed run and are overwritten.
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from restore.errors import RestoreError
from restore.io.atomic import write_error

WORK_MARK = ".restore-work-"
FORMAT_VERSION = 1
_MIB = 1 << 20


def quick_hash(path: str | os.PathLike, size: int | None = None) -> str:
    """BLAKE2b-128 of the size, the first MiB and the last MiB: two reads per file, and a replaced
    file is caught even when its size and mtime were preserved (cp -p, rsync -t)."""
    size = os.path.getsize(path) if size is None else size
    h = hashlib.blake2b(digest_size=16)
    h.update(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        h.update(f.read(_MIB))
        if size > 2 * _MIB:
            f.seek(size - _MIB)
            h.update(f.read(_MIB))
        elif size > _MIB:
            h.update(f.read())
    return h.hexdigest()


def work_key(source: str | os.PathLike, settings: dict) -> str:
    """16 hex digits naming a work folder: the input's content and everything that changes the
    frames handed to the encoder."""
    st = os.stat(source)
    blob = json.dumps({"v": FORMAT_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "hash": quick_hash(source, st.st_size), "settings": settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def work_glob(output: str | os.PathLike) -> str:
    out = Path(os.fspath(output))
    return glob.escape(str(out.parent / f".{out.name}{WORK_MARK}")) + "*"


def estimate_bytes(frames: int, width: int, height: int, bytes_per_sample: int) -> int:
    """Work folder size for `frames` output frames: FFV1 keeps natural video at about 40-60 % of
    raw RGB; 0.7 leaves room for noisy input (which compresses worse)."""
    return int(frames * width * height * 3 * bytes_per_sample * 0.7)


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    with contextlib.suppress(OSError):
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)


class WorkDir:
    """The work folder of `output` for work key `key` (see the module docstring)."""

    def __init__(self, output: str | os.PathLike, key: str):
        self.output = Path(os.fspath(output))
        self.key = key
        self.path = self.output.parent / f".{self.output.name}{WORK_MARK}{key}"
        self._lock_fd: int | None = None
        self.peak_bytes = 0

    # -- ownership --------------------------------------------------------------------------
    def acquire(self) -> None:
        """Create the folder and lock it; RestoreError if another run holds it."""
        try:
            self.path.mkdir(exist_ok=True)
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            raise RestoreError(f"cannot create the resume work folder {self.path.name} "
                               f"({err.strerror or err})", self.output) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RestoreError("another restore run is writing this output (its resume work folder "
                               "is locked)", self.output) from None
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def remove(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    def sweep_others(self) -> list[str]:
        """Remove this output's work folders for other keys (the input or the settings changed,
        so they can never be resumed) unless a live run holds them."""
        removed = []
        for other in glob.glob(work_glob(self.output)):
            p = Path(other)
            if p == self.path or p.is_symlink() or not p.is_dir():
                continue
            try:
                fd = os.open(p / "lock", os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                fd = None
            except OSError:
                continue
            try:
                if fd is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue
                shutil.rmtree(p, ignore_errors=True)
                removed.append(str(p))
            finally:
                if fd is not None:
                    os.close(fd)
        return removed

    # -- contents ---------------------------------------------------------------------------
    def segment_path(self, k: int) -> Path:
        return self.path / f"seg-{k:06d}.mkv"

    def _times_path(self, k: int) -> Path:
        return self.path / f"times-{k:06d}.npy"

    def load(self) -> dict | None:
        """{"meta": ..., "chunks_done": k} of a folder this key already started, else None."""
        try:
            meta = json.loads((self.path / "meta.json").read_text())
            progress = json.loads((self.path / "progress.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("key") != self.key or meta.get("version") != FORMAT_VERSION:
            return None
        done = int(progress.get("chunks_done", 0))
        for k in range(done):
            if not self._times_path(k).exists():
                return None
        if done and not (self.path / "state.npz").exists():
            return None
        self.peak_bytes = max(self.peak_bytes, self.size_bytes())
        return {"meta": meta, "chunks_done": done}

    def start(self, meta: dict) -> None:
        """Begin afresh: clear any chunk files and record the plan."""
        for pattern in ("seg-*", "times-*", "state.npz", "*.tmp", "progress.json"):
            for p in self.path.glob(pattern):
                with contextlib.suppress(OSError):
                    p.unlink()
        _write_atomic(self.path / "meta.json",
                      json.dumps({**meta, "key": self.key, "version": FORMAT_VERSION}).encode())
        _write_atomic(self.path / "progress.json", b'{"chunks_done": 0}')

    def commit(self, k: int, times: list[float], state: dict[str, np.ndarray]) -> None:
        """Chunk k is finished: its segment (already closed) and times, then the state for chunk
        k + 1, then the progress mark, each durable before the next."""
        seg = self.segment_path(k)
        try:
            if seg.exists():
                _fsync_path(seg)
            buf = _npy_bytes(np.asarray(times, dtype=np.float64))
            _write_atomic(self._times_path(k), buf)
            b = io.BytesIO()
            np.savez(b, **state)
            _write_atomic(self.path / "state.npz", b.getvalue())
            _write_atomic(self.path / "progress.json", json.dumps({"chunks_done": k + 1}).encode())
        except OSError as err:   # a full disk: one line; what was committed before stays resumable
            raise write_error(err, self.output) from None
        self.peak_bytes = max(self.peak_bytes, self.size_bytes())

    def times(self, k: int) -> np.ndarray:
        return np.load(self._times_path(k), allow_pickle=False)

    def state(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "state.npz", allow_pickle=False) as z:
            return {name: z[name] for name in z.files}

    def size_bytes(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for p in self.path.iterdir():
                with contextlib.suppress(OSError):
                    total += p.stat().st_size
        return total


def _npy_bytes(arr: np.ndarray) -> bytes:
    b = io.BytesIO()
    np.save(b, arr, allow_pickle=False)
    return b.getvalue()
