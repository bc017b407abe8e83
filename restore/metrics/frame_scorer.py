"""Per-frame metrics of one scoring run: each aligned frame pair becomes one report row.

PSNR is accumulated as frames arrive; the heavier metrics run beside the decode loop and fill
their row later: Wang's SSIM in worker threads, ffmpeg's SSIM in its filter graph, LPIPS and tLP
in batches through AlexNet, VMAF in the meter's batches. `finish()` fills every row still waiting.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .psnr import PSNRAccumulator, mse, plane_weights, rgb_mse, y601_mse
from .signals import Signals
from .ssim import ssim as _ssim
from .ssim import ssim_ffmpeg as _ssim_ffmpeg

SSIM_THREADS = max(1, min(4, os.cpu_count() or 1))
SSIM_AHEAD = 2 * SSIM_THREADS   # frames whose SSIM may still be computing (bounds the memory held)


class FrameScorer:
    """Rows of per-frame metrics for the pairs given to `add`; `close()` always, after use."""

    def __init__(self, signals: Signals, *, psnr_mode: str, ssim_mode: str, crop_border: int, offset: int,
                 want_psnr: bool, want_ssim: bool, want_lpips: bool, want_temporal: bool,
                 lpips_fn=None, vmeter=None):
        self.s = signals
        self.psnr_mode, self.ssim_mode, self.crop_border, self.offset = psnr_mode, ssim_mode, crop_border, offset
        self.want_psnr, self.want_ssim, self.want_lpips, self.want_temporal = (
            want_psnr, want_ssim, want_lpips, want_temporal)
        self.lpips_fn, self.vmeter = lpips_fn, vmeter
        # yuv: created on the first frame, when the plane sizes are known
        self.acc = None if psnr_mode == "yuv" else PSNRAccumulator(
            ("rgb",) if psnr_mode == "rgb" else ("y",), signals.peak)
        self.temporal_meter = None
        if want_temporal:
            from .temporal import TemporalMeter

            self.temporal_meter = TemporalMeter(tof=True)
        self.rows: list[dict] = []
        self._batch_idx: list[int] = []
        self._batch_ref: list[np.ndarray] = []
        self._batch_dist: list[np.ndarray] = []
        self._carry: list = []   # AlexNet features of the previous frame pair, for tLP across batches
        self._use_features = lpips_fn is not None and hasattr(lpips_fn, "features")
        self._ssim_pool = ThreadPoolExecutor(max_workers=SSIM_THREADS, thread_name_prefix="restore-ssim")
        self._ssim_pending: deque = deque()

    def add(self, r, d) -> None:
        """One aligned pair (reference item, distorted item) -> the next row."""
        s = self.s
        i = len(self.rows)
        row = {"frame": i + max(0, -self.offset), "distorted_frame": i + max(0, self.offset)}
        if self.want_psnr:
            row.update(self._psnr(r, d))
        if s.ff_ssim is not None:
            row["ssim"] = None   # filled when the filter hands the frame back (below or later)
        elif self.want_ssim and self.ssim_mode == "ffmpeg":
            row["ssim"], per_plane = _ssim_ffmpeg(r.planes, d.planes, s.bits)
            if len(per_plane) > 1:
                for name, v in zip(("y", "u", "v"), per_plane):
                    row[f"ssim_{name}"] = v
        elif self.want_ssim:
            # Gaussian SSIM is the heaviest per-frame work: it runs beside the loop in worker
            # threads (OpenCV and numpy release the GIL), at most SSIM_AHEAD frames in flight
            row["ssim"] = None
            luma, data_range = s.luma, s.ssim_range
            self._ssim_pending.append((row, self._ssim_pool.submit(
                lambda a, b: _ssim(luma(a), luma(b), data_range), r, d)))
            while len(self._ssim_pending) > SSIM_AHEAD:
                done_row, fut = self._ssim_pending.popleft()
                done_row["ssim"] = fut.result()
        if self.vmeter is not None:
            self.vmeter.add(s.y_plane(r), s.y_plane(d))
        self.rows.append(row)
        if s.ff_ssim is not None:
            self._take_ffmpeg_ssim(s.ff_ssim.push(i, d.frame, r.frame))
        if self.lpips_fn is not None:
            if self.want_lpips:
                row["lpips"] = None
            self._batch_idx.append(i); self._batch_ref.append(s.rgb(r)); self._batch_dist.append(s.rgb(d))
        if self.temporal_meter is not None:
            t = self.temporal_meter.add(s.rgb(r), s.rgb(d))
            row["ewarp"] = None if t is None else t["ewarp"]
            row["flicker"] = None if t is None else t["flicker"]
            row["tof"] = None if t is None else t["tof"]
            row["tlp"] = None
        if self.lpips_fn is not None and len(self._batch_idx) >= self.lpips_fn.batch_size:
            self._flush_lpips()

    def _psnr(self, r, d) -> dict:
        if self.psnr_mode == "yuv":
            if self.acc is None:
                names = ("y", "u", "v")[:len(r.planes)]
                self.acc = PSNRAccumulator(names, self.s.peak, plane_weights(r.planes))
            return self.acc.add([mse(a, b) for a, b in zip(r.planes, d.planes)])
        if self.psnr_mode == "rgb":
            return self.acc.add(rgb_mse(self.s.rgb(r), self.s.rgb(d), self.crop_border))
        return self.acc.add(y601_mse(self.s.rgb(r), self.s.rgb(d), self.crop_border))

    def finish(self) -> None:
        """Every row complete: the last LPIPS batch, the frames still in ffmpeg's filter, the SSIM
        still computing."""
        if self.lpips_fn is not None:
            self._flush_lpips()
        if self.s.ff_ssim is not None:
            self._take_ffmpeg_ssim(self.s.ff_ssim.close())
        while self._ssim_pending:
            done_row, fut = self._ssim_pending.popleft()
            done_row["ssim"] = fut.result()

    def close(self) -> None:
        """The SSIM threads stopped (what is still queued is dropped: after an error, say)."""
        for _, fut in self._ssim_pending:
            fut.cancel()
        self._ssim_pool.shutdown(wait=True)

    def _take_ffmpeg_ssim(self, results) -> None:
        for index, meta in results:
            row = self.rows[index]
            row["ssim"] = float(meta.get("lavfi.ssim.All", meta.get("lavfi.ssim.Y")))
            if "lavfi.ssim.U" in meta:
                for name in ("y", "u", "v"):
                    row[f"ssim_{name}"] = float(meta[f"lavfi.ssim.{name.upper()}"])

    def _flush_lpips(self) -> None:
        batch_idx, batch_ref, batch_dist, rows = self._batch_idx, self._batch_ref, self._batch_dist, self.rows
        lpips_fn = self.lpips_fn
        if not batch_idx:
            return
        n = len(batch_idx)
        if not self._use_features:   # an LPIPS stand-in without the features API: distances only
            d = lpips_fn(np.stack(batch_ref), np.stack(batch_dist))
            for i, v in zip(batch_idx, d):
                rows[i]["lpips"] = float(v)
            batch_idx.clear(); batch_ref.clear(); batch_dist.clear()
            return
        # each frame through AlexNet once: LPIPS(ref_t, out_t) and, for tLP, LPIPS between
        # consecutive reference frames and consecutive output frames, all from the same features
        both = batch_ref + batch_dist
        if both[0].dtype != both[-1].dtype:
            from .psnr import to_unit_rgb

            both = [to_unit_rgb(x) for x in both]
        f = lpips_fn.features(np.stack(both))
        fr, fd = [x[:n] for x in f], [x[n:] for x in f]
        if self.want_lpips:
            for i, v in zip(batch_idx, lpips_fn.distance(fr, fd)):
                rows[i]["lpips"] = float(v)
        if self.want_temporal:
            carry = self._carry
            if carry:
                import torch

                pr = [torch.cat([c, x]) for c, x in zip(carry[0], fr)]
                pd = [torch.cat([c, x]) for c, x in zip(carry[1], fd)]
                first = 0
            else:
                pr, pd, first = fr, fd, 1
            if len(pr[0]) > 1:
                d_ref = lpips_fn.distance([x[:-1] for x in pr], [x[1:] for x in pr])
                d_out = lpips_fn.distance([x[:-1] for x in pd], [x[1:] for x in pd])
                for k, i in enumerate(batch_idx[first:]):
                    rows[i]["tlp"] = float(abs(d_ref[k] - d_out[k]))
            carry[:] = [[x[-1:] for x in fr], [x[-1:] for x in fd]]
        batch_idx.clear(); batch_ref.clear(); batch_dist.clear()
