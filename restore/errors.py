"""User-facing errors.

Anything the user can fix (bad file, bad option, bad config) is raised as RestoreError with a
one-line message that names the file or key; the CLI prints it without a traceback and exits
non-zero. Everything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import os


class RestoreError(Exception):
    """A problem the user can fix. `str(err)` is a single line suitable for the terminal."""

    exit_code = 2

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.message = " ".join(str(message).split())  # always one line; without the path
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)


class MediaError(RestoreError):
    """The file is missing, unreadable, corrupt or has no usable video."""


class DamagedMediaError(MediaError):
    """Decoding stopped at damaged data in the middle of a stream (what came before decoded)."""


class ConfigError(RestoreError):
    """A config (YAML) or option has an unknown key or a bad value."""
