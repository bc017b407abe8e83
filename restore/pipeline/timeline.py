"""The output timeline of enhance(): which output frames each source frame gives, and when.

`interpolate.multiplier` M inserts M - 1 frames evenly spaced between the source timestamps of
each pair (a variable frame rate stays variable) and M - 1 repeats of the last frame within its
duration. `interpolate.fps` F resamples on a uniform grid t0 + j / F over the source duration:
grid times on a source timestamp take that frame, the others are interpolated at their fraction
between the two source frames around them.
"""
from __future__ import annotations

import numpy as np


def _last_duration(times: list[float], nominal: float | None) -> float:
    gaps = [b - a for a, b in zip(times[-6:], times[-5:]) if b > a]
    if gaps:
        return float(np.median(gaps))
    return 1.0 / nominal if nominal else 1.0 / 25


def build_schedule(times: list[float], multiplier: int, fps: float | None,
                   nominal_fps: float | None) -> list[list[tuple[float, float]]]:
    """Per source frame i: [(fraction in [0, 1), output time)] emitted in the gap after frame i.

    Fraction 0 is frame i itself; others are interpolated (or repeated at cuts/the end)."""
    n = len(times)
    ends = list(times[1:]) + [times[-1] + _last_duration(times, nominal_fps)]
    sched: list[list[tuple[float, float]]] = []
    if fps is None:
        for i in range(n):
            t0, t1 = times[i], ends[i]
            if t1 <= t0:  # duplicate or backwards timestamps: emit the frame only
                sched.append([(0.0, t0)])
                continue
            sched.append([(k / multiplier, t0 + (t1 - t0) * k / multiplier) for k in range(multiplier)])
        return sched
    step = 1.0 / fps
    start, stop = times[0], ends[-1]
    count = int(np.floor((stop - start) / step + 1e-6))
    grid = [start + j * step for j in range(max(count, 1))]
    sched = [[] for _ in range(n)]
    i = 0
    for g in grid:
        while i + 1 < n and times[i + 1] <= g + 1e-6:
            i += 1
        t0, t1 = times[i], ends[i]
        frac = 0.0 if t1 <= t0 or abs(g - t0) <= 1e-6 else min(max((g - t0) / (t1 - t0), 0.0), 1.0 - 1e-9)
        sched[i].append((frac, g))
    return sched
