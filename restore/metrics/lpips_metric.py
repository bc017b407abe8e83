"""LPIPS (Zhang et al. 2018) with the official `lpips` package: AlexNet, version 0.1.

The AlexNet backbone ships inside the project (alexnet_backbone.pth, see LPIPS_WEIGHTS.md), so
nothing is downloaded at run time: we build lpips.LPIPS with pnet_rand=True (random backbone, no
torchvision download) and then load the shipped backbone; the five linear layers come from the
lpips package itself. Inputs are RGB; we scale them to [-1, 1] ourselves (the range LPIPS was
trained on) instead of relying on callers to remember `normalize=True`.
"""
from __future__ import annotations

import warnings
from importlib import resources

import numpy as np

from ..device import resolve_device
from ..errors import ConfigError

BACKBONE_FILE = "alexnet_backbone.pth"
# torchvision alexnet.features index -> lpips slice holding that module
_FEATURE_SLICE = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}


def _load_backbone_state():
    import torch

    ref = resources.files("restore.metrics").joinpath(BACKBONE_FILE)
    try:
        with resources.as_file(ref) as path:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise ConfigError(f"LPIPS backbone weights missing from the installation ({BACKBONE_FILE})") from err
    out = {}
    for key, tensor in state.items():
        idx, kind = key.split(".")
        out[f"net.slice{_FEATURE_SLICE[int(idx)]}.{idx}.{kind}"] = tensor
    return out


def weights_available() -> bool:
    try:
        return resources.files("restore.metrics").joinpath(BACKBONE_FILE).is_file()
    except (ModuleNotFoundError, FileNotFoundError):
        return False


def _build_model():
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's 'pretrained' deprecation noise
        model = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    missing, unexpected = model.load_state_dict(_load_backbone_state(), strict=False)
    if unexpected or any(k.startswith("net.") for k in missing):
        raise RuntimeError(f"backbone weights do not fit lpips' AlexNet: {unexpected or missing}")
    return model.eval()


def load_lpips(device):
    """LPIPS as a differentiable training loss: fn(a, b) over (N, 3, H, W) tensors in [-1, 1]
    -> (N,) distances. Frozen weights, float32 (its backbone under bf16 autocast is not the
    metric we report)."""
    import torch

    model = _build_model().to(device)
    for p in model.parameters():
        p.requires_grad_(False)

    def fn(a, b):
        with torch.autocast(torch.device(device).type, enabled=False):
            return model(a.float(), b.float(), normalize=False).reshape(-1)

    return fn


class LPIPS:
    """Batched LPIPS distance. `lp(a, b)` -> float32 array (N,), lower is more similar.

    a, b: (N, H, W, 3) or (H, W, 3) RGB, uint8 / uint16 (full 0..65535 scale) / float in [0, 1].

    The same computation as lpips.LPIPS.forward (version 0.1, lpips=True, spatial=False; the
    test checks the official example distances), split in two so work is not repeated:
    `features(x)` runs AlexNet once per image (both images of a pair go through as one batch,
    which keeps the convolutions' matrices larger), `distance(fa, fb)` compares features. tLP
    (LPIPS between consecutive frames) then reuses each frame's features instead of running the
    network three times per frame. Activations are kept channels-last, oneDNN's fast layout on CPU.
    """

    def __init__(self, device: str = "auto", batch_size: int = 8):
        import torch

        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        self.model = _build_model().to(self.device)
        self._torch = torch
        self._channels_last = self.device == "cpu"
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _to_tensor(self, x: np.ndarray):
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB, got shape {x.shape}")
        if x.dtype == np.uint8:
            scale = 255.0
        elif x.dtype == np.uint16:
            scale = 65535.0
        else:
            scale = 1.0
        t = self._torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
        t = t.permute(0, 3, 1, 2).float()
        return t * (2.0 / scale) - 1.0

    def features(self, x) -> list:
        """Unit-normalised AlexNet features of RGB images (N, H, W, 3): one tensor per layer."""
        import lpips

        torch = self._torch
        with torch.inference_mode():
            t = self._to_tensor(x)
            if self._channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            outs = self.model.net.forward(self.model.scaling_layer(t))
            return [lpips.normalize_tensor(o) for o in outs]

    def distance(self, fa: list, fb: list) -> np.ndarray:
        """LPIPS of feature lists from `features` (same N, or one of them N=1 to broadcast)."""
        import lpips

        torch = self._torch
        with torch.inference_mode():
            val = 0
            for kk, (a, b) in enumerate(zip(fa, fb)):
                val = val + lpips.spatial_average(self.model.lins[kk]((a - b) ** 2), keepdim=True)
            return val.reshape(-1).float().cpu().numpy().astype(np.float32)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        b = np.asarray(b)
        if a.shape != b.shape:
            raise ValueError(f"LPIPS inputs differ in shape: {a.shape} vs {b.shape}")
        if a.ndim == 3:
            a, b = a[None], b[None]
        if a.dtype != b.dtype:  # one batch needs one scale: 8-bit and 16-bit RGB go to [0, 1] first
            from .psnr import to_unit_rgb

            a, b = to_unit_rgb(a), to_unit_rgb(b)
        out = []
        for i in range(0, len(a), self.batch_size):
            n = len(a[i:i + self.batch_size])
            f = self.features(np.concatenate([a[i:i + self.batch_size], b[i:i + self.batch_size]]))
            out.append(self.distance([x[:n] for x in f], [x[n:] for x in f]))
        return np.concatenate(out).astype(np.float32)
