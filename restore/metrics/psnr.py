"""PSNR, three ways, with ffmpeg's aggregation.

Modes
- "yuv": per plane on the source's own code values (ffmpeg's psnr filter). Peak = 2^bits - 1
  (255 for 8-bit, 1023 for 10-bit). The frame "average" weights each plane's MSE by its pixel
  count, so for 4:2:0 the Y plane counts four times as much as each chroma plane.
- "rgb": on RGB scaled to [0, 1] (uint8 / 255, uint16 / 65535), peak 1: the same number as on
  0..255 for 8-bit sources, and independent of the bit depth the two files were decoded at.
- "y": on the Y channel of ITU-R BT.601 as SR papers report it (MATLAB rgb2ycbcr:
  Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 with RGB in [0, 1], so Y in [16, 235] on the
  0..255 scale, not rounded), peak 255, after cropping `crop_border` pixels on every side.

Aggregation and the identical-frames rule
- Per frame: PSNR = 10 log10(peak^2 / MSE); a frame with MSE = 0 has PSNR = inf (exact, no cap).
- Sequence PSNR (`psnr`, ffmpeg's convention): PSNR of the mean MSE over all frames. It is inf
  only when every frame is identical; one identical frame among others contributes MSE 0 and no inf.
- Mean of per-frame PSNR (`psnr_frame_mean`) and the dB summaries (min, p5, median, max): per-frame
  values are capped at PSNR_CAP_DB = 100 dB first, so identical frames count as 100 dB instead of
  making the mean infinite. 100 dB is an MSE of 1e-10 peak^2: far above any real distortion
  (rounding to 8 bits alone gives about 59 dB).
"""
from __future__ import annotations

import numpy as np

PSNR_CAP_DB = 100.0


def psnr_from_mse(mse, peak: float):
    """10 log10(peak^2 / mse), inf where mse == 0 (works on scalars and arrays)."""
    mse = np.asarray(mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = 10.0 * np.log10((float(peak) ** 2) / mse)
    return out if out.ndim else float(out)


def capped(db):
    """Per-frame dB values with inf replaced by PSNR_CAP_DB (for means and summaries)."""
    return np.minimum(np.asarray(db, dtype=np.float64), PSNR_CAP_DB)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two same-shaped arrays, exact for integer inputs."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    if a.dtype == b.dtype and a.dtype in (np.uint8, np.uint16):
        import cv2  # SIMD sum of squared differences, accumulated in double: exact for integers

        return cv2.norm(np.ascontiguousarray(a), np.ascontiguousarray(b), cv2.NORM_L2SQR) / a.size
    if a.dtype.kind in "ui" and b.dtype.kind in "ui":
        d = a.astype(np.int32) - b.astype(np.int32)
        d = d.reshape(-1)
        # int64 dot is exact for any frame we will meet (65535^2 * 2^31 pixels fits)
        return float(np.dot(d.astype(np.int64), d.astype(np.int64))) / d.size
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(np.mean(d * d))


def plane_weights(planes) -> np.ndarray:
    """ffmpeg's planeweight: each plane's share of all samples."""
    sizes = np.array([p.size for p in planes], dtype=np.float64)
    return sizes / sizes.sum()


def plane_mse(ref_planes, dist_planes) -> np.ndarray:
    return np.array([mse(r, d) for r, d in zip(ref_planes, dist_planes)], dtype=np.float64)


def to_unit_rgb(img: np.ndarray) -> np.ndarray:
    """uint8 / uint16 (full scale) / float RGB -> float32 in [0, 1]."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) * np.float32(1 / 255)
    if img.dtype == np.uint16:
        return img.astype(np.float32) * np.float32(1 / 65535)
    return img.astype(np.float32, copy=False)


def rgb_to_y601(img: np.ndarray, dtype=np.float64) -> np.ndarray:
    """BT.601 luma as MATLAB rgb2ycbcr (Y in [16, 235] on the 0..255 scale, not rounded)."""
    if dtype == np.float32 and img.dtype in (np.uint8, np.uint16):
        import cv2  # one SIMD pass instead of five numpy temporaries

        scale = 255.0 if img.dtype == np.uint8 else 65535.0
        m = np.append(_Y601 / scale, 16.0).reshape(1, 4).astype(np.float32)
        return cv2.transform(np.ascontiguousarray(img).astype(np.float32), m)
    x = to_unit_rgb(img).astype(dtype, copy=False)
    c = _Y601.astype(dtype)
    return 16.0 + (c[0] * x[..., 0] + c[1] * x[..., 1] + c[2] * x[..., 2])


_Y601 = np.array([65.481, 128.553, 24.966])


def y601_mse(ref: np.ndarray, dist: np.ndarray, crop_border: int = 0) -> float:
    """MSE of BT.601 Y (0..255 scale) between two RGB images, computed from the integer RGB
    difference (Y is linear in RGB, the offset 16 cancels), so float rounding of Y itself never
    enters: exact to float64 precision at the cost of one int32 subtraction."""
    ref, dist = crop(ref, crop_border), crop(dist, crop_border)
    if ref.shape != dist.shape:
        raise ValueError(f"shape mismatch {ref.shape} vs {dist.shape}")
    if ref.dtype == dist.dtype and ref.dtype in (np.uint8, np.uint16):
        import cv2  # SIMD: exact integer difference in float32, then a 1x3 colour transform

        scale = 255.0 if ref.dtype == np.uint8 else 65535.0
        d = cv2.subtract(np.ascontiguousarray(ref), np.ascontiguousarray(dist), dtype=cv2.CV_32F)
        dy = cv2.transform(d, (_Y601 / scale).reshape(1, 3).astype(np.float32))
        return cv2.norm(dy, cv2.NORM_L2SQR) / dy.size
    d = to_unit_rgb(ref).astype(np.float64) - to_unit_rgb(dist).astype(np.float64)
    dy = d.reshape(-1, 3) @ _Y601
    return float(np.dot(dy, dy) / dy.size)


def crop(img: np.ndarray, border: int) -> np.ndarray:
    if border <= 0:
        return img
    if 2 * border >= min(img.shape[0], img.shape[1]):
        raise ValueError(f"crop_border {border} leaves nothing of a {img.shape[1]}x{img.shape[0]} frame")
    return img[border:-border, border:-border]


def psnr(a: np.ndarray, b: np.ndarray, *, peak: float | None = None) -> float:
    """PSNR of two arrays. Integer inputs default to their dtype's peak (255 / 65535), floats to 1."""
    if peak is None:
        peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype, 1.0)
    return psnr_from_mse(mse(a, b), peak)


