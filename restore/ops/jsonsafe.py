"""Values that strict JSON can hold, with one convention for every JSON file restore writes.

- inf / -inf -> the strings "inf" / "-inf" (float("inf") reads them back; a PSNR of identical
  frames is infinite and must stay distinguishable from a missing value);
- nan -> null (a value that does not exist, e.g. no warping error for the first frame);
- numpy scalars and arrays -> Python numbers and lists; Fraction -> "num/den"; Path -> str;
- tuples -> lists, mapping keys -> str.
"""
from __future__ import annotations

import math
from fractions import Fraction
from pathlib import PurePath

import numpy as np

__all__ = ["json_safe"]


def json_safe(obj):
    """`obj` with every value replaced by one strict JSON can hold (see the module doc)."""
    if isinstance(obj, (np.generic, np.ndarray)):
        obj = obj.tolist()
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}"
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj
