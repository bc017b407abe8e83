"""restore: bring degraded video back.

Python API (the CLI is a thin layer over these):

    import restore
    restore.probe("clip.mp4")                         # streams, codecs, colour tags
    restore.enhance("clip.mp4", denoise=True, scale=2)  # writes clip_restored.mp4
    restore.preview("clip.mp4", denoise=True, scale=2)  # 3 s of it, and the whole run's time
    restore.score("ref.mp4", "dist.mp4")              # PSNR / SSIM / LPIPS per frame
"""
from __future__ import annotations

__version__ = "0.1.0"

# Lazy attributes keep `import restore` cheap (no torch import) for the CLI and notebooks.
_LAZY = {
    "probe": ("restore.io", "probe"),
    "decode": ("restore.io", "decode"),
    "enhance": ("restore.pipeline", "enhance"),
    "preview": ("restore.pipeline.preview", "preview"),
    "score": ("restore.metrics.score", "score"),
    "RestoreError": ("restore.errors", "RestoreError"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'restore' has no attribute {name!r}")


__all__ = list(_LAZY) + ["__version__"]
