"""`restore.score`: compare a distorted video with its reference, frame by frame.

Both files are decoded once, in lockstep, and streamed: memory holds a handful of frames (the
alignment look-ahead and one LPIPS batch), whatever the length. Every problem that would make a
number silently wrong is either an error (size mismatch without `scale_to_reference`, unreadable
file, no video stream) or an explicit warning kept in the report and raised as ScoreWarning
(different durations or frame counts, a detected frame offset, a pixel-format conversion).
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, MediaError
from . import align as _align
from .frame_scorer import FrameScorer
from .psnr import capped
from .signals import Signals, open_signals
from .sources import prefetch, probe_video

SSIM_MODES = ("wang", "ffmpeg", "auto")

PSNR_MODES = ("y", "rgb", "yuv")
KNOWN_METRICS = ("psnr", "ssim", "lpips", "temporal", "vmaf")
ALIGN_WINDOW = 10    # frames compared at each candidate offset
MAX_OFFSET = 5
SUMMARY_STATS = ("mean", "min", "p5", "median", "max")
# per-frame metrics and whether higher is better (for tables and BD computations)
HIGHER_IS_BETTER = {"psnr": True, "psnr_y": True, "psnr_u": True, "psnr_v": True,
                    "ssim": True, "ssim_y": True, "ssim_u": True, "ssim_v": True, "lpips": False, "vmaf": True, "vmaf_neg": True,
                    "ewarp": False, "flicker": False, "tof": False, "tlp": False}
# Transfer characteristics that make a file HDR: its code values are not gamma-coded SDR, and a
# PSNR on them means something only as "PSNR of the PQ/HLG signal", which the report states.
HDR_TRANSFERS = {"smpte2084": "PQ (SMPTE ST 2084)", "arib-std-b67": "HLG (ARIB STD-B67)"}
MIN_SSIM_SIZE = 11   # the SSIM window
MIN_FFMPEG_SSIM_SIZE = 16   # ffmpeg's 8x8 windows on 2x-subsampled chroma


class ScoreWarning(UserWarning):
    """Something about the inputs that the numbers depend on (offset, lengths, conversions)."""


@dataclass
class ScoreReport:
    reference: str
    distorted: str
    psnr_mode: str
    frames: list[dict]                     # one row per scored pair
    summary: dict[str, dict[str, float]]   # metric -> mean/min/p5/median/max
    aggregates: dict[str, float]           # psnr of mean MSE, mean of per-frame psnr, per plane
    offset: int
    frames_reference: int
    frames_distorted: int
    warnings: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def frames_scored(self) -> int:
        return len(self.frames)

    @property
    def metrics(self) -> list[str]:
        return list(self.summary)

    def to_dict(self, frames: bool = True) -> dict:
        out = {
            "reference": self.reference, "distorted": self.distorted, "psnr_mode": self.psnr_mode,
            "offset": self.offset, "frames_reference": self.frames_reference,
            "frames_distorted": self.frames_distorted, "frames_scored": self.frames_scored,
            "aggregates": self.aggregates, "summary": self.summary, "warnings": self.warnings,
            "settings": self.settings, "seconds": round(self.seconds, 3),
        }
        if frames:
            out["frames"] = self.frames
        return out


def summarize(values, *, db: bool = False) -> dict[str, float]:
    """mean, min, p5, median, max of finite-or-capped values (dB values are capped first)."""
    v = np.asarray([np.nan if x is None else x for x in values], np.float64)
    if db:
        v = capped(v)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {k: float("nan") for k in SUMMARY_STATS}
    return {"mean": float(v.mean()), "min": float(v.min()), "p5": float(np.percentile(v, 5)),
            "median": float(np.median(v)), "max": float(v.max())}


def _scored_in(psnr_mode: str, transfer: str, bits: int, peak: float) -> str:
    """One line for the report: which signal the numbers are on (no tone mapping ever)."""
    if psnr_mode == "yuv":
        values = f"{bits}-bit code values (PSNR peak {peak:g})"
    elif psnr_mode == "rgb":
        values = "RGB scaled to [0, 1] (PSNR peak 1)"
    else:
        values = "BT.601 Y of RGB on the 8-bit scale (PSNR peak 255)"
    return f"{transfer} signal, {values}, no tone mapping"


def _check_args(metrics, lpips, temporal, psnr_mode, crop_border):
    metrics = tuple(m.lower() for m in (metrics or ()))
    unknown = [m for m in metrics if m not in KNOWN_METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r} (known: {', '.join(KNOWN_METRICS)})")
    lpips = bool(lpips) or "lpips" in metrics
    temporal = bool(temporal) or "temporal" in metrics
    if psnr_mode not in PSNR_MODES + ("auto",):
        raise ConfigError(f"--psnr-mode {psnr_mode!r}: expected one of {', '.join(PSNR_MODES)}")
    if int(crop_border) < 0:
        raise ConfigError(f"--crop-border {crop_border}: must be >= 0")
    if psnr_mode == "yuv" and crop_border:
        raise ConfigError("--crop-border applies to --psnr-mode y or rgb, not yuv (ffmpeg's psnr has no crop)")
    return "psnr" in metrics, "ssim" in metrics, lpips, temporal


def transfer_of(info) -> str:
    """'PQ (SMPTE ST 2084)', 'HLG (ARIB STD-B67)', or 'SDR (<tag>)' / 'SDR (untagged)'."""
    tag = info.color_transfer
    return HDR_TRANSFERS.get(tag) or f"SDR ({tag or 'untagged'})"


def resolve_psnr_mode(psnr_mode: str, info, crop_border: int = 0) -> str:
    """'auto' (the default of `restore score`): 'yuv', the file's own code values as ffmpeg's
    psnr filter measures them, for YUV and grey references, and always for > 8-bit or HDR ones
    (where an 8-bit-scale BT.601 Y of decoded RGB would neither be on the file's own values nor
    in its transfer); 'y' (BT.601 Y, as SR papers) for 8-bit RGB references, which have no YUV
    planes of their own, and whenever a crop border is asked for (the SR protocol; ffmpeg's psnr
    has no crop). 'yuv' is also the cheap mode: the planes as decoded, no RGB conversion."""
    if psnr_mode != "auto":
        return psnr_mode
    if crop_border:
        return "y"
    if info.bit_depth > 8 or info.color_transfer in HDR_TRANSFERS:
        return "yuv"
    return "yuv" if _is_yuv(info.pix_fmt) else "y"


# FFmpeg's RGB(A) and palette pixel formats, by name prefix (metrics read media only through
# restore.io, so no PyAV here); everything else is YUV or grey: yuv*, yuvj*, nv12, p010, gray*,
# ya8, yuyv422, ...
_RGB_PREFIXES = ("rgb", "bgr", "gbr", "argb", "abgr", "0rgb", "0bgr", "x2rgb", "x2bgr", "pal8", "bayer")


def _is_yuv(pix_fmt: str | None) -> bool:
    """YUV or grey (planar, semi-planar or packed), not RGB."""
    return bool(pix_fmt) and not pix_fmt.lower().startswith(_RGB_PREFIXES)


def resolve_ssim_mode(ssim_mode: str, psnr_mode: str, size: tuple[int, int] | None = None) -> str:
    """'auto' (the default of `restore score`): ffmpeg's ssim filter where PSNR is measured as
    ffmpeg's psnr filter does (yuv: both numbers are ffmpeg's, from integer block sums, as cheap
    as ffmpeg), Wang's Gaussian SSIM on BT.601 Y otherwise (y, rgb: the papers' number), and on
    frames too small for ffmpeg's 8x8 windows on subsampled chroma (under 16 pixels) but not
    for Wang's 11x11 one."""
    if ssim_mode != "auto":
        return ssim_mode
    if psnr_mode != "yuv" or (size is not None and min(size) < MIN_FFMPEG_SSIM_SIZE):
        return "wang"
    return "ffmpeg"


