"""How compressed is a video? The blind estimate behind `--deblock auto`.

Three measurements, best first:

1. quantiser: the decoder's own per-block quantisers (FFmpeg's `export_side_data=venc_params`),
   exported by the H.264 decoder (QP 0-51) and the MPEG-1/2/4 Part 2 decoders (qscale 1-31,
   turned into an H.264-equivalent QP below). The quantiser is what decides the damage, whatever
   the content; this is how ffmpeg's own spp / pp7 filters pick their strength.
2. bitrate: bits per pixel of the video stream (packet sizes, no decoding) for codecs that do not
   export quantisers (HEVC, AV1, VP9 ...), through a per-codec curve. Content changes the bitrate
   a codec needs for a quality, so this is the weaker estimate; it is capped by (3).
3. blockiness: luma gradient energy across the 8x8 block grid against inside the blocks, for
   frames without a stream (the Python API on arrays).

Lossless codecs (FFV1, PNG, raw video, x264 at QP 0 ...) are 0 outright: a clean input is never
touched. The estimated strength scales a method by the damage (the classical DCT filter harms
light encodes at a heavy setting); a blind model judges the damage itself and gains at every
lossy level, so `auto_strength` runs it at full strength on any lossy stream. The constants come
from x264 CRF ladders on real footage (scripts/calibrate_deblock.py rederives them and prints the
table; see CALIBRATION below).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

# Codecs whose decoded frames are the encoded ones: never deblocked.
LOSSLESS_CODECS = frozenset({"ffv1", "ffvhuff", "huffyuv", "png", "apng", "rawvideo", "utvideo", "magicyuv",
                             "qtrle", "v210", "v410", "r210", "tiff", "bmp", "zlib", "lagarith", "y4m",
                             "pam", "ppm", "pgm", "gif"})

# ---- calibration (scripts/calibrate_deblock.py, 12 frames of davis-blackswan, sam2-bedroom and
# bikes.mp4 from ../shared/data/train; x264 / x265 preset medium, yuv420p) --------------------------
# Mean H.264 QP over the decoded blocks of all frames, by x264 CRF (blackswan / bedroom / bikes):
#   CRF 18: 23.3 / 21.0 / 18.0   CRF 20: 25.4 / 22.9 / 20.0   CRF 23: 28.4 / 26.0 / 23.3
#   CRF 30: 35.6 / 34.0 / 30.5   CRF 37: 42.9 / 41.9 / 37.7   CRF 45: 50.1 / 48.9 / 45.6
# (mbtree raises P/B blocks above the CRF; bikes' letterbox bars sit at low QP). Strength is 0 up
# to QP_CLEAN (every CRF <= 20 encode: nothing worth removing, and a model can only lose there)
# and 1 from QP_FULL (CRF ~37) on, linear between.
QP_CLEAN = 26.0
QP_FULL = 40.0
# MPEG-1/2/4 Part 2 qscale q -> H.264-equivalent QP = offset + 6 log2(q) (both steps double per
# 6 QP / per doubling of q). Offset: MPEG-2 and MPEG-4 encodes land on the x264 Y-PSNR-vs-QP line
# of the same clip with 7.4-8.2 (five encodes, two clips).
MPEG_QP_OFFSET = 8.0
# Bits per pixel per frame (clean, full) per codec family, log-linear between; for codecs without
# exported quantisers (HEVC, AV1, VP9). The bits a quality costs vary ~4x with content (x265 CRF 37:
# 0.042 / 0.022 / 0.011 bpp on the three clips), so these sit at the low end, and blockiness caps
# the result (below): a conservative estimate that leaves detailed footage alone.
BPP_CURVES = {
    "h264": (0.20, 0.030),
    "hevc": (0.12, 0.018),
    "vp9": (0.10, 0.015),
    "av1": (0.10, 0.015),
    "mpeg2video": (0.60, 0.12),
    "mpeg4": (0.45, 0.09),
    "mpeg1video": (0.70, 0.14),
}
# Blockiness (gradient energy across the 8x8 grid over inside it): 1.03-1.09 on every x265 encode
# (in-loop deblocking and SAO), x264 1.05 (CRF 18) to 1.2-1.75 (CRF 37), MPEG-2/4 1.3-1.6; but also
# 1.2-1.4 for some lossless sources (letterboxing, a blocky original). Strength from blockiness
# alone ramps between these.
BLOCKY_CLEAN = 1.10
BLOCKY_FULL = 1.60
# Below this mean H.264 QP a stream is a lossless mode (x264 --qp 0: mean 0.0; CRF 10 is already
# 9.7-15.3 on the calibration clips).
QP_LOSSLESS = 4.0

PROBE_FRAMES = 48        # decoded frames for quantiser and blockiness statistics
PROBE_PACKETS = 3000     # packets read for the bitrate (2 minutes at 25 fps): no decoding


@dataclass
class DamageEstimate:
    strength: float               # 0..1, what --deblock auto uses
    basis: str                    # "lossless codec", "quantiser", "bitrate", "blockiness", "no data"
    codec: str | None = None
    bpp: float | None = None      # video bits per pixel per frame
    qp: float | None = None       # mean H.264-equivalent quantiser
    blockiness: float | None = None

    def describe(self) -> str:
        """e.g. 'strength 0.80 (h264, 0.031 bpp, QP 39.8, blockiness 1.04; from the quantiser)'"""
        parts = [p for p in (
            self.codec,
            f"{self.bpp:.3f} bpp" if self.bpp is not None else None,
            f"QP {self.qp:.1f}" if self.qp is not None else None,
            f"blockiness {self.blockiness:.2f}" if self.blockiness is not None else None) if p]
        return f"strength {self.strength:.2f} ({', '.join(parts) or 'no statistics'}; from the {self.basis})"

    def to_dict(self) -> dict:
        return asdict(self)


def auto_strength(est: DamageEstimate, blind: bool) -> float:
    """The strength `--deblock auto` gives a method. A blind method (a model trained on every
    damage level; registry `blind=True`) runs at full strength on any stream that is lossy, and
    not at all on a lossless one. Measured (scripts/calibrate_deblock.py --model, 12 frames each
    of davis-blackswan, sam2-bedroom, bikes.mp4): the shipped model's Y-PSNR gain at full strength
    was positive on every encode of x264 and x265 CRF 10-45 and MPEG-2 / MPEG-4 at 0.05-0.8 bpp
    (+0.02 to +4.7 dB, largest on the lightest encodes, which the damage ramp would leave alone).
    Frames without a stream (blockiness) keep the ramp: nothing says they are lossy."""
    if not blind or est.basis in ("blockiness", "no data"):
        return est.strength
    if est.basis == "lossless codec" or (est.qp is not None and est.qp < QP_LOSSLESS):
        return 0.0
    return 1.0


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(max((x - lo) / (hi - lo), 0.0), 1.0))


def strength_from_qp(qp: float) -> float:
    return _ramp(qp, QP_CLEAN, QP_FULL)


def strength_from_bpp(bpp: float, codec: str) -> float | None:
    curve = BPP_CURVES.get(codec)
    if curve is None or bpp <= 0:
        return None
    clean, full = curve
    return _ramp(-math.log(bpp), -math.log(clean), -math.log(full))


def strength_from_blockiness(b: float) -> float:
    return _ramp(b, BLOCKY_CLEAN, BLOCKY_FULL)


def mpeg_qscale_to_qp(q: float) -> float:
    return MPEG_QP_OFFSET + 6.0 * math.log2(max(q, 1e-3))


def blockiness(luma: np.ndarray, block: int = 8) -> float:
    """Mean |horizontal and vertical luma step| across 8x8 block edges over the mean step at the
    other positions (1.0: no grid). luma: (H, W) or (T, H, W), any numeric type."""
    y = np.asarray(luma, dtype=np.float32)
    if y.ndim == 2:
        y = y[None]
    ratios = []
    for axis in (2, 1):
        n = y.shape[axis]
        if n < 2 * block + 1:
            continue
        d = np.abs(np.diff(y, axis=axis))          # d[..., i] = step between pixel i and i+1
        d = d.mean(axis=tuple(a for a in range(3) if a != axis))
        pos = np.arange(len(d)) % block
        edge = d[pos == block - 1].mean()           # steps across a block boundary
        inner = d[pos != block - 1].mean()
        if inner > 1e-6:
            ratios.append(float(edge / inner))
    return float(np.mean(ratios)) if ratios else 1.0


def luma601(frames: np.ndarray) -> np.ndarray:
    """BT.601 luma (0-255 scale) of (..., 3) RGB floats in [0, 1] or uint8."""
    f = np.asarray(frames, dtype=np.float32)
    if np.asarray(frames).dtype != np.uint8:
        f = f * 255.0
    return f @ np.array([0.299, 0.587, 0.114], np.float32)


def estimate_from_frames(frames: np.ndarray) -> DamageEstimate:
    """Blind estimate from decoded frames alone (blockiness): (T, H, W, 3) in [0, 1] or uint8."""
    b = blockiness(luma601(frames))
    return DamageEstimate(strength_from_blockiness(b), "blockiness", blockiness=b)


def _codec_family(name: str) -> str:
    return {"libx264": "h264", "libx265": "hevc", "libsvtav1": "av1", "libaom-av1": "av1", "libdav1d": "av1",
            "libvpx-vp9": "vp9"}.get(name, name)


def estimate_from_stream(source, *, max_frames: int = PROBE_FRAMES, max_packets: int = PROBE_PACKETS) -> DamageEstimate:
    """Estimate from a video file (path or binary file object) with PyAV: codec, bits per pixel,
    the decoder's quantisers and blockiness of the first `max_frames` frames."""
    import av

    src = os.fspath(source) if isinstance(source, (str, os.PathLike)) else source
    with av.open(src) as c:
        if not c.streams.video:
            raise ValueError("no video stream")
        st = c.streams.video[0]
        codec = _codec_family(st.codec_context.name)
        w, h = st.codec_context.width, st.codec_context.height
        if codec in LOSSLESS_CODECS:
            return DamageEstimate(0.0, "lossless codec", codec=codec)
        total = n = 0
        for pkt in c.demux(st):
            if pkt.size:
                total += pkt.size
                n += 1
                if n >= max_packets:
                    break
        bpp = total * 8 / (n * w * h) if n and w and h else None
    with av.open(src if not hasattr(src, "seek") else (src.seek(0) or src)) as c:
        st = c.streams.video[0]
        st.codec_context.options = {"export_side_data": "venc_params"}
        qps, lumas = [], []
        for i, frame in enumerate(c.decode(st)):
            if i >= max_frames:
                break
            for sd in frame.side_data:
                if type(sd).__name__ != "VideoEncParams":
                    continue
                qmap = np.asarray(sd.qp_map(), dtype=np.float64)
                if not qmap.size:
                    continue
                kind = getattr(sd.codec_type, "name", str(sd.codec_type))
                if kind == "H264":
                    qps.append(float(qmap.mean()))
                elif kind == "MPEG2":
                    # the table holds the qscale of each macroblock (1-31)
                    qps.append(float(np.mean([mpeg_qscale_to_qp(q) for q in qmap.ravel()])))
            if i % 6 == 0 and len(lumas) < 8:
                lumas.append(frame.to_ndarray(format="gray").astype(np.float32))
    b = blockiness(np.stack(lumas)) if lumas else None
    qp = float(np.mean(qps)) if qps else None
    if qp is not None:
        return DamageEstimate(strength_from_qp(qp), "quantiser", codec, bpp, qp, b)
    s = strength_from_bpp(bpp, codec) if bpp is not None else None
    if s is not None:
        if b is not None:  # bitrate alone can mistake hard content for damage: blockiness caps it
            s = min(s, max(strength_from_blockiness(b), 0.5 * s))
        return DamageEstimate(s, "bitrate", codec, bpp, None, b)
    if b is not None:
        return DamageEstimate(strength_from_blockiness(b), "blockiness", codec, bpp, None, b)
    return DamageEstimate(0.0, "no data", codec, bpp)
