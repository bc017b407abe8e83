"""VMAF (Netflix): the standard model vmaf_v0.6.1 and the NEG model vmaf_v0.6.1neg, per frame.

Implementation: libvmaf is the reference, but neither Debian's ffmpeg nor PyAV's wheels are built
with it, so the features and the SVM come from `vmaf-torch` (PyPI, BSD-3-Clause; Aistov and
Koroteev, arXiv 2310.15578), a PyTorch port of libvmaf's float code path that also runs on CUDA.
Its model coefficients are in its source code: nothing is read from disk or the network at run
time. What restore adds is the streaming around it (features in batches of frames, the motion
feature carried across batches, so memory does not grow with the clip), the conventions below,
and, on the CPU, its one-channel filters routed through OpenCV while it runs (_fast_blur: the
same arithmetic, 2-3x less CPU; module attributes of vmaf_torch swapped and restored, so a
vmaf-torch release that renames them just runs at PyTorch speed).

Conventions (libvmaf's, checked in tests/test_vmaf.py against Netflix's expected scores for
their own test vectors, tests/data/vmaf/):
- Input: the Y plane of the reference's pixel format, code values. Higher bit depths are scaled
  to the 8-bit range by 2^(bits - 8), as libvmaf's float extractors do.
- Features per frame: VIF at four scales, ADM2, motion2 (the smaller of the blurred-luma SAD to
  the previous and to the next reference frame; 0 for frame 0, the SAD to the previous frame
  for the last one). The NEG model computes VIF and ADM with an enhancement-gain limit of 1.0,
  so sharpening or contrast boosts cannot raise the score above an undistorted copy; it is the
  honest choice for restoration, where plain VMAF rewards over-sharpening.
- Per-frame scores are clipped to [0, 100] (the models' score_clip); the pooled score is the
  arithmetic mean of the per-frame scores, libvmaf's `pooled_metrics.mean`. The harmonic mean
  is reported too because some tools pool that way.
Floating point instead of libvmaf's fixed point: within 0.02 VMAF points of libvmaf on every
reference vector (docs/scoring.md has the table).
"""
from __future__ import annotations

import contextlib

import numpy as np

from ..device import resolve_device
from ..errors import ConfigError

# our name -> (libvmaf model version, enhancement-gain-limited features)
MODELS = {"vmaf": ("vmaf_v0.6.1", False), "vmaf_neg": ("vmaf_v0.6.1neg", True)}
MIN_SIZE = 32   # VIF's 4th scale and ADM's 4 wavelet levels need at least this many pixels a side


def parse_models(spec) -> tuple[str, ...]:
    """'vmaf', 'neg', 'both' / 'vmaf,vmaf_neg' / a sequence -> tuple of keys of MODELS."""
    if spec is None or spec is False:
        return ()
    if spec is True:
        return tuple(MODELS)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        key = str(item).strip().lower()
        key = {"both": "all", "std": "vmaf", "vmaf_v0.6.1": "vmaf", "neg": "vmaf_neg",
               "vmaf_v0.6.1neg": "vmaf_neg", "vmafneg": "vmaf_neg"}.get(key, key)
        for k in (MODELS if key == "all" else [key]):
            if k not in MODELS:
                hint = (" (a file name? --vmaf takes an optional value: put it after the files, or "
                        "write --vmaf both)") if any(c in str(item) for c in "./\\") else ""
                raise ConfigError(f"--vmaf {item!r}: expected vmaf, neg or both{hint}")
            if k not in out:
                out.append(k)
    return tuple(out)


def _load_vmaf_torch():
    try:
        from vmaf_torch.adm import ADM
        from vmaf_torch.svm_predict import SVMPredict
        from vmaf_torch.utils import fast_gaussian_blur, gaussian_kernel_1d, vmaf_pad
        from vmaf_torch.vif import VIF
    except ImportError as err:  # a dependency of restore; only a broken install gets here
        raise ConfigError(f"VMAF needs the vmaf-torch package ({err}); pip install vmaf-torch") from err
    return ADM, VIF, SVMPredict, fast_gaussian_blur, gaussian_kernel_1d, vmaf_pad


