"""Optical-flow utilities: DIS flow, backward warping, occlusion masks, flow-based interpolation.

Shared by the classical `dis` interpolator, diffusion interpolation conditioning and temporal
metrics (warping error). Flows are float32 (H, W, 2) in pixels, (dx, dy), with the convention of
OpenCV: flow = dis_flow(a, b) means a(x) ~ b(x + flow(x)).
"""
from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from contextlib import contextmanager

import cv2
import numpy as np
import torch

# DIS needs a few pyramid levels worth of pixels, and OpenCV refuses frames with neither side
# reaching 12; below these we fall back to zero flow.
_MIN_FLOW_SIZE = 8
_MIN_FLOW_LONG_SIDE = 12
# OpenCV's DIS (4.x) crashes the process (SIGSEGV) on thin frames whose long side sets more
# pyramid levels than the short side has pixels for: with the fast presets 8-28 px tall at
# 96+ px wide, 8-12 px at 48+ (medium: 8-12 px at 48+). Such frames are flowed edge-padded to
# this short side and the flow cropped back.
_SAFE_SHORT_SIDE = 32


def to_grey_u8(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB float in [0, 1] or uint8/uint16 -> (H, W) uint8 luma for flow estimation."""
    img = np.asarray(img)
    if img.dtype == np.uint8:
        u8 = img
    elif np.issubdtype(img.dtype, np.integer):
        u8 = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)).round().astype(np.uint8)
    else:
        u8 = (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if u8.ndim == 2:
        return np.ascontiguousarray(u8)
    return cv2.cvtColor(np.ascontiguousarray(u8), cv2.COLOR_RGB2GRAY)


# Largest frame (pixels) that `intermediate_flows` projects motion on at full size.
_PROJECT_MAX_PIXELS = 640 * 360

# name -> (OpenCV preset, patch stride or None for the preset's). "fine" is medium with patches
# every 2 px instead of 3, for 1.6x the time.
_PRESETS = {
    "ultrafast": (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, None),
    "fast": (cv2.DISOPTICAL_FLOW_PRESET_FAST, None),
    "medium": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, None),
    "fine": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 2),
}


class _FlowCache:
    """LRU of DIS flows keyed by the exact grey frames DIS sees, bounded in bytes.

    Keyed on content rather than on frame indices so that callers which only see pixels (the
    interpolators, whose interface takes frames and one t) share flows without any interface
    change: identical grey input gives an identical flow, so a hit is exact.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # the pipeline may call interpolators from worker threads

    @staticmethod
    def key(ga: np.ndarray, gb: np.ndarray, preset: str) -> tuple:
        # sha1 of a 1280x720 grey frame: about 0.4 ms, against 40+ ms for the flow itself
        return (preset, ga.shape, hashlib.sha1(ga.data).digest(), hashlib.sha1(gb.data).digest())

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            flow = self._items.get(key)
            if flow is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return flow

    def put(self, key: tuple, flow: np.ndarray) -> None:
        flow.setflags(write=False)  # shared between callers: nobody may modify it in place
        with self._lock:
            if key in self._items or flow.nbytes > self.max_bytes:
                return
            self._items[key] = flow
            self.bytes += flow.nbytes
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= old.nbytes


_cache: _FlowCache | None = None
_cache_users = 0
_cache_lock = threading.Lock()

# Default budget of `flow_cache`: both flows of 36 pairs at 1280x720 (7.4 MB per flow).
FLOW_CACHE_BYTES = 512 * 2 ** 20


def pair_flow_bytes(h: int, w: int) -> int:
    """Bytes that the two flows (a->b, b->a) of one (h, w) frame pair take in the cache."""
    return 2 * h * w * 2 * 4


@contextmanager
def flow_cache(max_bytes: int = FLOW_CACHE_BYTES):
    """Within this block, `dis_flow` reuses the flows of frame pairs it has already seen.

    Interpolating one pair at several fractions (multipliers above 2, `--fps`) then estimates
    its flow once, whichever interpolator does it. Scoped rather than always on so that flows do
    not outlive the work that needs them (training draws thousands of distinct pairs). Blocks may
    nest and may be entered from several threads: they share one cache, sized by the outermost
    block, which is dropped when the last block exits. Yields the cache (hits/misses counters).
    """
    global _cache, _cache_users
    with _cache_lock:
        if _cache is None:
            _cache = _FlowCache(max_bytes)
        _cache_users += 1
        cache = _cache
    try:
        yield cache
    finally:
        with _cache_lock:
            _cache_users -= 1
            if _cache_users == 0:
                _cache = None


def dis_flow(a: np.ndarray, b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense DIS optical flow from frame a to frame b (a(x) ~ b(x + flow(x))).

    Inside a `flow_cache` block a pair already seen returns the same (read-only) array.
    """
    ga, gb = to_grey_u8(a), to_grey_u8(b)
    h, w = ga.shape
    if min(h, w) < _MIN_FLOW_SIZE or max(h, w) < _MIN_FLOW_LONG_SIDE:
        return np.zeros((h, w, 2), np.float32)
    cache, key = _cache, None
    if cache is not None:
        key = cache.key(ga, gb, preset)
        flow = cache.get(key)
        if flow is not None:
            return flow
    base, stride = _PRESETS[preset]
    dis = cv2.DISOpticalFlow_create(base)
    if stride is not None:
        dis.setPatchStride(stride)
    if min(h, w) < _SAFE_SHORT_SIDE:
        ph, pw = max(0, _SAFE_SHORT_SIDE - h), max(0, _SAFE_SHORT_SIDE - w)
        pad = [cv2.copyMakeBorder(g, 0, ph, 0, pw, cv2.BORDER_REPLICATE) for g in (ga, gb)]
        flow = np.ascontiguousarray(dis.calc(pad[0], pad[1], None)[:h, :w]).astype(np.float32, copy=False)
    else:
        flow = dis.calc(ga, gb, None).astype(np.float32, copy=False)
    if cache is not None:
        cache.put(key, flow)
    return flow


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False  # shared between calls
    return gx, gy


@functools.lru_cache(maxsize=4)
def _torch_grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    return gx, gy


def warp(img: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR,
         out: np.ndarray | None = None) -> np.ndarray:
    """Backward warp: out(x) = img(x + flow(x)), replicating the border outside the frame; written
    into `out` (contiguous, float32, img's shape) when given."""
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    mx = gx + flow[..., 0]
    my = gy + flow[..., 1]
    src = np.ascontiguousarray(img, dtype=np.float32) if img.dtype != np.float32 else np.ascontiguousarray(img)
    if out is not None:
        cv2.remap(src, mx, my, interpolation, dst=out, borderMode=cv2.BORDER_REPLICATE)
        return out
    res = cv2.remap(src, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    if img.ndim == 3 and res.ndim == 2:  # remap drops a trailing singleton channel
        res = res[..., None]
    return res


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray,
                   alpha1: float = 0.01, alpha2: float = 0.5) -> np.ndarray:
    """Forward-backward consistency check (Sundaram et al. 2010, as used by Lai et al. 2018).

    flow_fw: a -> b, flow_bw: b -> a. Returns float32 (H, W), 1 where the pixel of `a` is occluded
    (or the flow is unreliable) in `b`, 0 where following the flow there and back lands home.
    """
    bw_at_fw = warp(flow_bw, flow_fw)
    diff = flow_fw + bw_at_fw
    # (two-channel sums spelled out: numpy's reduction over a last axis of 2 is several times slower)
    mag = flow_fw[..., 0] ** 2 + flow_fw[..., 1] ** 2 + bw_at_fw[..., 0] ** 2 + bw_at_fw[..., 1] ** 2
    err = diff[..., 0] ** 2 + diff[..., 1] ** 2
    return (err > alpha1 * mag + alpha2).astype(np.float32)


# DIS preset of flow-based interpolation: the classical `dis` method and the learned
# interpolator's hints (and its training bank). On the 15 validation triplets "fine" over
# "medium" (both with the projection) raised the classical blend from 26.72 to 27.00 dB and the
# shipped model, on its hints, from 26.80 to 27.09, for about 0.05 s more per pair at 1280x720.
INTERP_PRESET = "fine"

# How far (px) past the frame's edge a warped sample fades to no weight in the blend. On 125
# training triplets (frames i, i + 2 -> i + 1 of the DAVIS / SA-V / Vimeo training frames) the
# classical blend gained +1.39 dB on the Vimeo septuplets (448x256, camera motion: content
# entering the frame), +0.03 to +0.34 on four DAVIS clips and -0.04 / -0.01 on two; margins of
# 0 / 2 / 8 / 16 px: +0.55 / +0.57 / +0.35 / +0.17 dB on average.
EDGE_MARGIN = 2.0


def project_motion(flow: np.ndarray, t: float, src: np.ndarray, dst: np.ndarray,
                   sharpness: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """Forward-project the motion `flow` (src -> dst) to time t: each pixel of `src` is carried to
    x + t * flow(x), bilinearly splatted, and every position at time t gets the weighted mean
    motion of what lands on it. Where several pixels collide (an occluder and what it covers),
    the one whose flow matches brightness best wins: weights exp(-sharpness * |src - dst warped|),
    the metric of softmax splatting (Niklaus and Liu 2020). Returns (motion (H, W, 2) src -> dst of
    the content at each position at time t, coverage (H, W): summed weight, 0 in holes).
    """
    h, w = flow.shape[:2]
    err = np.abs(warp(dst, flow) - src)
    err = err.mean(-1) if err.ndim == 3 else err
    # torch's index_add_ splats about 3x faster than numpy's bincount (0.05 s at 1280x720)
    weight = torch.from_numpy(np.exp(-sharpness * err).astype(np.float32))
    fl = torch.from_numpy(np.require(flow, np.float32, ["C", "W"]))  # cached flows are read-only
    gx, gy = _torch_grid(h, w)
    tx = gx + t * fl[..., 0]
    ty = gy + t * fl[..., 1]
    x0, y0 = tx.floor(), ty.floor()
    fx, fy = tx - x0, ty - y0
    values = torch.stack([torch.ones_like(weight), fl[..., 0], fl[..., 1]]).reshape(3, -1)
    n = h * w
    acc = torch.zeros(3, n + 1)  # the extra slot collects what lands outside the frame
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        bw = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy) * weight
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = torch.where(inside, yi * w + xi, torch.full_like(xi, n)).long().reshape(-1)
        acc.index_add_(1, idx, values * bw.reshape(1, -1))
    cover = acc[0, :n]
    motion = (acc[1:, :n] / cover.clamp_min(1e-12)).T.reshape(h, w, 2)
    return motion.numpy(), cover.reshape(h, w).numpy()


def intermediate_flows(first: np.ndarray, second: np.ndarray, t: float, flow_01: np.ndarray,
                       flow_10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flows from time t to frame 0 and to frame 1, for backward-warping each endpoint to t.

    Both endpoint flows are forward-projected to t (`project_motion`), which puts each motion
    where its content is at time t, and the two estimates are averaged by coverage; linear motion
    then gives both flows. Where nothing lands (disocclusions), Super SloMo's approximation from
    the endpoint flows at the same pixel fills in (Jiang et al. 2018). On the 15 DAVIS validation
    triplets the projection raises the classical blend by 0.2 dB over that approximation alone.
    """
    h, w = flow_01.shape[:2]
    # DIS (medium) resolves motion at half the frame size anyway: above 640x360 the projection
    # runs on frames shrunk by an integer factor, at a quarter of the cost or less, and measured
    # within 0.03 dB of full size on 1280x720 clips.
    f = max(1, math.ceil(math.sqrt(h * w / _PROJECT_MAX_PIXELS)))
    if f > 1:
        size = (max(1, w // f), max(1, h // f))
        small = [cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (first, second, flow_01, flow_10)]
        sx, sy = size[0] / w, size[1] / h
        for fl in small[2:]:
            fl[..., 0] *= sx
            fl[..., 1] *= sy
        m0, c0 = project_motion(small[2], t, small[0], small[1])
        m1, c1 = project_motion(small[3], 1.0 - t, small[1], small[0])
        m0, m1, c0, c1 = (cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR) for x in (m0, m1, c0, c1))
        for m in (m0, m1):
            m[..., 0] /= sx
            m[..., 1] /= sy
    else:
        m0, c0 = project_motion(flow_01, t, first, second)
        m1, c1 = project_motion(flow_10, 1.0 - t, second, first)
    k0 = np.minimum(c0, 1.0)[..., None]
    k1 = np.minimum(c1, 1.0)[..., None]
    motion = (k0 * m0 - k1 * m1) / np.maximum(k0 + k1, 1e-6)
    hole = (c0 <= 1e-3) & (c1 <= 1e-3)
    f_t0 = -t * motion
    f_t1 = (1.0 - t) * motion
    if hole.any():
        a, b = flow_01[hole], flow_10[hole]
        f_t0[hole] = -(1.0 - t) * t * a + t * t * b
        f_t1[hole] = (1.0 - t) ** 2 * a - t * (1.0 - t) * b
    return f_t0.astype(np.float32, copy=False), f_t1.astype(np.float32, copy=False)


def interpolate_pair(first: np.ndarray, second: np.ndarray, t: float,
                     flow_01: np.ndarray | None = None, flow_10: np.ndarray | None = None,
                     preset: str = INTERP_PRESET, occlusion_weight: float = 0.5,
                     edge_margin: float | None = EDGE_MARGIN) -> np.ndarray:
    """Frame at time t in (0, 1) between two (H, W, 3) float32 frames.

    Bidirectional backward warping: the flows from time t to each endpoint come from the endpoint
    flows projected to t (`intermediate_flows`), both endpoints are warped to t and blended with
    weights (1 - t, t), down-weighted where the forward-backward check says the sample is wrong:
    where the frame-1 sample is content that only exists in frame 1 (uncovered), the frame-0
    sample shows the occluder, and vice versa. A sample that falls outside its frame (content
    that moved in from beyond the edge) gives way to the other endpoint's (`edge_weights`).

    `occlusion_weight` scales that down-weighting. Full strength (1.0) trusts the forward-backward
    check too much: its false positives on real footage cost more than the occlusions it fixes,
    while half strength keeps the occlusion cue at no cost on real or synthetic motion
    (tests/test_classical.py compares the two).
    """
    return interpolate_pair_parts(first, second, t, flow_01, flow_10, preset, occlusion_weight, edge_margin)[0]


def interpolate_pair_parts(first: np.ndarray, second: np.ndarray, t: float,
                           flow_01: np.ndarray | None = None, flow_10: np.ndarray | None = None,
                           preset: str = INTERP_PRESET, occlusion_weight: float = 0.5,
                           edge_margin: float | None = EDGE_MARGIN):
    """interpolate_pair's (blend, first warped to t, second warped to t): the learned
    interpolator's hints, computed once."""
    if flow_01 is None:
        flow_01 = dis_flow(first, second, preset)
    if flow_10 is None:
        flow_10 = dis_flow(second, first, preset)
    f_t0, f_t1 = intermediate_flows(first, second, t, flow_01, flow_10)
    w0, w1 = blend_weights(t, flow_01, flow_10, f_t0, f_t1, occlusion_weight, edge_margin)
    return blend_warped(first, second, f_t0, f_t1, w0, w1)


def blend_warped(first: np.ndarray, second: np.ndarray, f_t0: np.ndarray, f_t1: np.ndarray,
                 w0: np.ndarray, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blend, first warped to t, second warped to t) for the flows from t and (H, W) weights."""
    i0 = warp(first, f_t0)
    i1 = warp(second, f_t1)
    out = w0[..., None] * i0 + w1[..., None] * i1
    return np.clip(out, 0.0, 1.0).astype(np.float32), i0, i1


def inside_frame(flow: np.ndarray, margin: float = EDGE_MARGIN) -> np.ndarray:
    """(H, W) float32: 1 where x + flow(x) lies inside the frame, falling linearly to 0 at `margin`
    pixels outside it (0 margin: a hard 0/1). A backward warp replicates the edge there, which is
    a guess, not a sample of the content that moved out of view."""
    h, w = flow.shape[:2]
    gx, gy = _grid(h, w)
    x = gx + flow[..., 0]
    y = gy + flow[..., 1]
    dist = np.minimum(np.minimum(x, (w - 1) - x), np.minimum(y, (h - 1) - y))  # < 0 outside
    if margin <= 0:
        return (dist >= 0).astype(np.float32)
    return np.clip(dist / margin + 1.0, 0.0, 1.0).astype(np.float32)


def blend_weights(t: float, flow_01: np.ndarray, flow_10: np.ndarray, f_t0: np.ndarray, f_t1: np.ndarray,
                  occlusion_weight: float = 0.5, edge_margin: float | None = EDGE_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) weights of the two endpoints warped to t, summing to 1: (1 - t, t), each lowered where
    the forward-backward check says its sample shows content the other frame does not have, then
    the frame-edge rule (`edge_weights`; `edge_margin=None` leaves it out)."""
    occ0 = occlusion_mask(flow_01, flow_10)  # frame-0 pixels missing from frame 1
    occ1 = occlusion_mask(flow_10, flow_01)  # frame-1 pixels missing from frame 0
    # Soften the binary masks so isolated flow outliers do not leave speckles.
    occ0 = cv2.GaussianBlur(occ0, (5, 5), 0)
    occ1 = cv2.GaussianBlur(occ1, (5, 5), 0)
    o0_t = warp(occ0, f_t0)
    o1_t = warp(occ1, f_t1)
    w0 = (1.0 - t) * (1.0 - occlusion_weight * o1_t)
    w1 = t * (1.0 - occlusion_weight * o0_t)
    total = w0 + w1
    # Where both samples look unreliable, fall back to the plain temporal weights.
    fallback = total < 1e-3
    w0 = np.where(fallback, 1.0 - t, w0)
    w1 = np.where(fallback, t, w1)
    total = w0 + w1
    w0, w1 = w0 / total, w1 / total
    return (w0, w1) if edge_margin is None else edge_weights(w0, w1, f_t0, f_t1, edge_margin)


def edge_weights(w0: np.ndarray, w1: np.ndarray, f_t0: np.ndarray, f_t1: np.ndarray,
                 margin: float = EDGE_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Blend weights (summing to 1) with each endpoint's weight taken away where its sample falls
    outside its frame (`inside_frame`); where both do, neither is better and they stay."""
    a0 = w0 * inside_frame(f_t0, margin)
    a1 = w1 * inside_frame(f_t1, margin)
    total = a0 + a1
    both_out = total < 1e-3
    return np.where(both_out, w0, a0 / np.maximum(total, 1e-3)), np.where(both_out, w1, a1 / np.maximum(total, 1e-3))
