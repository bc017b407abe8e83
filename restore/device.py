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


PRECISIONS = ("auto", "fp32", "bf16")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX): there oneDNN runs a
    bf16 convolution about twice as fast as fp32; elsewhere bf16 is emulated and slower."""
    import torch

    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False


def resolve_precision(precision: str | None, device: str) -> str:
    """The number format the networks run in on `device`: 'auto' -> 'bf16' on a CPU with native
    bf16 arithmetic, else 'fp32' (on CUDA the restorers already autocast to fp16). Weights and the
    restored estimate's skip branch stay fp32 either way; only the network's layers change."""
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if not str(device).startswith("cpu"):
        return "fp32"
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return precision


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    A restorer allocates and frees full-resolution buffers of tens to hundreds of MB per chunk.
    By default glibc serves each from a fresh mmap and unmaps it on free, so every chunk pays the
    page faults of touching that memory again: on this project's 2-core CPU, an eighth of the
    interpolator's time per 1280x720 frame (docs/diffusion.md). With large blocks taken from the
    heap and the heap not trimmed, the process's memory stays at its peak, which a restoring
    process reaches on every chunk anyway. Process-wide, so entry points call it (the CLI, batch
    workers, benchmarks), never the library on import. False where the C library is not glibc.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    ok = mallopt(m_mmap_threshold, 1 << 30)  # blocks up to 1 GiB from the heap, reused
    ok &= mallopt(m_trim_threshold, (1 << 31) - 1)  # keep up to 2 GiB of free heap top
    ok &= mallopt(m_top_pad, 1 << 26)  # grow the heap 64 MiB at a time
    return bool(ok)