class _Notes:
    """The report's warnings, each also raised as a ScoreWarning at score()'s caller."""

    def __init__(self, dist_path: str):
        self.dist_path, self.lines = dist_path, []

    def warn(self, msg: str) -> None:
        self.lines.append(msg)
        # stacklevel 4: this method, the step of score() that warns, score(), its caller (every
        # step that warns is called by score() itself)
        warnings.warn(f"{self.dist_path}: {msg}", ScoreWarning, stacklevel=4)


@dataclass
class _Run:
    """What score() measures, decided from its arguments and the two files before any decoding."""
    ref_path: str
    dist_path: str
    ref_info: object
    dist_info: object
    psnr_mode: str
    ssim_mode: str
    crop_border: int
    offset_setting: str | int
    want_psnr: bool
    want_ssim: bool
    want_lpips: bool
    want_temporal: bool
    vmaf_models: tuple
    scale_to_reference: bool


def score(reference, distorted, *, metrics=("psnr", "ssim"), lpips: bool = False, temporal: bool = False,
          align="auto", crop_border: int = 0, scale_to_reference: bool = False, device: str = "auto",
          progress: bool = False, psnr_mode: str = "y", max_offset: int = MAX_OFFSET,
          lpips_batch: int = 8, lpips_model=None, vmaf=None, vmaf_batch: int = 4,
          ssim_mode: str = "wang") -> ScoreReport:
    """Score `distorted` against `reference`; see docs/scoring.md for every convention.

    psnr_mode: "y" (BT.601 Y, SR papers; default), "rgb", "yuv" (per plane in the reference's
    own pixel format, ffmpeg's psnr filter), or "auto" (the CLI's default: yuv, except y for 8-bit
    RGB references and with a crop border; see resolve_psnr_mode).
    SSIM is on Y: BT.601 Y from RGB in y/rgb modes, the source's Y plane in yuv mode.
    align: "auto", "none"/0, or an int offset (see align.py).
    lpips_model: an already built LPIPS instance to reuse across calls (optional).
    vmaf: None, or models: "vmaf" (vmaf_v0.6.1), "neg" (vmaf_v0.6.1neg), "both", or a sequence;
    "vmaf" in `metrics` means both. Computed on the reference pixel format's Y plane.
    temporal: E_warp and flicker, tOF, and tLP (tLP needs the LPIPS network, built if not given).
    ssim_mode: "wang" (Gaussian 11x11, Wang 2004, equal to scikit-image) or "ffmpeg" (ffmpeg's ssim
    filter: 8x8 windows of integer block sums on every plane, its per-plane and "All" numbers;
    psnr_mode "yuv" only, since it is defined on code values), or "auto" (the CLI's default:
    ffmpeg with psnr_mode yuv, wang otherwise).
    """
    t0 = time.perf_counter()
    run = _decide(reference, distorted, metrics, lpips, temporal, align, crop_border, scale_to_reference,
                  psnr_mode, vmaf, ssim_mode)
    notes = _Notes(run.dist_path)
    _check_inputs(run, notes.warn)
    lpips_fn = _lpips_for(run, lpips_model, device, lpips_batch)
    signals = open_signals(run.ref_path, run.dist_path, run.ref_info, run.dist_info, psnr_mode=run.psnr_mode,
                           ssim_mode=run.ssim_mode, want_ssim=run.want_ssim,
                           need_rgb=run.want_lpips or run.want_temporal, vmaf=bool(run.vmaf_models),
                           scale_to_reference=run.scale_to_reference, crop_border=run.crop_border,
                           warn=notes.warn)
    vmeter = _vmaf_meter(run, device, vmaf_batch)
    ref_it, dist_it, offset = _aligned(signals, run.offset_setting, max_offset, notes.warn)
    scorer = FrameScorer(signals, psnr_mode=run.psnr_mode, ssim_mode=run.ssim_mode, crop_border=run.crop_border,
                         offset=offset, want_psnr=run.want_psnr, want_ssim=run.want_ssim,
                         want_lpips=run.want_lpips, want_temporal=run.want_temporal, lpips_fn=lpips_fn,
                         vmeter=vmeter)
    rows = scorer.rows
    ref_left, dist_left = _score_pairs(ref_it, dist_it, scorer, progress, run)
    n_ref, n_dist = _frame_counts(ref_left, dist_left, len(rows), offset, run.dist_path, notes.warn)
    vmaf_pooled = _take_vmaf(vmeter, rows)
    summary, aggregates = _summaries(rows, scorer.acc if run.want_psnr else None, vmaf_pooled)
    settings = _settings(run, signals, vmeter, lpips_fn)
    return ScoreReport(run.ref_path, run.dist_path, run.psnr_mode, rows, summary, aggregates, offset,
                       n_ref, n_dist, notes.lines, settings, time.perf_counter() - t0)


