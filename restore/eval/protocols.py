"""The fixed degradation protocols of the benchmark (../shared/data/README.md keeps them fixed so
numbers stay comparable across runs and reports).

- Gaussian noise (`add_noise`): std `sigma` on the 0-255 scale, drawn frame by frame from one
  generator seeded by (seed, sigma), added to the 8-bit frames, then clipped to [0, 255] and
  rounded to uint8, so every method sees the same 8-bit noisy frames (as a user's video would be).
- 'BI' super-resolution (`bi_downscale`): HR cropped to a multiple of the scale (`crop_to_multiple`),
  MATLAB-style antialiased bicubic downscaling (restore.ops.resize.imresize), rounded to uint8.
- Frame dropping (`drop_frames`): keep every `factor`-th frame; the dropped ones are the targets
  an interpolator must predict.
- Compression (`encode_crf`, `encode_crf_stream`): a round trip through libx264 / libx265 at a CRF
  (PyAV, yuv420p); the deblock tasks also keep the encoded stream for the blind strength estimate.

All functions are pure functions of their inputs and seed: the same call gives the same bytes.
"""
from __future__ import annotations

import numpy as np

# The noise and 'BI' protocols live with the other degradations (the training's quick validation
# uses them too, and sits below this layer); they are part of this module's interface.
from restore.diffusion.degrade import NOISE_SEED, add_noise, bi_downscale  # noqa: F401

TUNE_SEED = 7          # peer strength tuning draws its noise from another seed than evaluation


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Top-left crop of (..., H, W, 3) to multiples of `scale` (the usual SR 'modcrop')."""
    h, w = img.shape[-3], img.shape[-2]
    return img[..., : h - h % scale, : w - w % scale, :]


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
    yuv420p, encoded in memory with PyAV; returns the decoded RGB frames. Both encoders run
    single-threaded (frame threading makes x264's output depend on timing), yet PyAV's bundled
    libx264 still gives streams that differ a little from run to run (ten encodes of 12 DAVIS
    frames at CRF 30 in one process: 2-6 distinct streams, decoded Y-PSNR within about 0.02 dB;
    Debian's ffmpeg CLI on the same frames: identical), so compare deblock numbers to about that."""
    return encode_crf_stream(frames_u8, codec, crf, preset=preset, fps=fps)[0]


def encode_crf_stream(frames_u8: np.ndarray, codec: str = "libx264", crf: int = 28, *, preset: str = "medium",
                      fps: int = 25) -> tuple[np.ndarray, bytes]:
    """encode_crf, also returning the encoded file (Matroska bytes): the deblock task's blind
    strength estimate reads the stream, as `restore enhance --deblock` does on a user's file."""
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
    data = buf.getvalue()
    with av.open(io.BytesIO(data), mode="r") as inp:
        decoded = [fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"{codec} round trip returned {len(decoded)} frames for {t}")
    return np.stack(decoded), data
