"""Atomic outputs: write under a hidden temporary name in the destination directory, rename.

    with atomic_output("out.mp4", overwrite=False, input_path="in.mp4") as tmp:
        write_everything_to(tmp)         # tmp = dir/.out.restore-XXXXXX.mp4 (same extension)
    # success: os.replace(tmp, "out.mp4"); any exception (KeyboardInterrupt too): tmp removed

A failed or interrupted run never leaves a partial file under the final name, and an
existing file is only replaced once the new one is complete. Temporary files live in the
destination directory so the final rename never crosses file systems.

Killed writers: SIGKILL or a power cut gives no chance to clean up, so every temp file is held
open with an exclusive flock by the process writing it, for as long as it exists.
`sweep_stale_temps(final)` removes the temp files of `final` whose lock nobody holds (their
writer is dead) and leaves those of a live writer alone, so it is safe to call while another
run writes the same output.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import os
import secrets
import shutil
import stat
import time
from pathlib import Path
from typing import Iterable, Iterator

from restore.errors import RestoreError

__all__ = ["atomic_output", "StagedOutput", "check_output_path", "temp_path_for", "discard_temp",
           "release_temp", "sweep_stale_temps", "temp_glob"]

TEMP_MARK = ".restore-"

# temp path -> fd holding its flock (see the module docstring); closed when the file is renamed
# into place or deleted.
_HELD: dict[str, int] = {}

_UMASK = os.umask(0o022)  # read once at import (umask can only be read by setting it)
os.umask(_UMASK)


def _as_list(paths) -> list[Path]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output_path(final_path, *, overwrite: bool = False,
                      input_path: str | os.PathLike | Iterable | None = None) -> Path:
    """Validate an output path before any work starts; RestoreError (one line) if unusable.

    Checks: output is not one of the inputs, does not exist unless `overwrite`, is not a
    directory, and its directory exists and is writable."""
    final = Path(os.fspath(final_path))
    for inp in _as_list(input_path):
        if _same_file(final, inp):
            raise RestoreError("output path is the same file as the input; choose another name",
                               final)
    if final.is_dir():
        raise RestoreError("output path is a directory", final)
    parent = final.parent if str(final.parent) else Path(".")
    if not parent.exists():
        raise RestoreError(f"output directory does not exist: {parent}", final)
    if not parent.is_dir():
        raise RestoreError(f"output directory is not a directory: {parent}", final)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RestoreError(f"output directory is not writable: {parent}; write the output elsewhere", final)
    if (final.exists() or final.is_symlink()) and not overwrite:
        raise RestoreError("output file already exists (use --overwrite / overwrite=True)", final)
    # os.access cannot see read-only mounts, ACLs or root squash: really create a file
    discard_temp(temp_path_for(final, tag="check-"))
    return final


def temp_path_for(final_path, tag: str = "") -> Path:
    """Create (exclusively) and return an empty hidden temp file next to `final_path`, with
    the same extension so FFmpeg picks the right muxer: dir/.name.restore-<tag><hex>.ext."""
    final = Path(os.fspath(final_path))
    parent = final.parent if str(final.parent) else Path(".")
    for _ in range(100):
        name = f".{final.stem}{TEMP_MARK}{tag}{secrets.token_hex(4)}{final.suffix}"
        tmp = parent / name
        try:
            # Created with no permissions, locked, then opened up: a sweep that sees mode 000
            # knows the file is being created (not yet locked) rather than abandoned.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0)
        except FileExistsError:
            continue
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise write_error(err, final) from None
            raise RestoreError(f"output directory is not writable: {parent} ({err.strerror or err}); "
                               "write the output elsewhere", final) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # a file system without flock: the file is still ours, just not sweep-proof
        try:
            # 0o666 & ~umask, like any normally created file (mkstemp would force 0o600)
            os.fchmod(fd, 0o666 & ~_UMASK)
        except OSError:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        _HELD[str(tmp)] = fd
        return tmp
    raise RestoreError(f"cannot create a temporary file in {parent}", final)


def release_temp(p) -> None:
    """Drop the lock of a temp file that was renamed into place (or is gone)."""
    fd = _HELD.pop(str(p), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def discard_temp(p) -> None:
    """Delete a temp file made by temp_path_for and drop its lock."""
    _unlink_quietly(Path(p))
    release_temp(p)


def _unlink_quietly(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.unlink()


def temp_glob(final_path) -> str:
    """Glob of the temp files temp_path_for makes for `final_path`."""
    final = Path(os.fspath(final_path))
    parent = final.parent if str(final.parent) else Path(".")
    return glob.escape(str(parent / f".{final.stem}{TEMP_MARK}")) + "*" + glob.escape(final.suffix)


# Between its creation and its flock a temp file has mode 000 (see temp_path_for); one that
# stays so for this long belongs to a writer killed in that instant.
_CREATING_SECONDS = 60.0


def sweep_stale_temps(final_path, wait: float = 0.0) -> list[str]:
    """Delete the temp files of `final_path` left by dead writers (see the module docstring);
    returns the paths removed. wait: seconds to keep retrying temp files that are still locked
    (for a caller that has just killed their writer, which takes a moment to die)."""
    deadline = time.monotonic() + wait
    removed, live = _sweep_once(final_path)
    while live and time.monotonic() < deadline:
        time.sleep(0.1)
        more, live = _sweep_once(final_path)
        removed += more
    return removed


def _sweep_once(final_path) -> tuple[list[str], int]:
    removed, live = [], 0
    now = time.time()
    for name in glob.glob(temp_glob(final_path)):
        if name in _HELD:
            continue  # ours, in use
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone, a symlink, or unreadable: not ours to judge
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_mode & 0o777 == 0 and now - st.st_mtime < _CREATING_SECONDS:
                live += 1
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                live += 1
                continue  # a live writer holds it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
                removed.append(name)
        finally:
            os.close(fd)
    return removed, live


@contextlib.contextmanager
def atomic_output(final_path, overwrite: bool = False, *,
                  input_path: str | os.PathLike | Iterable | None = None) -> Iterator[Path]:
    """Yield a temp path next to `final_path`; rename it over `final_path` on success.

    On any exception, KeyboardInterrupt included, the temp file is deleted and the final path
    is left as it was. `input_path` (one path or several) guards against overwriting an input.
    """
    final = check_output_path(final_path, overwrite=overwrite, input_path=input_path)
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise RestoreError("nothing was written (temporary output vanished)", final)
        if not overwrite and final.exists():  # appeared while we were working
            raise RestoreError("output file already exists (use --overwrite / overwrite=True)",
                               final)
        os.replace(tmp, final)
        release_temp(tmp)
    except BaseException:
        discard_temp(tmp)
        raise


class StagedOutput:
    """One output written in up to two stages, as one transaction (VideoWriter's output).

    final_tmp: the temp file that commit() renames over the final name (atomic_output).
    stage_tmp: with a stage_tag, a second temp file for an intermediate result (the encoded
        video before the source's other streams are muxed in), always deleted; None without.
    commit(): rename into place and delete the stage file. abort(exc): delete both and leave the
    final name as it was. Only the first of these calls does anything.
    """

    def __init__(self, final_path, *, overwrite: bool = False,
                 input_path: str | os.PathLike | Iterable | None = None, stage_tag: str | None = None):
        self._stack: contextlib.ExitStack | None = contextlib.ExitStack()
        try:
            self.final_tmp = self._stack.enter_context(
                atomic_output(final_path, overwrite=overwrite, input_path=input_path))
            self.stage_tmp: Path | None = None
            if stage_tag is not None:
                self.stage_tmp = temp_path_for(final_path, tag=stage_tag)
                self._stack.callback(discard_temp, self.stage_tmp)
        except BaseException as err:
            self._stack.__exit__(type(err), err, err.__traceback__)
            raise

    def commit(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def abort(self, exc: BaseException | None = None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            exc = exc or RuntimeError("aborted")
            # hand the exception to atomic_output so it deletes instead of renaming
            stack.__exit__(type(exc), exc, exc.__traceback__)


def write_error(err: BaseException, path) -> RestoreError:
    """One line for a failed write: a full disk says how much is free and what to do."""
    path = Path(path)
    if getattr(err, "errno", None) == errno.ENOSPC:
        folder = path.parent
        try:
            free = f", {shutil.disk_usage(folder).free / 2**20:.0f} MiB free in {folder}"
        except OSError:
            free = ""
        return RestoreError(f"cannot write: the disk is full{free}; free some space or write the "
                            "output to another disk (-o)", path)
    reason = getattr(err, "strerror", None) or str(err)
    return RestoreError(f"cannot write: {reason}", path)
