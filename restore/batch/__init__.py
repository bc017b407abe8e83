"""Batch restoration: resumable, failure-isolated, local or on Ray (docs/batch.md).

    from restore.batch import BatchSettings, run_batch, batch_status
    summary = run_batch(["/archive"], "/restored",
                        BatchSettings(options={"preset": "default", "overrides": {"scale": 2}}))

Modules: plan (inputs -> outputs), manifest (SQLite state), workers (per-item work functions),
engines (local processes, Ray), runner (the driver).
"""
from .runner import BatchSettings, BatchSummary, batch_status, run_batch

__all__ = ["BatchSettings", "BatchSummary", "batch_status", "run_batch"]
