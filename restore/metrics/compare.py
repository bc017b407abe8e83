"""Rate-quality comparison of encodes of one reference (the API behind `restore compare`)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..io.transcode import video_bitrate
from .bdrate import bd
from .score import score

# metric key in a point -> (label, higher is better)
CURVE_METRICS = {"psnr": ("PSNR", True), "ssim": ("SSIM", True), "lpips": ("LPIPS", False),
                 "vmaf": ("VMAF", True), "vmaf_neg": ("VMAF-NEG", True)}


@dataclass
class RatePoint:
    label: str
    path: str
    kbps: float
    quality: dict[str, float]
    warnings: list[str] = field(default_factory=list)


@dataclass
class CompareResult:
    reference: str
    psnr_mode: str
    method: str
    points: list[RatePoint]
    bd: list[dict]                 # one per (anchor, test, metric)
    notes: list[str] = field(default_factory=list)

    def curves(self) -> dict[str, list[RatePoint]]:
        out: dict[str, list[RatePoint]] = {}
        for p in self.points:
            out.setdefault(p.label, []).append(p)
        for pts in out.values():
            pts.sort(key=lambda p: p.kbps)
        return out

    def to_dict(self):
        return {"reference": self.reference, "psnr_mode": self.psnr_mode, "method": self.method,
                "points": [vars(p) for p in self.points], "bd": self.bd, "notes": self.notes}


def compare(reference, items, *, psnr_mode="yuv", lpips=False, method="pchip", align="none",
            device="auto", vmaf=None, ssim_mode="wang") -> CompareResult:
    """items: [(label or None, path)] or [(label, path, rate_path)]. Scores each file, measures the
    video bitrate (of rate_path when given: a restored encode is scored but costs its encode's bits),
    and computes BD-rate and BD-quality of every curve against the first one. vmaf: models as in
    score() (pooled mean VMAF per encode, BD-rate and BD-VMAF on it)."""
    lpips_model = None
    if lpips:
        from .lpips_metric import LPIPS

        lpips_model = LPIPS(device=device)
    points = []
    for label, path, *rate_path in items:
        bps, _, codec = video_bitrate(rate_path[0] if rate_path else path)
        rep = score(reference, path, metrics=("psnr", "ssim"), lpips=lpips, align=align, psnr_mode=psnr_mode,
                    device=device, lpips_model=lpips_model, vmaf=vmaf, ssim_mode=ssim_mode)
        q = {"psnr": rep.aggregates["psnr"], "ssim": rep.aggregates["ssim"]}
        for key in ("lpips", "vmaf", "vmaf_neg"):
            if key in rep.aggregates:
                q[key] = rep.aggregates[key]
        points.append(RatePoint(label or codec, os.fspath(path), bps / 1000.0, q, rep.warnings))
    result = CompareResult(os.fspath(reference), psnr_mode, method, points, [])
    curves = result.curves()
    names = list(curves)
    if len(names) < 2:
        result.notes.append("one curve only: no BD numbers (give two labels or two --encode ladders)")
        return result
    anchor = names[0]
    for test in names[1:]:
        for key, (label, higher) in CURVE_METRICS.items():
            a, t = curves[anchor], curves[test]
            if key not in a[0].quality:
                continue
            qa = [p.quality[key] for p in a]
            qt = [p.quality[key] for p in t]
            if any(v == float("inf") for v in qa + qt):
                result.notes.append(f"{key}: a lossless point (inf) cannot enter a BD fit; skipped")
                continue
            try:
                r = bd([p.kbps for p in a], qa, [p.kbps for p in t], qt, metric=key,
                       higher_is_better=higher, method=method)
            except ConfigError as err:
                result.notes.append(f"{anchor} vs {test}, {key}: {err}")
                continue
            result.bd.append({"anchor": anchor, "test": test, **r.to_dict()})
    return result


def format_result(result: CompareResult) -> str:
    lines = []
    metrics = [k for k in CURVE_METRICS if any(k in p.quality for p in result.points)]
    head = ["curve", "file", "kbps"] + [CURVE_METRICS[k][0] for k in metrics]
    rows = []
    for label, pts in result.curves().items():
        for p in pts:
            rows.append([label, os.path.basename(p.path), f"{p.kbps:.1f}"] +
                        [("inf" if p.quality[k] == float("inf") else f"{p.quality[k]:.4f}") for k in metrics])
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    fmt = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    lines += [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    psnr_name = {"yuv": "PSNR = YUV average of the mean MSE (ffmpeg)", "y": "PSNR = BT.601 Y",
                 "rgb": "PSNR = RGB"}[result.psnr_mode]
    vmaf_note = "; VMAF = mean of per-frame scores" if any(k.startswith("vmaf") for k in metrics) else ""
    lines.append(f"({psnr_name}; SSIM on Y{vmaf_note}; bitrate of the video stream's packets)")
    if result.bd:
        lines += ["", f"Bjontegaard deltas ({result.method}), test against anchor:"]
        for b in result.bd:
            unit = " dB" if b["metric"] == "psnr" else ""
            better = "lower is better" if b["metric"] == "lpips" else "higher is better"
            lines.append(f"  {b['test']} vs {b['anchor']}  {b['metric'].upper():5s}  BD-rate {b['bd_rate_percent']:+.2f}%  "
                         f"BD-{b['metric'].upper()} {b['bd_quality']:+.4f}{unit} ({better}; overlap {b['overlap']:.0%})")
            for w in b["warnings"]:
                lines.append(f"    warning: {w}")
    for p in result.points:
        for w in p.warnings:
            lines.append(f"warning: {os.path.basename(p.path)}: {w}")
    for n in result.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def plot_curves(result: CompareResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    metrics = [k for k in CURVE_METRICS if any(k in p.quality for p in result.points)]
    fig = Figure(figsize=(5.5 * len(metrics), 4.2), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, key in zip(axes, metrics):
        for label, pts in result.curves().items():
            ax.plot([p.kbps for p in pts], [min(p.quality[key], 100.0) for p in pts], "o-", label=label)
        name, higher = CURVE_METRICS[key]
        ax.set_xscale("log")
        ax.set_xlabel("video bitrate [kbit/s]")
        ax.set_ylabel(f"{name}{' [dB]' if key == 'psnr' else ''} ({'higher' if higher else 'lower'} is better)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)


def write_csv(result: CompareResult, path) -> None:
    """One row per encode: curve, file, kbps and every quality number (inf for a lossless PSNR)."""
    import csv

    metrics = [k for k in CURVE_METRICS if any(k in p.quality for p in result.points)]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["curve", "file", "kbps", *metrics])
        for label, pts in result.curves().items():
            for p in pts:
                w.writerow([label, p.path, f"{p.kbps:.3f}", *(p.quality.get(k, "") for k in metrics)])
