"""Watchdog for the throwaway Ray cluster a batch driver starts (`--engine ray` without an address).

ray.init() started that way spawns a GCS server, a raylet, a dashboard process, log and
autoscaler monitors, and the raylet spawns a dashboard agent, a runtime-env agent and the worker
processes. A driver that exits normally stops them (ray.shutdown()); a SIGKILLed one cannot, and
the agents outlive it, still listening on their ports.

The driver starts `python -m restore.batch.raywatch DRIVER_PID` with a pipe on its stdin and
never writes to it. While the pipe is open the watchdog keeps a list of the driver's descendant
processes (by pid and start time, so a reused pid is never mistaken for one of them), refreshed
twice a second because Ray starts workers on demand. When the pipe closes (the driver exited or
was killed: the kernel closes its end either way) every process on the list that still runs is
sent SIGTERM, then SIGKILL after a grace period. After a normal ray.shutdown() the list is
already dead and nothing is sent.

Linux only (/proc); elsewhere the driver does not start it.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

POLL_SECONDS = 0.5
GRACE_SECONDS = 3.0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()  # the command name may hold spaces and brackets
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[1]), int(rest[19])


def descendants(root: int, exclude: int) -> dict[int, int]:
    """{pid: start time} of every live descendant of `root` except `exclude` (and its own)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st is not None:
            children.setdefault(st[0], []).append(int(name))
            starts[int(name)] = st[1]
    found: dict[int, int] = {}
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if pid != exclude and pid not in found:
                found[pid] = starts[pid]
                todo.append(pid)
    return found


def _alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] == start


def kill_all(procs: dict[int, int], grace: float = GRACE_SECONDS) -> list[int]:
    """SIGTERM, then SIGKILL, the processes of `procs` that still run; returns those signalled."""
    live = {pid: start for pid, start in procs.items() if _alive(pid, start)}
    for pid in live:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p, s) for p, s in live.items()):
        time.sleep(0.1)
    for pid, start in live.items():
        if _alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return list(live)


def main(argv: list[str]) -> int:
    driver = int(argv[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    me = os.getpid()
    known: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # EOF: the driver is gone
        if _stat(driver) is None:
            break
        known.update(descendants(driver, me))
    kill_all(known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
