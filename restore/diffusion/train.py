"""Training loop: on-the-fly degradations, AdamW, EMA, Charbonnier loss on the clean estimate.

Noise levels: each chunk gets a start level sigma_s (the input's own noise for denoising, a
random level for SR / interpolation) and is trained at a point sigma = u * sigma_s of the path
from the noisy degraded start to the clean chunk (see samplers.py), u ~ U(0, 1], with a share of
samples exactly at u = 1 since the first step does most of the work in few-step sampling.
"""
from __future__ import annotations

import copy
import csv
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import yaml

from ..device import resolve_device
from ..errors import ConfigError
from . import checkpoint
from .bank import TripletBank, bank_batch
from .data import load_sources
from .pairs import make_batch
from .precond import EDMPrecond
from .tasks import TASKS
from .trainconfig import TrainConfig
from .unet import VideoUNet
from .validate import quick_validation


def _charbonnier(a, b, eps=1e-3):
    return torch.sqrt((a - b) ** 2 + eps * eps)


# Charbonnier / L1 fit the conditional median: right for dense residuals (noise, blur), but where
# the estimate's errors are sparse and of unpredictable sign (flow failures in interpolation) the
# median correction is zero and the model learns nothing. L2 fits the conditional mean instead.
LOSSES = {"charbonnier": _charbonnier, "l1": lambda a, b: (a - b).abs(), "l2": lambda a, b: (a - b) ** 2}


def _meta(cfg: TrainConfig, net: VideoUNet, step: int, data_summary: dict, val: dict | None,
          wall: float, history: list) -> dict:
    return {
        "name": cfg.name,
        "task": cfg.task,
        "scale": cfg.scale,
        "arch": {k: v for k, v in net.config().items() if k != "cond_channels"},
        "sampling": {"steps": cfg.default_steps, "start_sigma": cfg.default_start_sigma},
        "step": step,
        "train_seconds": round(wall, 1),
        "data": data_summary,
        "validation": val or {},
        "git_commit": checkpoint.git_commit(),
        "config": asdict(cfg),
        "history": history,
    }


def _phase(cfg: TrainConfig, start_step: int, step: int, wall_start: float, wall: float,
           device: torch.device) -> dict:
    """One call of train(): a resumed run may change patch size, noise sampling or budget, and the
    model card should say so."""
    keys = ("frames", "patch", "batch", "lr", "max_minutes", "max_noise", "noise_power",
            "interp_max_stride", "interp_bank", "start_sigma_min", "start_sigma_max", "loss", "lpips_weight",
            "init_weights")
    return {"steps": [start_step, step], "minutes": round((wall - wall_start) / 60, 1),
            **{k: getattr(cfg, k) for k in keys}, "device": _device_name(device)}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler, `kill`) stops like Ctrl-C: a checkpoint is written first."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