# ---- open: the arguments, the two files, the modes ----------------------------------------------

def _decide(reference, distorted, metrics, lpips, temporal, align, crop_border, scale_to_reference,
            psnr_mode, vmaf, ssim_mode) -> _Run:
    """Arguments checked, files probed, 'auto' modes resolved: the errors a user can fix, before
    any decoding."""
    want_psnr, want_ssim, want_lpips, want_temporal = _check_args(metrics, lpips, temporal, psnr_mode, crop_border)
    from .vmaf import parse_models

    vmaf_models = parse_models(vmaf) or (parse_models("both") if "vmaf" in (m.lower() for m in metrics or ()) else ())
    crop_border = int(crop_border)
    offset_setting = _align.parse_align(align)
    ref_path, dist_path = os.fspath(reference), os.fspath(distorted)
    if not os.path.exists(ref_path):
        raise MediaError("no such file", ref_path)
    if not os.path.exists(dist_path):
        raise MediaError("no such file", dist_path)
    ref_info, dist_info = probe_video(ref_path), probe_video(dist_path)
    psnr_mode = resolve_psnr_mode(psnr_mode, ref_info, crop_border)
    if ssim_mode not in SSIM_MODES:
        raise ConfigError(f"--ssim-mode {ssim_mode!r}: expected one of {', '.join(SSIM_MODES)}")
    ssim_mode = resolve_ssim_mode(ssim_mode, psnr_mode, (ref_info.width, ref_info.height))
    if want_ssim and ssim_mode == "ffmpeg" and psnr_mode != "yuv":
        raise ConfigError(f"--ssim-mode ffmpeg is defined on the YUV code values: use it with --psnr-mode yuv "
                          f"(this run measures in {psnr_mode})")
    if psnr_mode == "yuv" and crop_border:
        raise ConfigError("--crop-border applies to --psnr-mode y or rgb, not yuv (ffmpeg's psnr has no crop)")
    return _Run(ref_path, dist_path, ref_info, dist_info, psnr_mode, ssim_mode, crop_border, offset_setting,
                want_psnr, want_ssim, want_lpips, want_temporal, vmaf_models, scale_to_reference)