def rgb_mse(ref: np.ndarray, dist: np.ndarray, crop_border: int = 0) -> float:
    """MSE of RGB on the [0, 1] scale; exact integer arithmetic when both have the same integer dtype."""
    ref, dist = crop(ref, crop_border), crop(dist, crop_border)
    if ref.dtype.kind in "ui" and ref.dtype == dist.dtype:
        scale = {1: 255.0, 2: 65535.0}[ref.dtype.itemsize]
        return mse(ref, dist) / (scale * scale)
    return mse(to_unit_rgb(ref).astype(np.float64), to_unit_rgb(dist).astype(np.float64))


def psnr_rgb(ref: np.ndarray, dist: np.ndarray, crop_border: int = 0) -> float:
    return psnr_from_mse(rgb_mse(ref, dist, crop_border), 1.0)


def psnr_y(ref: np.ndarray, dist: np.ndarray, crop_border: int = 0) -> float:
    return psnr_from_mse(y601_mse(ref, dist, crop_border), 255.0)


class PSNRAccumulator:
    """Collects per-frame MSEs (per plane) and reports ffmpeg-style and mean-of-dB aggregates."""

    def __init__(self, plane_names: tuple[str, ...], peak: float, weights: np.ndarray | None = None):
        self.names = plane_names
        self.peak = float(peak)
        self.weights = None if weights is None else np.asarray(weights, np.float64)
        self.rows: list[np.ndarray] = []

    def add(self, mses) -> dict:
        """Add one frame's per-plane MSEs; returns that frame's values (mse and psnr per plane, avg)."""
        m = np.atleast_1d(np.asarray(mses, np.float64))
        w = self.weights if self.weights is not None else np.full(len(m), 1 / len(m))
        self.rows.append(m)
        avg = float(np.dot(m, w))
        out = {"mse": avg, "psnr": psnr_from_mse(avg, self.peak)}
        if len(m) > 1:
            for name, v in zip(self.names, m):
                out[f"psnr_{name}"] = psnr_from_mse(v, self.peak)
        return out

    def summary(self) -> dict:
        if not self.rows:
            return {}
        m = np.stack(self.rows)
        w = self.weights if self.weights is not None else np.full(m.shape[1], 1 / m.shape[1])
        frame_avg = m @ w
        out = {
            "psnr": psnr_from_mse(frame_avg.mean(), self.peak),   # ffmpeg: PSNR of the mean MSE
            "psnr_frame_mean": float(capped(psnr_from_mse(frame_avg, self.peak)).mean()),
            "mse": float(frame_avg.mean()),
            "peak": self.peak,
        }
        if m.shape[1] > 1:
            for i, name in enumerate(self.names):
                out[f"psnr_{name}"] = psnr_from_mse(m[:, i].mean(), self.peak)
                out[f"psnr_{name}_frame_mean"] = float(capped(psnr_from_mse(m[:, i], self.peak)).mean())
        return out
