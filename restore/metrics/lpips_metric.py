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
    tests check it against the official forward to 1e-6 and the official example distances),
    split in two so work is not repeated: `features(x)` runs AlexNet once per image (both images
    of a pair go through as one batch), `distance(fa, fb)` compares features, and tLP (LPIPS
    between consecutive frames) reuses each frame's features instead of running the network
    again. Rearranged for speed, not changed (values move by float32 rounding, about 1e-8):
    - the input scaling (code values -> [-1, 1], then lpips' ScalingLayer (x - shift) / scale)
      is one multiply-add per channel, and the division by `scale` is folded into the first
      convolution's weights (exact: the convolution is linear, and its zero padding is applied
      to x - shift, where lpips pads the scaled input with zeros too);
    - the feature normalisation is one fused norm and an in-place division;
    - each linear layer is a 1x1 convolution to one channel followed by a spatial mean, i.e.
      sum_c w_c mean_hw(d_c^2): computed as a per-channel sum of squares and a dot product,
      so no per-pixel map is formed.
    Together about a quarter less CPU per frame than lpips' own forward (the convolutions are
    what is left: about 70%). Activations are channels-last, oneDNN's fast layout on CPU; the
    same code runs batched on CUDA (frames go over as 8-bit, converted on the device).
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
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        convs = [m for m in self.model.net.modules() if isinstance(m, torch.nn.Conv2d)]
        if len(convs) != 5:
            raise RuntimeError(f"expected lpips' AlexNet with 5 convolutions, found {len(convs)}")
        sl = self.model.scaling_layer
        with torch.no_grad():
            self._shift = sl.shift.reshape(1, 3, 1, 1).float().clone()
            w0 = (convs[0].weight / sl.scale.reshape(1, 3, 1, 1)).contiguous(memory_format=fmt)
            self._convs = [(w0, convs[0].bias.detach().clone(), convs[0].stride, convs[0].padding)]
            self._convs += [(c.weight.detach().contiguous(memory_format=fmt), c.bias.detach().clone(),
                             c.stride, c.padding) for c in convs[1:]]
            self._lins = [lin.model[-1].weight.detach().reshape(-1).clone() for lin in self.model.lins]
        self._pool_after = (0, 1)   # AlexNet: 3x3 / 2 max pooling after the first two convolutions

    def _to_tensor(self, x: np.ndarray):
        """RGB (N, H, W, 3) -> (N, 3, H, W) float32, already (x in [-1, 1] - shift): ScalingLayer
        without its division (folded into the first convolution)."""
        torch = self._torch
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB, got shape {x.shape}")
        if x.dtype == np.uint8:
            scale = 255.0
        elif x.dtype == np.uint16:
            scale = 65535.0
            x = x.astype(np.int32)   # torch has no uint16 arithmetic on every version
        else:
            scale = 1.0
        # moved as stored (8-bit frames are 4x less to copy to a GPU), converted on the device;
        # the NHWC -> NCHW permute is a channels-last view, so no transpose copy is made
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device).permute(0, 3, 1, 2)
        t = t.float() if t.dtype != torch.float32 else t.clone()
        if not self._channels_last:
            t = t.contiguous()
        # x * 2 / scale - 1 - shift, as one multiply and one add in place
        t.mul_(2.0 / scale).add_(-1.0 - self._shift.to(t.device))
        return t

    def features(self, x) -> list:
        """Unit-normalised AlexNet features of RGB images (N, H, W, 3): one tensor per layer."""
        torch = self._torch
        F = torch.nn.functional
        with torch.inference_mode():
            h = self._to_tensor(x)
            outs = []
            for i, (w, b, stride, padding) in enumerate(self._convs):
                h = F.relu_(F.conv2d(h, w, b, stride=stride, padding=padding))
                outs.append(h)
                if i in self._pool_after:
                    h = F.max_pool2d(h, 3, 2)
            # lpips.normalize_tensor: x / (||x||_channels + 1e-10); in place is safe, the
            # network has used every activation by now
            for o in outs:
                norm = torch.linalg.vector_norm(o, dim=1, keepdim=True)
                o.div_(norm.add_(1e-10))
            return outs

    def distance(self, fa: list, fb: list) -> np.ndarray:
        """LPIPS of feature lists from `features` (same N, or one of them N=1 to broadcast)."""
        torch = self._torch
        with torch.inference_mode():
            val = 0
            for w, a, b in zip(self._lins, fa, fb):
                d = a - b
                # mean over pixels of sum_c w_c d_c^2 == sum_c w_c mean_hw(d_c^2)
                ss = torch.linalg.vector_norm(d, dim=(2, 3)).square_()
                val = val + (ss @ w) / (d.shape[2] * d.shape[3])
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