def train(cfg: TrainConfig, resume: bool = False, log=print) -> Path:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(resolve_device(cfg.device))
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / cfg.name

    t_load = time.time()
    seqs = load_sources(cfg.sources, cfg.max_frames_per_source)
    data_summary = {
        "sequences": len(seqs),
        "frames": int(sum(len(s.frames) for s in seqs)),
        "stills": int(sum(s.still for s in seqs)),
        "sources": [s["path"] for s in cfg.sources],
    }
    log(f"loaded {data_summary['sequences']} sequences, {data_summary['frames']} frames "
        f"in {time.time() - t_load:.0f}s")
    bank = None
    if cfg.task == "interp" and cfg.interp_bank:
        t_bank = time.time()
        bank = TripletBank(seqs, cfg.bank_strides, cfg.bank_scales, min_size=cfg.patch,
                           workers=cfg.bank_workers, device=device, log=log)
        log(f"bank: {len(bank.entries)} entries, {bank.nbytes() / 1e9:.1f} GB in {time.time() - t_bank:.0f}s")

    net = VideoUNet(cond_channels=TASKS[cfg.task].cond_channels, channels=tuple(cfg.channels),
                    blocks=cfg.blocks, attention=cfg.attention)
    model = EDMPrecond(net).to(device).to(memory_format=torch.channels_last)
    amp = cfg.amp and device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, wall_before = 0, 0.0
    sched0 = (0, 0.0)  # (step, wall) the lr schedule counts from: a run started from weights restarts it
    history: list = []
    state_path = stem.with_suffix(".train.pt")
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, wall_before = state["step"], state["wall"]
        sched0 = tuple(state.get("sched0", sched0))
        if stem.with_suffix(".yaml").exists():
            history = list(yaml.safe_load(stem.with_suffix(".yaml").read_text()).get("history") or [])
        rng = np.random.default_rng([cfg.seed, step])
        log(f"resumed from step {step}")
    elif cfg.init_weights:
        from safetensors.torch import load_file

        init = Path(cfg.init_weights).with_suffix("")
        if not init.with_suffix(".safetensors").is_file():
            raise ConfigError(f"key 'init_weights': {init.with_suffix('.safetensors')} not found")
        weights = load_file(str(init.with_suffix(".safetensors")), device=str(device))
        try:
            model.load_state_dict({k: v.float() for k, v in weights.items()})
        except RuntimeError:
            raise ConfigError(f"key 'init_weights': {init} does not fit channels {cfg.channels}, "
                              f"blocks {cfg.blocks}, task {cfg.task}") from None
        ema.load_state_dict(model.state_dict())
        if init.with_suffix(".yaml").exists():
            prev = yaml.safe_load(init.with_suffix(".yaml").read_text())
            history = list(prev.get("history") or [])
            step, wall_before = int(prev.get("step", 0)), float(prev.get("train_seconds", 0.0))
        sched0 = (step, wall_before)
        rng = np.random.default_rng([cfg.seed, step])
        log(f"initialised from {init} (step {step})")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f} M parameters on {device}")

    log_path = out / f"{cfg.name}.log.csv"
    new_log = not log_path.exists() or not resume
    log_file = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "wall_s", "loss", "lr", "val_psnr", "val_baseline_psnr", "val_lpips"])

    lpips_fn = None
    if cfg.lpips_weight > 0:
        from ..metrics.lpips_metric import load_lpips  # shipped AlexNet backbone
        lpips_fn = load_lpips(device)

    _stop_on_sigterm()
    t0 = time.time()
    last_val: dict | None = None
    running = []
    start_step = step

    def save_all():
        wall = wall_before + time.time() - t0
        phases = history + [_phase(cfg, start_step, step, wall_before, wall, device)]
        meta = _meta(cfg, net, step, data_summary, last_val, wall, phases)
        checkpoint.save(stem, ema, meta)
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "wall": wall, "sched0": sched0}, state_path.with_name(state_path.name + ".tmp"))
        os.replace(state_path.with_name(state_path.name + ".tmp"), state_path)

    try:
        while (step - sched0[0] < cfg.iters
               and (wall_before + time.time() - t0 - sched0[1]) / 60 < cfg.max_minutes):
            batch = bank_batch(bank, cfg, rng) if bank is not None else make_batch(cfg.task, seqs, cfg, rng)
            x0 = batch["x0"].to(device)
            cond = batch["cond"].to(device)
            start = batch["start"].to(device)
            sigma_s = batch["sigma_s"].to(device)
            estimate = batch["estimate"].to(device)
            b = x0.shape[0]
            u = torch.rand(b, device=device).clamp_min(0.02)
            u = torch.where(torch.rand(b, device=device) < cfg.p_first_step, torch.ones_like(u), u)
            sigma = u * sigma_s
            x = x0 + u.view(-1, 1, 1, 1, 1) * (start - x0)
            lr = cfg.lr * min(1.0, (step - sched0[0] + 1) / cfg.warmup)
            # Cosine decay over whichever budget (steps or minutes) runs out first.
            progress = max((step - sched0[0]) / max(1, cfg.iters),
                           (wall_before + time.time() - t0 - sched0[1]) / 60 / cfg.max_minutes)
            lr *= 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
            for g in opt.param_groups:
                g["lr"] = lr
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                pred = model(x, sigma, cond, sigma_s, estimate).float()
            per = LOSSES[cfg.loss](pred, x0)
            mask = batch["loss_mask"].to(device).view(b, -1, 1, 1, 1)
            loss = (per * mask).sum() / (mask.sum() * per[0, 0].numel())
            if lpips_fn is not None:
                sel = mask.view(-1) > 0
                p2 = pred.flatten(0, 1)[sel]
                t2 = x0.flatten(0, 1)[sel]
                loss = loss + cfg.lpips_weight * lpips_fn(p2, t2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            decay = min(cfg.ema, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - decay)
            running.append(loss.item())
            val_row = ["", "", ""]
            if cfg.val_source and step % cfg.val_every == 0:
                last_val = quick_validation(ema, cfg, device)
                val_row = [f"{last_val['psnr']:.3f}", f"{last_val['baseline_psnr']:.3f}",
                           f"{last_val.get('lpips', float('nan')):.4f}"]
                log(f"step {step}: val PSNR {last_val['psnr']:.2f} dB "
                    f"(baseline {last_val['baseline_psnr']:.2f} dB)")
            if step % cfg.log_every == 0 or val_row[0]:
                wall = wall_before + time.time() - t0
                writer.writerow([step, f"{wall:.1f}", f"{np.mean(running):.5f}", f"{lr:.2e}", *val_row])
                log_file.flush()
                if step % cfg.log_every == 0:
                    log(f"step {step} loss {np.mean(running):.4f} lr {lr:.1e} wall {wall / 60:.1f} min")
                running = []
            if step % cfg.ckpt_every == 0:
                save_all()
    except KeyboardInterrupt:
        log("interrupted: saving checkpoint")
    finally:
        if cfg.val_source:
            last_val = quick_validation(ema, cfg, device)
        save_all()
        log_file.close()
    log(f"saved {stem}.safetensors at step {step}")
    return stem.with_suffix(".safetensors")


if __name__ == "__main__":  # python -m restore.diffusion.train CONFIG [--resume] [key=value ...]
    from .trainconfig import load_train_config

    extra = dict(a.split("=", 1) for a in sys.argv[2:] if "=" in a)
    train(load_train_config(sys.argv[1], {k: yaml.safe_load(v) for k, v in extra.items()}),
          resume="--resume" in sys.argv)