def _sep_blur_cpu(x, weight, stride: int = 1):
    """vmaf_torch.utils.fast_gaussian_blur (a 'valid' separable correlation, then stride) with
    OpenCV's SIMD sepFilter2D: PyTorch's conv2d is slow for one-channel images on CPU (VIF's
    blurs were two thirds of its time). Only the valid region is kept, so the border mode never
    enters. Same float32 arithmetic; the Netflix vectors check the scores did not move."""
    import cv2
    import torch

    w = weight.reshape(-1).detach().cpu().numpy().astype(np.float32)
    k, p = w.size, w.size // 2
    xn = x.detach().numpy()
    n, c, h, wd = xn.shape
    out = np.empty((n, c, (h - k) // stride + 1, (wd - k) // stride + 1), np.float32)
    for i in range(n):
        for j in range(c):
            out[i, j] = cv2.sepFilter2D(xn[i, j], -1, w, w, borderType=cv2.BORDER_CONSTANT)[
                p:h - p:stride, p:wd - p:stride]
    return torch.from_numpy(out)


def _conv2d_cpu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d for the one-channel, unpadded ('valid') correlations of ADM's
    wavelet and masking filters, with OpenCV's SIMD filter2D; anything else goes to torch."""
    import cv2
    import torch

    plain = (bias is None and padding in (0, "valid", (0, 0)) and dilation in (1, (1, 1)) and groups == 1
             and weight.dim() == 4 and weight.shape[:2] == (1, 1) and input.dim() == 4
             and input.shape[1] == 1 and input.device.type == "cpu" and not input.requires_grad
             and input.dtype == torch.float32)
    if not plain:
        return torch.nn.functional.conv2d(input, weight, bias, stride, padding, dilation, groups)
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    k = weight[0, 0].detach().cpu().numpy().astype(np.float32)
    kh, kw = k.shape
    xn = input.detach().numpy()
    n, _, h, w = xn.shape
    out = np.empty((n, 1, (h - kh) // sy + 1, (w - kw) // sx + 1), np.float32)
    for i in range(n):
        # anchor (0, 0): dst(y, x) = sum k(i, j) src(y + i, x + j), the valid part is the top-left
        full = cv2.filter2D(xn[i, 0], -1, k, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
        out[i, 0] = full[:h - kh + 1:sy, :w - kw + 1:sx]
    return torch.from_numpy(out)


class _FunctionalWithCvConv:
    """torch.nn.functional with conv2d swapped for _conv2d_cpu (for vmaf_torch.adm's `F`)."""

    conv2d = staticmethod(_conv2d_cpu)

    def __getattr__(self, name):
        import torch.nn.functional

        return getattr(torch.nn.functional, name)


@contextlib.contextmanager
def _fast_blur(device: str):
    """Route vmaf-torch's VIF blurs and ADM convolutions through OpenCV while we run on the CPU
    (the module attributes are restored afterwards)."""
    import vmaf_torch.adm as adm_mod
    import vmaf_torch.vif as vif_mod

    original = getattr(vif_mod, "fast_gaussian_blur", None)
    original_f = getattr(adm_mod, "F", None)
    if device != "cpu" or original is None or original_f is None:
        yield
        return

    def blur(x, weight, stride=1):
        if weight.numel() % 2 == 0 or x.requires_grad:   # the crop below assumes a centred odd kernel
            return original(x, weight, stride)
        return _sep_blur_cpu(x, weight, stride)

    vif_mod.fast_gaussian_blur = blur
    adm_mod.F = _FunctionalWithCvConv()
    try:
        yield
    finally:
        vif_mod.fast_gaussian_blur = original
        adm_mod.F = original_f


class VMAFMeter:
    """Streaming VMAF: `add` Y planes in display order, `result()` at the end.

    models: keys of MODELS. bits: bit depth of the planes' code values. Frames are buffered in
    batches of `batch_size` (one batch of two float32 frames per model is the extra memory).
    """

    def __init__(self, models=("vmaf", "vmaf_neg"), *, bits: int = 8, device: str = "auto",
                 batch_size: int = 4):
        import torch

        ADM, VIF, SVMPredict, blur, kernel, pad = _load_vmaf_torch()
        self._torch = torch
        self._blur, self._pad = blur, pad
        self.models = parse_models(models) or tuple(MODELS)
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.scale = float(2 ** (int(bits) - 8))
        self._feat = {m: (ADM(NEG=MODELS[m][1]).to(self.device), VIF(NEG=MODELS[m][1]).to(self.device))
                      for m in self.models}
        # libvmaf's SVM for v0.6.1 and v0.6.1neg is the same; only the features differ
        self._svm = SVMPredict(clip_score=False).to(self.device)
        self._motion_win = kernel(kernel_size=5).to(self.device)
        self._ref: list[np.ndarray] = []
        self._dist: list[np.ndarray] = []
        self._prev_blur = None
        self._sad: list[float] = []            # SAD of blurred reference luma to the previous frame
        self._features = {m: [] for m in self.models}   # rows: adm2, vif0..3
        self._shape = None

    def add(self, ref_y: np.ndarray, dist_y: np.ndarray) -> None:
        if ref_y.shape != dist_y.shape or ref_y.ndim != 2:
            raise ValueError(f"VMAF expects two equal 2-D planes, got {ref_y.shape} and {dist_y.shape}")
        if self._shape is None:
            if min(ref_y.shape) < MIN_SIZE:
                raise ValueError(f"VMAF needs frames of at least {MIN_SIZE}x{MIN_SIZE} pixels, "
                                 f"got {ref_y.shape[1]}x{ref_y.shape[0]}")
            self._shape = ref_y.shape
        self._ref.append(ref_y)
        self._dist.append(dist_y)
        if len(self._ref) >= self.batch_size:
            self._run()

    def _tensor(self, planes):
        t = self._torch.from_numpy(np.stack(planes).astype(np.float32)).to(self.device)
        t = t.unsqueeze(1)                      # (N, 1, H, W)
        return t / self.scale if self.scale != 1 else t

    def _run(self):
        if not self._ref:
            return
        torch = self._torch
        with torch.inference_mode(), _fast_blur(self.device):
            ref, dist = self._tensor(self._ref), self._tensor(self._dist)
            for m, (adm, vif) in self._feat.items():
                a = adm.adm_score(ref, dist)                    # (N, 1)
                v = vif.vif_features(ref, dist)                 # (N, 4)
                self._features[m].append(torch.cat([a, v], -1).double().cpu().numpy())
            # motion: 5-tap Gaussian blur of the reference luma with libvmaf's mirror padding
            padded = self._pad(ref, [2, 2, 2, 2])
            blurred = (_sep_blur_cpu(padded, self._motion_win) if self.device == "cpu"
                       else self._blur(padded, weight=self._motion_win))
            for i in range(blurred.shape[0]):
                cur = blurred[i]
                self._sad.append(0.0 if self._prev_blur is None
                                 else float((cur - self._prev_blur).abs().mean(dtype=torch.float64)))
                self._prev_blur = cur
        self._ref.clear()
        self._dist.clear()

    def result(self) -> dict:
        """{"frames": {model: per-frame scores}, "features": {...}, "pooled": {model: {mean, harmonic_mean}}}."""
        self._run()
        torch = self._torch
        n = len(self._sad)
        if n == 0:
            return {"frames": {}, "features": {}, "pooled": {}}
        sad = np.asarray(self._sad)
        motion2 = np.minimum(sad, np.append(sad[1:], np.inf))
        motion2[-1] = sad[-1]
        motion2[0] = 0.0
        frames, features, pooled = {}, {"motion2": motion2}, {}
        for m in self.models:
            f = np.concatenate(self._features[m])       # (n, 5): adm2, vif0..3
            x = np.concatenate([f[:, :1], motion2[:, None], f[:, 1:]], 1)   # the SVM's feature order
            with torch.inference_mode():
                s = self._svm(torch.from_numpy(x.astype(np.float32)).to(self.device))
            raw = s.reshape(-1).double().cpu().numpy()
            scores = np.clip(raw, 0.0, 100.0)
            frames[m] = scores
            sfx = "" if m == "vmaf" else "_egl_1"
            features[f"adm2{sfx}"] = f[:, 0]
            for k in range(4):
                features[f"vif_scale{k}{sfx}"] = f[:, 1 + k]
            features[f"{m}_unclipped"] = raw
            pooled[m] = {"mean": float(scores.mean()),
                         "harmonic_mean": float(n / np.sum(1.0 / (scores + 1.0)) - 1.0)}
        return {"frames": frames, "features": features, "pooled": pooled}


def vmaf(ref_y, dist_y, *, models=("vmaf", "vmaf_neg"), bits: int = 8, device: str = "cpu") -> dict:
    """VMAF of two clips given as sequences of Y planes (T, H, W); see VMAFMeter.result()."""
    meter = VMAFMeter(models, bits=bits, device=device)
    for r, d in zip(ref_y, dist_y):
        meter.add(np.asarray(r), np.asarray(d))
    return meter.result()