def _check_inputs(run: _Run, warn) -> None:
    """Sizes no metric can score are one-line errors; what the numbers depend on (transfers, a
    resize, durations) is a warning."""
    ref_info, dist_info, crop_border, ref_path = run.ref_info, run.dist_info, run.crop_border, run.ref_path
    W, H = ref_info.width, ref_info.height
    if crop_border and 2 * crop_border >= min(W, H):
        raise ConfigError(f"--crop-border {crop_border} leaves nothing of the {W}x{H} frames of {ref_path}")
    if run.want_ssim and run.ssim_mode == "wang" and min(W - 2 * crop_border, H - 2 * crop_border) < MIN_SSIM_SIZE:
        raise MediaError(f"frames of {W - 2 * crop_border}x{H - 2 * crop_border} pixels"
                         f"{' after --crop-border' if crop_border else ''} are smaller than SSIM's "
                         f"{MIN_SSIM_SIZE}x{MIN_SSIM_SIZE} window; use --no-ssim", ref_path)
    if run.want_ssim and run.ssim_mode == "ffmpeg" and min(W, H) < MIN_FFMPEG_SSIM_SIZE:
        raise MediaError(f"frames of {W}x{H} pixels are too small for ffmpeg's SSIM (8x8 windows on "
                         f"every plane, chroma included: at least 16x16); use --no-ssim", ref_path)
    if run.vmaf_models:
        from .vmaf import MIN_SIZE as VMAF_MIN

        if min(W, H) < VMAF_MIN:
            raise MediaError(f"frames of {W}x{H} pixels are smaller than VMAF's minimum of "
                             f"{VMAF_MIN}x{VMAF_MIN}", ref_path)
    ref_transfer, dist_transfer = transfer_of(ref_info), transfer_of(dist_info)
    if ref_info.color_transfer != dist_info.color_transfer and dist_info.color_transfer and ref_info.color_transfer:
        warn(f"transfer {dist_transfer} differs from the reference's {ref_transfer}: scored on the "
             f"signal values as they are, nothing is converted")
    if ref_info.color_transfer in HDR_TRANSFERS and run.psnr_mode != "yuv":
        warn(f"{ref_transfer} source scored in --psnr-mode {run.psnr_mode}: RGB from the {ref_transfer} "
             f"signal, not its {ref_info.bit_depth}-bit code values (--psnr-mode yuv for those)")
    if (dist_info.width, dist_info.height) != (W, H):
        if not run.scale_to_reference:
            raise MediaError(f"frame size {dist_info.width}x{dist_info.height} differs from the reference's "
                             f"{W}x{H}; pass --scale-to-reference to resize it to the reference", run.dist_path)
        warn(f"resized from {dist_info.width}x{dist_info.height} to the reference's {W}x{H} before scoring")
    if ref_info.duration and dist_info.duration:
        frame_s = 1.0 / ref_info.fps if ref_info.fps else 0.04
        if abs(ref_info.duration - dist_info.duration) > max(frame_s, 0.01 * ref_info.duration):
            warn(f"duration {dist_info.duration:.3f}s differs from the reference's {ref_info.duration:.3f}s")


