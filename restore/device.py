"""Device selection shared by models, metrics and the CLI."""
from __future__ import annotations

from .errors import ConfigError


def cpu_name() -> str:
    """The CPU's model name (for benchmark reports): /proc/cpuinfo where there is one."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(device: str | None = "auto") -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'. Asking for CUDA without one is a user error."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
        return device
    if device == "cpu":
        return device
    raise ConfigError(f"--device {device!r}: expected auto, cpu or cuda[:N]")
