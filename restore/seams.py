"""Seam check: are chunk boundaries visible in a restoration?

The pipeline restores a video chunk by chunk, each chunk anchored on the restored end of the one
before. A seam would show as a jump between the last frame of a chunk and the first of the next:
more temporal change than the input's motion explains, or a brightness step the input lacks.
`SeamMeter` measures both on the restored frames as the pipeline makes them (before the lossy
final encode, so the codec cannot hide or add a seam), pairing each restored frame with its input:

- E_warp (Lai et al. 2018, the definition restore.metrics.temporal uses): the previous restored
  frame warped onto this one with DIS optical flow computed on the *input* frames (scaled to the
  output size when upscaling), mean squared RGB difference over the pixels that pass the
  forward-backward consistency check. `ewarp_ratio` = mean E_warp over pairs that cross a chunk
  boundary / mean over pairs inside chunks: 1 means boundaries look like any other frame step.
  Pairs across a scene cut are not counted (nothing is continuous there).
  The boundary pairs are not a random sample: the planner starts chunks on the source's key
  frames, where a compressed input itself changes more (a fresh I-frame after a GOP of P-frames).
  So the same ratio is taken on the input (`ewarp_ratio_input`, the input's own E_warp with the
  same flow) and the verdict uses `ewarp_ratio_relative` = output ratio / input ratio: what the
  restoration adds at its boundaries, not what the source already had there.
- Luma step: at each boundary, the change in mean BT.601 luma (0-255 levels) from the last frame
  of a chunk to the first of the next, in the output, minus the same change in the input.

`SeamReport.ok` is the acceptance bar: ewarp_ratio_relative <= 1.1 and every boundary's luma step
within 1 level of the input's. `restore enhance --report-seams` prints it (and --json includes it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EWARP_RATIO_MAX = 1.1
LUMA_STEP_MAX = 1.0  # levels on the 0-255 scale


@dataclass
class SeamReport:
    boundary_pairs: int
    interior_pairs: int
    ewarp_boundary: float | None   # mean E_warp of pairs crossing a chunk boundary (RGB in [0, 1])
    ewarp_interior: float | None   # mean E_warp of pairs inside chunks
    ewarp_ratio: float | None      # boundary / interior
    ewarp_ratio_input: float | None     # the same ratio of the input itself
    ewarp_ratio_relative: float | None  # ewarp_ratio / ewarp_ratio_input: the verdict's number
    luma_step_max: float | None    # max |output luma step - input luma step| at boundaries (levels)
    luma_step_mean: float | None
    ok: bool | None                # None when there is no boundary to judge

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        if not self.boundary_pairs:
            return "seams: no chunk boundary inside a shot to check"
        verdict = "ok" if self.ok else "VISIBLE"

        def f(x):
            return "n/a" if x is None else f"{x:.3f}"
        return (f"seams {verdict}: E_warp across chunk boundaries / inside chunks = "
                f"{f(self.ewarp_ratio)} (input {f(self.ewarp_ratio_input)}; relative "
                f"{f(self.ewarp_ratio_relative)}, bar {EWARP_RATIO_MAX}; {self.boundary_pairs} boundary, "
                f"{self.interior_pairs} interior pairs); boundary luma step vs input: max "
                f"{self.luma_step_max:.2f}, mean {self.luma_step_mean:.2f} levels (bar {LUMA_STEP_MAX:g})")


def _luma(img: np.ndarray) -> float:
    """Mean BT.601 luma of a float RGB frame in [0, 1], in 0-255 levels."""
    m = img.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    return float(255.0 * (0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2]))


class SeamMeter:
    """Feed (frame index, input frame, restored frame) in order, chunk by chunk."""

    def __init__(self, plan):
        import cv2

        self.starts = {c.start for c in plan.chunks if c.start > 0}
        self.plan = plan
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # (index, input grey u8, restored frame, input luma, output luma, input frame)
        self._prev: tuple | None = None
        self.boundary: list[float] = []
        self.interior: list[float] = []
        self.boundary_in: list[float] = []
        self.interior_in: list[float] = []
        self.luma_steps: list[float] = []

    def add_chunk(self, start: int, inputs: np.ndarray, outputs: np.ndarray) -> None:
        for i in range(len(inputs)):
            self.add(start + i, inputs[i], outputs[i])

    def add(self, index: int, inp: np.ndarray, out: np.ndarray) -> None:
        from .ops.flow import to_grey_u8

        grey = to_grey_u8(inp)
        cur = (index, grey, out, _luma(inp), _luma(out), inp)
        prev, self._prev = self._prev, cur
        if prev is None or prev[0] != index - 1 or self.plan.shot_of(index) != self.plan.shot_of(index - 1):
            return
        e, e_in = self._ewarp(prev[1], grey, prev[2], out, prev[5], inp)
        if index in self.starts:
            self.boundary.append(e)
            self.boundary_in.append(e_in)
            self.luma_steps.append(abs((cur[4] - prev[4]) - (cur[3] - prev[3])))
        else:
            self.interior.append(e)
            self.interior_in.append(e_in)

    def _ewarp(self, g0, g1, o0, o1, i0, i1) -> tuple[float, float]:
        """E_warp of the output pair and of the input pair, with the input's flow."""
        import cv2

        from .ops.flow import occlusion_mask, warp

        fb = self._dis.calc(g1, g0, None)  # for each pixel of frame 1, where it was in frame 0
        ff = self._dis.calc(g0, g1, None)
        valid = occlusion_mask(fb, ff) == 0
        e_in = _masked_mse(np.asarray(i1, dtype=np.float32), warp(np.asarray(i0, dtype=np.float32), fb), valid)
        h, w = o1.shape[:2]
        if (h, w) != g1.shape:  # upscaled output: the input's motion, scaled to the output grid
            sy, sx = h / g1.shape[0], w / g1.shape[1]
            fb = cv2.resize(fb, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([sx, sy], np.float32)
            valid = cv2.resize(valid.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        warped = warp(np.asarray(o0, dtype=np.float32), fb)
        return _masked_mse(np.asarray(o1, dtype=np.float32), warped, valid), e_in

    def report(self) -> SeamReport:
        eb, ei, ratio = _ratio(self.boundary, self.interior)
        _, _, ratio_in = _ratio(self.boundary_in, self.interior_in)
        relative = None
        if ratio is not None and ratio_in is not None:
            relative = ratio / ratio_in if ratio_in > 0 else ratio
        steps = self.luma_steps
        ok = None
        if eb is not None:
            ok = (relative is None or relative <= EWARP_RATIO_MAX) and max(steps) <= LUMA_STEP_MAX
        return SeamReport(len(self.boundary), len(self.interior), eb, ei, ratio, ratio_in, relative,
                          max(steps) if steps else None, float(np.mean(steps)) if steps else None, ok)


def _masked_mse(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> float:
    err = ((a - b) ** 2).mean(-1)
    return float(err[valid].mean(dtype=np.float64)) if valid.any() else float("nan")


def _ratio(boundary: list[float], interior: list[float]):
    """(mean boundary, mean interior, boundary / interior), None where undefined."""
    b = [x for x in boundary if np.isfinite(x)]
    i = [x for x in interior if np.isfinite(x)]
    eb = float(np.mean(b)) if b else None
    ei = float(np.mean(i)) if i else None
    ratio = None
    if eb is not None and ei is not None:
        ratio = eb / ei if ei > 0 else (1.0 if eb == 0 else float("inf"))
    return eb, ei, ratio


def check_files(input, output, *, preset="default", **overrides) -> SeamReport:
    """The seam check on files: `input` and a restored `output` with the same frames (no frame
    rate change), the chunk plan recomputed as restore.enhance makes it with the same config (`preset`) and
    overrides (chunk.* and the cut detector decide it). A lossy output adds its codec's own
    temporal noise to both kinds of pairs alike."""
    from .chunks import THUMB_SIZE, Analyser, CutDetector, plan_chunks
    from .config import load_config
    from .errors import RestoreError
    from .io import decode
    from .ops.frames import to_float

    cfg = load_config(preset, overrides)
    ch = cfg.chunk
    analyser = Analyser(CutDetector(ch.cut_floor, ch.cut_ratio, ch.cut_window))
    for f in decode(input, size=THUMB_SIZE, gray=True):
        analyser.add(f.image, f.key)
    plan = plan_chunks(analyser.result(), ch.min_len, ch.max_len, ch.overlap)
    import itertools

    meter = SeamMeter(plan)
    n = 0
    for a, b in itertools.zip_longest(decode(input), decode(output)):
        if a is None or b is None:
            raise RestoreError(f"does not have the {plan.n_frames} frames of the input; the seam "
                               "check needs an output without frame-rate change", output)
        meter.add(n, to_float(a.image), to_float(b.image))
        n += 1
    return meter.report()
