"""Tune one strength parameter of a peer denoiser per noise level, with a JSON cache.

The peers are tuned for best PSNR on other frames and other noise than they are scored on (see
restore.eval.peers.ffmpeg), so the benchmark never picks a setting on its own test data.

Search: PSNR is unimodal in a filter's strength and flat near its peak, so a log-scale search
suffices: three points a factor 2 apart around a first guess (extended while the best sits at an
edge), then one point either side of the best at factor sqrt(2), 2^(1/4) and 2^(1/8): about nine
evaluations, final resolution ~9 % (ffmpeg nlmeans' PSNR moves ~1 dB per 20 % of s near its peak).

Cache: one JSON file; an entry is keyed by peer, sigma and a digest of its recipe (what it was
tuned on: clip, frame indices, size, noise seed, filter graph). A changed protocol misses the
cache and is tuned afresh, so stale settings are never silently reused.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable


REFINE = (2 ** 0.5, 2 ** 0.25, 2 ** 0.125)
SEARCH = "log scale: x/2, x, 2x around the first guess (extended at edges), then best / and * 2^(1/2), 2^(1/4), 2^(1/8)"


def search_log(evaluate: Callable[[float], float], guess: float, lo: float, hi: float,
               max_extend: int = 4) -> tuple[float, dict[float, float]]:
    """Maximise evaluate(value) over [lo, hi] on a log scale. Returns (best, {value: score})."""
    if not (0 < lo <= hi):
        raise ValueError(f"bad range [{lo}, {hi}]")
    seen: dict[float, float] = {}

    def ev(v: float) -> float:
        v = round(min(max(v, lo), hi), 4)
        if v not in seen:
            seen[v] = float(evaluate(v))
        return v

    def best() -> float:
        return max(seen, key=lambda k: (seen[k], -abs(math.log(k / guess))))

    guess = min(max(guess, lo), hi)
    for v in (guess / 2, guess, guess * 2):
        ev(v)
    for _ in range(max_extend):  # walk outward while the optimum is at an edge of what we tried
        b = best()
        if b == min(seen) and b > lo:
            ev(b / 2)
        elif b == max(seen) and b < hi:
            ev(b * 2)
        else:
            break
    for factor in REFINE:
        b = best()
        ev(b / factor)
        ev(b * factor)
    return best(), dict(sorted(seen.items()))


def merge_into_json(path: Path, entries: dict, **dump_args) -> dict:
    """Write `entries` over the JSON dict at `path` (atomically) and return the merged dict.
    Partial validation runs side by side share their cache files, so each keeps what the others
    wrote meanwhile instead of overwriting it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        on_disk = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        on_disk = {}  # a broken cache is just a cache miss
    merged = {**on_disk, **entries}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(merged, default=float, **dump_args))
    os.replace(tmp, path)
    return merged


class TuningCache:
    def __init__(self, path: Path | str | None):
        self.path = Path(path) if path else None
        self.data: dict = {}
        if self.path and self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                self.data = {}  # a broken cache is just a cache miss

    @staticmethod
    def key(peer: str, sigma: float, recipe: dict) -> str:
        # The recipe's digest is part of the key so quick runs (other frames) never evict the
        # entries of the full protocol.
        digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
        return f"{peer}/sigma{sigma:g}/{digest}"

    def get(self, peer: str, sigma: float, recipe: dict) -> dict | None:
        entry = self.data.get(self.key(peer, sigma, recipe))
        if entry and entry.get("recipe") == recipe:
            return entry
        return None

    def put(self, peer: str, sigma: float, recipe: dict, entry: dict) -> dict:
        entry = dict(entry, recipe=recipe, tuned_at=time.strftime("%Y-%m-%d %H:%M:%S"))
        self.data[self.key(peer, sigma, recipe)] = entry
        if self.path:
            self.data = merge_into_json(self.path, self.data, indent=1, sort_keys=True)
        return entry


def tune(peer: str, sigma: float, evaluate: Callable[[float], float], *, guess: float, lo: float, hi: float,
         recipe: dict, cache: TuningCache, retune: bool = False, log=print, level: str = "sigma") -> dict:
    """Best value of the peer's parameter at noise `sigma` (cached; `level` names it in the log, e.g.
    "CRF" for the deblock peers, which pass the CRF as `sigma`). Returns the cache entry:
    {"value", "psnr", "tried": {value: psnr}, "seconds", "recipe", ...}."""
    if not retune:
        hit = cache.get(peer, sigma, recipe)
        if hit is not None:
            log(f"  tuning {peer} {level} {sigma:g}: cached {hit['value']:g} ({hit['psnr']:.3f} dB)")
            return hit
    t0 = time.perf_counter()

    def logged(v: float) -> float:
        p = evaluate(v)
        log(f"  tuning {peer} {level} {sigma:g}: {v:g} -> {p:.3f} dB")
        return p

    best, tried = search_log(logged, guess, lo, hi)
    entry = {"value": best, "psnr": tried[best], "tried": {f"{k:g}": v for k, v in tried.items()},
             "seconds": round(time.perf_counter() - t0, 1)}
    return cache.put(peer, sigma, recipe, entry)
