"""Training loop: on-the-fly degradations (degradations.py), AdamW, EMA, the objective of
objective.py, resumable from `<name>.train.pt` after any interruption.

Batches are synthesised in `loader_workers` processes when set (a GPU would otherwise wait on
numpy), else in the training process.
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
from .checkpoint import build_net, inference_of
from .data import load_sources
from .objective import RestorationLoss
from .pairs import make_batch
from .precond import EDMPrecond
from .trainconfig import TrainConfig
from .validate import quick_validation


def model_arch(cfg: TrainConfig) -> dict:
    """The `arch` entry of a checkpoint for this config (cond_channels follow from the task)."""
    if cfg.model:
        return dict(cfg.model)
    return {"type": "unet", "channels": list(cfg.channels), "blocks": cfg.blocks, "attention": cfg.attention}


def compact(batch: dict) -> dict:
    """What crosses from a loader process: for denoising and SR the task's conditioning is the
    degraded estimate itself and the anchor slots hold the clean frames, so cond (and, for
    denoising, the start) need not travel; half precision is exact to a twentieth of a code value.
    A fifth of the bytes of the full batch, which would otherwise dominate shared memory."""
    out = {"x0": batch["x0"].half(), "estimate": batch["estimate"].half(),
           "loss_mask": batch["loss_mask"], "sigma_s": batch["sigma_s"]}
    if not torch.equal(batch["start"], batch["estimate"]):
        out["start"] = batch["start"].half()
    return out


def expand(c: dict, device: torch.device) -> dict:
    """compact() undone on the training device."""
    c = {k: v.to(device, non_blocking=True) for k, v in c.items()}
    x0, est = c["x0"].float(), c["estimate"].float()
    anchor = (1 - c["loss_mask"]).view(*c["loss_mask"].shape, 1, 1, 1)
    mask = anchor.expand(-1, -1, 1, *x0.shape[-2:])
    cond = torch.cat([est, x0 * anchor, mask], dim=2)
    start = c["start"].float() if "start" in c else est
    return {"x0": x0, "estimate": est, "start": start, "cond": cond, "loss_mask": c["loss_mask"],
            "sigma_s": c["sigma_s"]}


class _Batches(torch.utils.data.IterableDataset):
    """Endless compact training batches; each worker draws from its own seeded generator."""

    def __init__(self, seqs, cfg, seed):
        self.seqs, self.cfg, self.seed = seqs, cfg, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng(self.seed + [0 if info is None else info.id + 1])
        while True:
            yield compact(make_batch(self.cfg.task, self.seqs, self.cfg, rng))


def _worker_init(_):
    # one thread per worker: many processes share the cores, and OpenMP/OpenCV pools forked from a
    # parent that already used them can deadlock
    import cv2

    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def _batches(cfg: TrainConfig, seqs, rng_seed: list, bank, device: torch.device, log=print):
    """Endless batches on `device`."""
    if bank is not None:
        rng = np.random.default_rng(rng_seed)
        while True:
            yield bank_batch(bank, cfg, rng)
    if cfg.device_batches and cfg.task in ("denoise", "sr"):
        from .device_clips import DeviceClips

        clips = DeviceClips(seqs, device)
        log(f"corpus on {device}: {clips.nbytes() / 1e9:.2f} GB; batches made there")
        rng = np.random.default_rng(rng_seed)
        while True:
            yield make_batch(cfg.task, clips, cfg, rng)
    if cfg.loader_workers > 0 and cfg.task in ("denoise", "sr"):
        loader = torch.utils.data.DataLoader(_Batches(seqs, cfg, rng_seed), batch_size=None,
                                             num_workers=cfg.loader_workers, worker_init_fn=_worker_init,
                                             prefetch_factor=4, pin_memory=device.type == "cuda")
        try:
            for c in loader:
                yield expand(c, device)
        except RuntimeError as err:  # a worker killed (shared memory too small, say): go on in-process
            log(f"batch loader failed ({str(err).splitlines()[0]}); synthesising batches in-process")
    rng = np.random.default_rng(rng_seed)
    while True:
        yield {k: v.to(device) for k, v in make_batch(cfg.task, seqs, cfg, rng).items()}


def _meta(cfg: TrainConfig, net, step: int, data_summary: dict, val: dict | None,
          wall: float, history: list) -> dict:
    return {
        "name": cfg.name,
        "task": cfg.task,
        "scale": cfg.scale,
        "arch": {k: v for k, v in net.config().items() if k != "cond_channels"},
        "inference": inference_of(cfg),
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
    keys = ("frames", "patch", "batch", "lr", "max_minutes", "degradations", "max_noise", "noise_power",
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

    net = build_net(model_arch(cfg), cfg.task)
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
        # weights_only: the state is tensors and numbers, and a pickle could run code
        state = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, wall_before = state["step"], state["wall"]
        sched0 = tuple(state.get("sched0", sched0))
        if stem.with_suffix(".yaml").exists():
            history = list(yaml.safe_load(stem.with_suffix(".yaml").read_text()).get("history") or [])
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
    objective = RestorationLoss(cfg.loss, cfg.p_first_step, cfg.lpips_weight, lpips_fn)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp)
    batches = _batches(cfg, seqs, [cfg.seed, step], bank, device, log)

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
            batch = next(batches)
            lr = cfg.lr * min(1.0, (step - sched0[0] + 1) / cfg.warmup)
            # Cosine decay over whichever budget (steps or minutes) runs out first.
            progress = max((step - sched0[0]) / max(1, cfg.iters),
                           (wall_before + time.time() - t0 - sched0[1]) / 60 / cfg.max_minutes)
            lr *= 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
            for g in opt.param_groups:
                g["lr"] = lr
            loss, _, _ = objective(model, batch, autocast=autocast)
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
                           f"{last_val['lpips']:.4f}"]
                log(f"step {step}: val PSNR {last_val['psnr']:.2f} dB "
                    f"(baseline {last_val['baseline_psnr']:.2f} dB), LPIPS {last_val['lpips']:.4f}")
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


if __name__ == "__main__":  # python -m restore.diffusion.train CONFIG [--resume] [--set KEY=VALUE ...]
    from ..config import parse_settings
    from ..errors import ConfigError
    from .trainconfig import load_train_config

    def _main(argv: list[str]) -> None:
        # The same --set as `restore train`; a bare KEY=VALUE is still read as one. Anything else
        # is an error naming it, not a typo silently ignored.
        usage = "usage: python -m restore.diffusion.train CONFIG [--resume] [--set KEY=VALUE ...]"
        if not argv or argv[0].startswith("-"):
            raise SystemExit(usage)
        items, resume, rest = [], False, iter(argv[1:])
        for arg in rest:
            if arg == "--resume":
                resume = True
            elif arg == "--set":
                items.append(next(rest, ""))
            elif arg.startswith("--set="):
                items.append(arg[len("--set="):])
            elif "=" in arg and not arg.startswith("-"):
                items.append(arg)
            else:
                raise SystemExit(f"unknown argument {arg!r}\n{usage}")
        try:
            cfg = load_train_config(argv[0], parse_settings(items, argv[0]))
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None
        train(cfg, resume=resume)

    _main(sys.argv[1:])