def _lpips_for(run: _Run, lpips_model, device, lpips_batch):
    """The LPIPS network, or None; tLP, TecoGAN's temporal LPIPS, needs it too."""
    if not (run.want_lpips or run.want_temporal):
        return None
    if lpips_model is not None:
        return lpips_model
    from .lpips_metric import LPIPS

    return LPIPS(device=device, batch_size=lpips_batch)


def _vmaf_meter(run: _Run, device, vmaf_batch):
    if not run.vmaf_models:
        return None
    from .sources import format_bits, planar_format
    from .vmaf import VMAFMeter

    return VMAFMeter(run.vmaf_models, bits=format_bits(planar_format(run.ref_info.pix_fmt)), device=device,
                     batch_size=vmaf_batch)


# ---- align --------------------------------------------------------------------------------------

def _aligned(signals: Signals, offset_setting, max_offset: int, warn):
    """Both streams (prefetched) from the pair that matches: the offset given, or the one found
    on the first frames' thumbnails."""
    ref_it, dist_it = prefetch(signals.ref), prefetch(signals.dist)
    if offset_setting == "auto":
        n = ALIGN_WINDOW + max_offset
        ref_head, ref_it = _align.peek(ref_it, n)
        dist_head, dist_it = _align.peek(dist_it, n)
        offset, _ = _align.best_offset([_align.thumbnail(signals.luma(x)) for x in ref_head],
                                       [_align.thumbnail(signals.luma(x)) for x in dist_head], max_offset)
        del ref_head, dist_head
        if offset:
            warn(f"frame offset {offset:+d} detected (distorted frame i+{offset} matches reference frame i)"
                 if offset > 0 else
                 f"frame offset {offset:+d} detected (reference frame i+{-offset} matches distorted frame i)")
    else:
        offset = int(offset_setting)
    ref_it, dist_it = _align.apply_offset(ref_it, dist_it, offset)
    return ref_it, dist_it, offset


# ---- score the frames ---------------------------------------------------------------------------

def _score_pairs(ref_it, dist_it, scorer: FrameScorer, progress: bool, run: _Run) -> tuple[int, int]:
    """Every pair through `scorer`, until either stream ends; returns the frames left over in each
    stream past the last pair (counted, not scored)."""
    bar = None
    try:
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=run.ref_info.frame_count, unit="frame", desc=os.path.basename(run.dist_path),
                       leave=False)
        n_ref = n_dist = 0
        sentinel = object()
        while True:
            r = next(ref_it, sentinel)
            d = next(dist_it, sentinel)
            if r is sentinel or d is sentinel:
                n_ref += (r is not sentinel) + (sum(1 for _ in ref_it) if r is not sentinel else 0)
                n_dist += (d is not sentinel) + (sum(1 for _ in dist_it) if d is not sentinel else 0)
                break
            scorer.add(r, d)
            if bar is not None:
                bar.update(1)
        scorer.finish()
    finally:
        if bar is not None:
            bar.close()
        scorer.close()
    return n_ref, n_dist


