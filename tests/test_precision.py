"""The networks' number format: bf16 on CPUs with native bf16 arithmetic (about twice the
convolution throughput), fp32 elsewhere; results agree with fp32 to well under a grey level."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.device import cpu_has_bf16, resolve_precision
from restore.diffusion import checkpoint, zoo
from restore.diffusion.restorers import DiffusionDenoiser, DiffusionUpscaler
from restore.errors import ConfigError
from restore.pipeline import _work_settings
from restore.config import load_config


def test_resolve_precision():
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_bf16() else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    # CUDA keeps fp32 weights: the restorers autocast to fp16 there
    assert resolve_precision("auto", "cuda") == "fp32" and resolve_precision("bf16", "cuda:1") == "fp32"
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp8", "cpu")


def test_bad_precision_in_a_config_is_named():
    with pytest.raises(ConfigError, match="model.precision"):
        load_config("default", {"model.precision": "half"})


@pytest.mark.parametrize("name, cls", [("sr-x2", DiffusionUpscaler), ("denoise", DiffusionDenoiser)])
def test_bf16_runs_the_net_in_bf16_and_agrees_with_fp32(name, cls):
    import cv2

    # smooth texture, as video is: on white noise DIS flow (the aligned sr-x2 warps its
    # neighbours by it) turns on the estimate's last bit, which bf16 rounds
    noise = np.random.default_rng(1).random((3, 40, 56, 3), dtype=np.float32)
    frames = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in noise])
    frames = np.clip((frames - frames.mean()) * 3 + 0.5, 0, 1).astype(np.float32)
    out = {}
    for precision in ("fp32", "bf16"):
        model, meta = checkpoint.load(zoo.model_path(name), precision=precision)
        assert {p.dtype for p in model.net.parameters()} == {torch.bfloat16 if precision == "bf16" else torch.float32}
        kw = {"sigma255": 20.0} if cls is DiffusionDenoiser else {}
        out[precision] = cls(model, meta, **kw)(frames)
        assert out[precision].dtype == np.float32
    diff = np.abs(out["bf16"] - out["fp32"])
    # bf16 keeps 8 bits of mantissa through every layer: on this contrast-stretched texture the
    # shipped denoisers' outputs have differed by 0.45-0.6 grey levels RMS, a few pixels at 3.7-4.4
    # (on davis-dog a few hundredths of a dB; docs/diffusion.md); a broken cast or layout is off by far more
    assert np.sqrt((diff ** 2).mean()) < 1 / 255 and diff.max() < 8 / 255
    # and the model did something: bf16 is not returning its input
    assert np.abs(out["bf16"] - (frames if cls is DiffusionDenoiser else 0)).mean() > 1e-3


def test_resume_key_holds_the_resolved_precision():
    cfg = load_config("default", {"denoise.enabled": True})
    a = _work_settings(cfg, "cpu", {}, np.uint8, "fp32")
    b = _work_settings(cfg, "cpu", {}, np.uint8, "bf16")
    assert a != b and a["precision"] == "fp32"
