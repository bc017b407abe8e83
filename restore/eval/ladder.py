"""What restoration buys in bitrate: BD-rate of (encode, then restore) against (encode only) over a
CRF ladder, on the same reference (the API behind `restore compare REF --restore-ladder ...`).

Both curves go through the same code path: every ladder encode is run through restore.enhance twice,
once with the restoration asked for and once with no task at all, both into lossless FFV1 (planar
RGB). The anchor is then the encode exactly as a player shows it, after the same YUV -> RGB
conversion the restored frames went through, so the BD numbers measure the restoration and nothing
else; the rate of both points is the encode's own video bitrate (restoration happens at the
receiving end and costs no bits).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable


def restore_ladder(reference, spec_text: str, out_dir, *, overrides: dict, preset: str = "medium",
                   label: str | None = None, log: Callable[[str], None] | None = None) -> list[tuple]:
    """Encode `reference` per `spec_text` ('libx264:23,27,32,37'), restore each encode with the
    enhance `overrides` (e.g. {"deblock": "auto"}), and return compare() items:
    [(anchor label, pass-through path, encode path), ..., (test label, restored path, encode path), ...]."""
    from restore.metrics.ladder import encode_ladder, parse_encode
    from restore.pipeline import enhance

    specs = parse_encode(spec_text)
    out_dir = Path(out_dir)
    encodes = encode_ladder(reference, specs, out_dir, preset=preset)
    tasks = "+".join(k for k in ("deblock", "denoise") if overrides.get(k) not in (None, False)) or "restored"
    anchor = specs[0].label
    test = label or f"{anchor}+{tasks}"
    anchors, tests = [], []
    for spec, enc in zip(specs, encodes):
        plain = out_dir / f"{enc.stem}_plain.mkv"
        restored = out_dir / f"{enc.stem}_{tasks}.mkv"
        enhance(enc, plain, codec="ffv1", overwrite=True)
        res = enhance(enc, restored, codec="ffv1", overwrite=True, **overrides)
        if log is not None:
            note = ""
            if res.deblock:
                d = res.deblock
                note = f" (deblock strength {d['strength']:.2f}" + (" auto" if d.get("auto") else "") + ")"
            log(f"{spec.codec} CRF {spec.crf}: restored{note}")
        anchors.append((anchor, str(plain), str(enc)))
        tests.append((test, str(restored), str(enc)))
    return anchors + tests