def _frame_counts(ref_left: int, dist_left: int, scored: int, offset: int, dist_path: str, warn) -> tuple[int, int]:
    """Frames in each file: the pairs scored, the frames the offset skipped, those left over."""
    n_ref = ref_left + scored + max(0, -offset)
    n_dist = dist_left + scored + max(0, offset)
    if not scored:
        raise MediaError("no frame pairs to compare (empty video, or the offset skips every frame)", dist_path)
    if n_ref != n_dist:
        warn(f"frame count {n_dist} differs from the reference's {n_ref}; scored {scored} pairs")
    return n_ref, n_dist


# ---- summarise ----------------------------------------------------------------------------------

def _take_vmaf(vmeter, rows: list[dict]) -> dict:
    """VMAF's per-frame scores into the rows (the meter has them only at the end); its pooled ones."""
    if vmeter is None:
        return {}
    res = vmeter.result()
    for m, values in res["frames"].items():
        for row, v in zip(rows, values):
            row[m] = float(v)
    return res["pooled"]


def _summaries(rows: list[dict], acc, vmaf_pooled: dict) -> tuple[dict, dict]:
    """Per-metric summary statistics and the aggregates (PSNR of mean MSE, means, VMAF pooling);
    `acc` is the PSNR accumulator, None when PSNR was not asked for."""
    summary, aggregates = {}, {}
    if acc is not None:
        aggregates.update(acc.summary())
        for key in ["psnr"] + ([f"psnr_{n}" for n in acc.names] if len(acc.names) > 1 else []):
            summary[key] = summarize([row[key] for row in rows], db=True)
    for key in ("ssim", "ssim_y", "ssim_u", "ssim_v", "lpips", "vmaf", "vmaf_neg", "ewarp", "flicker", "tof", "tlp"):
        if rows and key in rows[0]:
            summary[key] = summarize([row[key] for row in rows])
            aggregates[key] = summary[key]["mean"]
    for m, pooled in vmaf_pooled.items():
        aggregates[f"{m}_harmonic_mean"] = pooled["harmonic_mean"]
    return summary, aggregates


def _settings(run: _Run, signals: Signals, vmeter, lpips_fn) -> dict:
    """The report's `settings`: every convention the numbers were measured under."""
    psnr_mode, bits, peak = run.psnr_mode, signals.bits, signals.peak
    settings = {
        "psnr_mode": psnr_mode, "crop_border": run.crop_border, "bit_depth": bits,
        "psnr_peak": peak, "align": str(run.offset_setting), "scale_to_reference": bool(run.scale_to_reference),
        "ssim": ({"mode": "wang", "window": "gaussian 11x11", "sigma": 1.5, "K1": 0.01, "K2": 0.03,
                  "covariance": "population", "data_range": signals.ssim_range,
                  "channel": "source Y plane" if psnr_mode == "yuv" else "BT.601 Y"}
                 if run.ssim_mode == "wang" else
                 {"mode": "ffmpeg", "window": "8x8 block sums on a 4-pixel grid (ffmpeg's ssim filter)",
                  "K1": 0.01, "K2": 0.03, "max": peak, "channel": "every plane; ssim = planes weighted "
                  "by sample count (ffmpeg's All)"}),
        "psnr_identical_frames": "per-frame inf; psnr = PSNR of mean MSE (inf only if all frames "
                                 "identical); means and dB summaries cap frames at 100 dB",
        "transfer": {"reference": run.ref_info.color_transfer, "distorted": run.dist_info.color_transfer,
                     "scored_in": _scored_in(psnr_mode, transfer_of(run.ref_info), bits, peak)},
    }
    if run.vmaf_models:
        from .vmaf import MODELS

        settings["vmaf"] = {"models": {m: MODELS[m][0] for m in run.vmaf_models},
                            "implementation": "vmaf-torch (float), libvmaf conventions",
                            "plane": "Y of the reference's pixel format, code values",
                            "pooling": "mean of per-frame scores clipped to [0, 100]",
                            "device": getattr(vmeter, "device", "?")}
    if run.want_lpips:
        settings["lpips"] = {"net": "alex", "version": "0.1", "input_range": "[-1, 1]",
                             "device": getattr(lpips_fn, "device", "?")}
    return settings
