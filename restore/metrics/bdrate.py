"""Bjontegaard deltas between rate-quality curves, with the `bjontegaard` package.

- BD-rate: average bitrate difference (percent) of `test` against `anchor` at equal quality,
  over the overlapping quality range; negative = test needs fewer bits.
- BD-quality (BD-PSNR for PSNR): average quality difference at equal rate; positive = better.
- Lower-is-better metrics (LPIPS) are negated before fitting, so the curves increase with rate
  as the method assumes; the returned BD-LPIPS is then converted back to a plain LPIPS
  difference (test - anchor): negative = better.
Interpolation is PCHIP (default) or Akima on log-rate, as current practice (and the package)
recommends. The package warns when the curves' overlap is below `min_overlap` (75% by default);
we keep that warning and also record it in the result.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError

METHODS = ("pchip", "akima")


class BDWarning(UserWarning):
    pass


@dataclass
class BDResult:
    metric: str
    bd_rate: float        # percent
    bd_quality: float     # in the metric's own unit; for lower-is-better metrics test - anchor
    overlap: float        # fraction of the quality range both curves cover (for BD-rate)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self):
        return {"metric": self.metric, "bd_rate_percent": self.bd_rate, "bd_quality": self.bd_quality,
                "overlap": self.overlap, "warnings": self.warnings}


def _prepare(rate, quality, name):
    r = np.asarray(rate, np.float64)
    q = np.asarray(quality, np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise ConfigError(f"{name}: rates and qualities must be equal-length lists")
    if len(r) < 4:
        # the package's interpolators are only defined from 4 points on
        raise ConfigError(f"{name}: BD needs at least 4 rate points, got {len(r)}")
    if np.any(r <= 0) or not np.all(np.isfinite(q)):
        raise ConfigError(f"{name}: rates must be positive and qualities finite")
    order = np.argsort(r)
    return r[order], q[order]


def overlap_fraction(a, b) -> float:
    lo, hi = max(np.min(a), np.min(b)), min(np.max(a), np.max(b))
    total = max(np.max(a), np.max(b)) - min(np.min(a), np.min(b))
    return float(max(hi - lo, 0.0) / total) if total > 0 else 1.0


def bd(rate_anchor, q_anchor, rate_test, q_test, *, metric: str = "psnr", higher_is_better: bool = True,
       method: str = "pchip", min_overlap: float = 0.75) -> BDResult:
    import bjontegaard

    if method not in METHODS:
        raise ConfigError(f"BD method {method!r}: expected one of {', '.join(METHODS)}")
    ra, qa = _prepare(rate_anchor, q_anchor, "anchor")
    rt, qt = _prepare(rate_test, q_test, "test")
    sign = 1.0 if higher_is_better else -1.0
    qa, qt = sign * qa, sign * qt
    notes = []
    q_overlap = overlap_fraction(qa, qt)
    r_overlap = overlap_fraction(np.log10(ra), np.log10(rt))
    for what, ov in (("quality range (BD-rate)", q_overlap), ("log-rate range (BD-quality)", r_overlap)):
        if ov == 0:
            notes.append(f"{metric}: curves do not overlap in {what}: no BD number")
        elif ov < min_overlap:
            notes.append(f"{metric}: curves overlap in only {ov:.0%} of the {what} (< {min_overlap:.0%}): "
                         "the BD number rests on a short interval")
    for msg in notes:
        warnings.warn(msg, BDWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package's own overlap warnings, reworded above
        rate = bjontegaard.bd_rate(ra, qa, rt, qt, method=method, require_matching_points=False,
                                   min_overlap=min_overlap)
        qual = bjontegaard.bd_psnr(ra, qa, rt, qt, method=method, require_matching_points=False,
                                   min_overlap=min_overlap)
    return BDResult(metric, float(rate), float(sign * qual), q_overlap, notes)
