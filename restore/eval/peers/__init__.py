"""Peers: methods from outside the project that the benchmark runs next to ours.

A peer is optional: `unavailable(ctx)` says why it cannot run here (not installed, no ffmpeg, no
--dvdnet folder), and the benchmark lists it as skipped with that reason instead of dropping it.
Nothing here imports peer code: ffmpeg runs as a process, the learned peers run in a child process
(restore.eval.peers.worker) with their install folders on that child's PYTHONPATH only.

Every peer follows the method contracts of restore.eval.methods: uint8 RGB frames in and out.
"""
from __future__ import annotations

from .base import Peer, WorkerPeer  # noqa: F401


def builtin_peers() -> list[Peer]:
    from .ffmpeg import ffmpeg_peers
    from .learned import learned_peers

    return ffmpeg_peers() + learned_peers()
