"""Writers for ScoreReports: terminal table, per-frame CSV, JSON, and per-frame plots (PNG).

JSON follows restore.ops.jsonsafe: a PSNR of identical frames is written as the string "inf" (read
back by float("inf")), NaN (e.g. no E_warp for frame 0) as null. CSV writes inf, which float()
parses too, and NaN as an empty cell.
"""
from __future__ import annotations

import csv
import json
import math
import os
from typing import Sequence

from ..ops.jsonsafe import json_safe
from .score import HIGHER_IS_BETTER, SUMMARY_STATS, ScoreReport

_FMT = {"psnr": "{:.3f}", "ssim": "{:.5f}", "lpips": "{:.4f}", "vmaf": "{:.3f}", "ewarp": "{:.6f}",
        "flicker": "{:.5f}", "tof": "{:.4f}", "tlp": "{:.5f}"}
UNITS = {"psnr": "dB", "ssim": "", "lpips": "", "vmaf": "", "ewarp": "", "flicker": "", "tof": "px", "tlp": ""}


def _fmt(metric: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return _FMT.get(metric.split("_")[0], "{:.4f}").format(value)


def metric_label(report: ScoreReport, metric: str) -> str:
    if metric == "psnr":
        return {"y": "PSNR-Y (BT.601)", "rgb": "PSNR-RGB", "yuv": "PSNR-YUV avg"}[report.psnr_mode]
    if metric.startswith("psnr_"):
        return f"PSNR-{metric[5:].upper()}"
    ffmpeg_ssim = report.settings.get("ssim", {}).get("mode") == "ffmpeg"
    if metric == "ssim" and ffmpeg_ssim:
        return "SSIM All (ffmpeg)"
    if metric.startswith("ssim_"):
        return f"SSIM-{metric[5:].upper()}" + (" (ffmpeg)" if ffmpeg_ssim else "")
    return {"ssim": "SSIM (Y)", "lpips": "LPIPS (alex)", "vmaf": "VMAF v0.6.1", "vmaf_neg": "VMAF NEG",
            "ewarp": "E_warp", "flicker": "flicker", "tof": "tOF (px)", "tlp": "tLP"}.get(metric, metric)


def table(reports: Sequence[ScoreReport]) -> str:
    """Summary table: one block of rows per distorted file, one row per metric."""
    head = ["file", "metric", "seq", *SUMMARY_STATS]
    rows = []
    for rep in reports:
        name = os.path.basename(rep.distorted)
        for metric, stats in rep.summary.items():
            if metric == "psnr":
                seq = rep.aggregates.get("psnr")
            elif metric.startswith("psnr_"):
                seq = rep.aggregates.get(metric)
            else:
                seq = None
            better = "" if metric not in HIGHER_IS_BETTER else (" ↑" if HIGHER_IS_BETTER[metric] else " ↓")
            rows.append([name, metric_label(rep, metric) + better, _fmt(metric, seq) if seq is not None else "",
                         *(_fmt(metric, stats[k]) for k in SUMMARY_STATS)])
            name = ""
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [head] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = ["seq = PSNR of the mean MSE over all frames (ffmpeg's number); mean = mean of per-frame "
             "values (identical frames count as 100 dB)"]
    if any(m.startswith("vmaf") for rep in reports for m in rep.summary):
        notes.append("VMAF: per-frame scores clipped to [0, 100], pooled by the mean (libvmaf's); "
                     "NEG = no enhancement gain")
    scored_in = {rep.settings.get("transfer", {}).get("scored_in") for rep in reports} - {None}
    for text in sorted(scored_in):
        notes.append(f"scored in: {text}")
    for rep in reports:
        notes.append(f"{os.path.basename(rep.distorted)}: {rep.frames_scored} frames scored"
                     + (f", offset {rep.offset:+d}" if rep.offset else ""))
        for w in rep.warnings:
            notes.append(f"  warning: {w}")
    return "\n".join(lines + [""] + notes)


def frame_columns(reports: Sequence[ScoreReport]) -> list[str]:
    cols = []
    for rep in reports:
        for row in rep.frames:
            for k in row:
                if k not in cols:
                    cols.append(k)
            break
    return cols


def write_csv(reports: Sequence[ScoreReport], path) -> None:
    cols = frame_columns(reports)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["distorted", *cols])
        for rep in reports:
            for row in rep.frames:
                w.writerow([rep.distorted, *("" if row.get(c) is None or (isinstance(row.get(c), float)
                                                                      and math.isnan(row[c]))
                                              else row[c] for c in cols)])


def write_json(reports: Sequence[ScoreReport], path=None, *, frames: bool = True) -> str:
    text = json.dumps(json_safe({"reports": [r.to_dict(frames=frames) for r in reports]}), indent=2)
    if path is not None:
        with open(path, "w") as fh:
            fh.write(text + "\n")
    return text


def plot(reports: Sequence[ScoreReport], path) -> None:
    """One panel per metric, one curve per distorted file, frame index on x (PNG, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    metrics = []
    for rep in reports:
        metrics += [m for m in rep.summary if m not in metrics]
    if not metrics:
        raise ValueError("nothing to plot")
    fig = Figure(figsize=(9, 2.4 * len(metrics)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        for rep in reports:
            if metric not in rep.summary:
                continue
            xs, ys = [], []
            for row in rep.frames:
                v = row.get(metric)
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    continue
                xs.append(row["frame"])
                ys.append(min(v, 100.0) if metric.startswith("psnr") else v)
            ax.plot(xs, ys, lw=1.2, label=os.path.basename(rep.distorted))
        unit = "dB" if metric.startswith("psnr") else UNITS.get(metric, "")
        ax.set_ylabel(metric_label(reports[0], metric) + (f" [{unit}]" if unit else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="best")
    axes[-1].set_xlabel("reference frame")
    fig.savefig(path, dpi=100)
