"""The fixed degradation protocols of the benchmark (../shared/data/README.md keeps them fixed so
numbers stay comparable across runs and reports).

- Gaussian noise (`add_noise`): std `sigma` on the 0-255 scale, drawn frame by frame from one
  generator seeded by (seed, sigma), added to the 8-bit frames, then clipped to [0, 255] and
  rounded to uint8, so every method sees the same 8-bit noisy frames (as a user's video would be).
- 'BI' super-resolution (`bi_downscale`): HR cropped to a multiple of the scale (`crop_to_multiple`),
  MATLAB-style antialiased bicubic downscaling (restore.diffusion.degrade.imresize), rounded to uint8.
- Frame dropping (`drop_frames`): keep every `factor`-th frame; the dropped ones are the targets
  an interpolator must predict.
- Compression (`encode_crf`): a round trip through libx264 / libx265 at a CRF (PyAV, yuv420p).

All functions are pure functions of their inputs and seed: the same call gives the same bytes.
"""
from __future__ import annotations

import numpy as np

NOISE_SEED = 20240415  # evaluation noise (the value the earlier validation tables used)
TUNE_SEED = 7          # peer strength tuning draws its noise from another seed than evaluation


def add_noise(frames_u8: np.ndarray, sigma: float, seed: int = NOISE_SEED) -> np.ndarray:
    """Gaussian noise of std `sigma` (0-255) on uint8 (T, H, W, 3) frames, clipped and rounded to uint8.

    One generator per (seed, sigma), drawn frame by frame in float32, so the first N frames get the
    same noise whether 4 or 60 frames are processed: a quick run scores a prefix of the full run."""
    frames_u8 = np.asarray(frames_u8)
    if frames_u8.dtype != np.uint8:
        raise TypeError(f"add_noise takes uint8 frames, got {frames_u8.dtype}")
    rng = np.random.default_rng([int(seed), int(round(float(sigma) * 100))])
    out = np.empty_like(frames_u8)
    for i, f in enumerate(frames_u8):
        noisy = f.astype(np.float32) + rng.standard_normal(f.shape, dtype=np.float32) * np.float32(sigma)
        out[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Top-left crop of (..., H, W, 3) to multiples of `scale` (the usual SR 'modcrop')."""
    h, w = img.shape[-3], img.shape[-2]
    return img[..., : h - h % scale, : w - w % scale, :]


def bi_downscale(hr_u8: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic (antialiased) downscale of uint8 (..., H, W, 3) by `scale`, rounded to uint8.
    H and W must be multiples of `scale` (crop_to_multiple first)."""
    from restore.diffusion.degrade import imresize_hwc

    h, w = hr_u8.shape[-3], hr_u8.shape[-2]
    if h % scale or w % scale:
        raise ValueError(f"{w}x{h} is not a multiple of {scale}: crop_to_multiple first")
    if hr_u8.ndim == 4:  # frame by frame: bounded memory on long clips
        return np.stack([bi_downscale(f, scale) for f in hr_u8])
    lr = imresize_hwc(hr_u8.astype(np.float32) / 255.0, (h // scale, w // scale))
    return np.clip(np.rint(lr * 255.0), 0, 255).astype(np.uint8)


def drop_frames(frames: np.ndarray, factor: int = 2) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(kept, dropped, dropped_indices): keep frames 0, factor, 2 factor, ...; the frames strictly
    between two kept ones are the targets. Trailing frames after the last kept one are unused, so
    every target has a kept frame on both sides."""
    if factor < 2:
        raise ValueError(f"frame dropping factor must be >= 2, got {factor}")
    n_kept = (len(frames) - 1) // factor + 1
    if n_kept < 2:
        raise ValueError(f"frame dropping by {factor} needs at least {factor + 1} frames, got {len(frames)}")
    kept_idx = [i * factor for i in range(n_kept)]
    dropped_idx = [i for i in range(kept_idx[-1]) if i % factor]
    return frames[kept_idx], frames[dropped_idx], dropped_idx


def encode_crf(frames_u8: np.ndarray, codec: str = "libx264", crf: int = 28, *, preset: str = "medium",
               fps: int = 25) -> np.ndarray:
    """Round trip of uint8 (T, H, W, 3) RGB frames through `codec` (libx264 or libx265) at `crf`,
    yuv420p, encoded in memory with PyAV; returns the decoded RGB frames. Deterministic: both
    encoders run single-threaded here (frame threading makes x264's output depend on timing)."""
    import io

    import av

    if codec not in ("libx264", "libx265"):
        raise ValueError(f"codec must be libx264 or libx265, got {codec!r}")
    t, h, w, _ = frames_u8.shape
    if h % 2 or w % 2:
        raise ValueError(f"{w}x{h}: yuv420p needs even dimensions")
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": preset, "threads": "1"}
        else:
            stream.options = {"crf": str(crf), "preset": preset,
                              "x265-params": "pools=none:frame-threads=1:log-level=error"}
        for f in frames_u8:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, mode="r") as inp:
        decoded = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"{codec} round trip returned {len(decoded)} frames for {t}")
    return np.stack(decoded)
