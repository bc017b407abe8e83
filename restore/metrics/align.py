"""Frame alignment between a reference and a distorted stream.

Offset convention: offset k > 0 means the distorted video has k extra frames at the start
(distorted frame i + k is compared with reference frame i); k < 0 means the reference has them
(reference frame i + |k| with distorted frame i).

`align="auto"` decodes only the first `window + max_offset` frames of each stream (kept in a
small buffer that is then replayed, so nothing is decoded twice), compares 64-pixel-wide grey
thumbnails at every offset in -max_offset..max_offset by mean squared error, and takes the best
one only when it is clearly better than offset 0 (less than half its error): static or
repetitive content, where every offset looks alike, stays at 0.
"""
from __future__ import annotations

import itertools
from typing import Iterable, Iterator

import numpy as np

from ..errors import ConfigError

THUMB_WIDTH = 64


def parse_align(value) -> str | int:
    """'auto' | 'none' | int (also as a string) -> 'auto' | 0 | int."""
    if value is None:
        return 0
    if isinstance(value, (int, np.integer)):
        return int(value)
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("none", "off", "0"):
        return 0
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--align {value!r}: expected auto, none or an integer frame offset") from None


def thumbnail(grey: np.ndarray) -> np.ndarray:
    """Area-averaged float32 thumbnail of a luma plane, THUMB_WIDTH wide at most, on its own scale."""
    from ..ops import thumbs

    h, w = np.shape(grey)[:2]
    return thumbs.thumbnail(grey, thumbs.fit_width(h, w, THUMB_WIDTH))


def best_offset(ref_thumbs: list[np.ndarray], dist_thumbs: list[np.ndarray], max_offset: int) -> tuple[int, dict]:
    """Offset minimising thumbnail MSE over the overlapping frames; returns (offset, errors)."""
    errors = {}
    for k in range(-max_offset, max_offset + 1):
        pairs = [(ref_thumbs[i], dist_thumbs[i + k]) for i in range(len(ref_thumbs))
                 if 0 <= i + k < len(dist_thumbs)]
        if len(pairs) < 2:
            continue
        errors[k] = float(np.mean([np.mean((r - d) ** 2) for r, d in pairs]))
    if not errors:
        return 0, errors
    k = min(errors, key=errors.get)
    zero = errors.get(0, np.inf)
    if k != 0 and not errors[k] < 0.5 * zero:
        k = 0
    return k, errors


def peek(it: Iterable, n: int) -> tuple[list, Iterator]:
    """First n items of `it` and an iterator that replays them followed by the rest."""
    it = iter(it)
    head = list(itertools.islice(it, n))
    return head, itertools.chain(head, it)


def apply_offset(ref_it: Iterator, dist_it: Iterator, offset: int) -> tuple[Iterator, Iterator]:
    """Drop the leading extra frames implied by `offset`."""
    if offset > 0:
        dist_it = itertools.islice(dist_it, offset, None)
    elif offset < 0:
        ref_it = itertools.islice(ref_it, -offset, None)
    return ref_it, dist_it
