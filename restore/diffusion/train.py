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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from ..device import cpu_has_bf16, resolve_device
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
from .windownet import PROPAGATION_MODULES


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
            "interp_max_stride", "interp_bank", "start_sigma_min", "start_sigma_max", "p_first_step", "loss",
            "lpips_weight", "init_weights")
    return {"steps": [start_step, step], "minutes": round((wall - wall_start) / 60, 1),
            **{k: getattr(cfg, k) for k in keys}, "device": _device_name(device, _amp(cfg, device)),
            **({"lr_scale_new": cfg.lr_scale_new} if cfg.lr_scale_new != 1 else {})}


def _device_name(device: torch.device, amp: bool = False) -> str:
    bf16 = ", bf16 autocast" if amp else ""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}{bf16})"
    return f"{device.type} ({torch.get_num_threads()} threads{bf16})"


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler, `kill`) stops like Ctrl-C: a checkpoint is written first."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


@dataclass
class _Run:
    """One call of train(): its data, networks and optimiser, and where the schedule stands."""
    cfg: TrainConfig
    device: torch.device
    stem: Path
    seqs: list
    data_summary: dict
    bank: TripletBank | None
    net: torch.nn.Module
    model: EDMPrecond
    ema: EDMPrecond
    opt: torch.optim.Optimizer
    step: int = 0
    wall_before: float = 0.0   # seconds trained before this call
    sched0: tuple = (0, 0.0)   # (step, wall) the lr schedule counts from: a run started from weights restarts it
    history: list = field(default_factory=list)   # the earlier calls' phases
    start_step: int = 0        # the step this call started at
    t0: float = 0.0            # time.time() when this call's loop started
    last_val: dict | None = None

    @property
    def state_path(self) -> Path:
        return self.stem.with_suffix(".train.pt")

    def wall(self) -> float:
        """Seconds trained, earlier calls included."""
        return self.wall_before + time.time() - self.t0


def train(cfg: TrainConfig, resume: bool = False, log=print) -> Path:
    """Train `cfg` (continue `<name>.train.pt` with `resume`); returns the EMA weights' file."""
    run = _setup(cfg, log)
    _resume_or_init(run, resume, log)
    n_params = sum(p.numel() for p in run.model.parameters())
    log(f"model: {n_params / 1e6:.2f} M parameters on {run.device}")
    csv_log = _CsvLog(Path(cfg.out_dir) / f"{cfg.name}.log.csv", resume)
    objective, autocast = _objective(cfg, run.device)
    batches = _batches(cfg, run.seqs, [cfg.seed, run.step], run.bank, run.device, log)

    _stop_on_sigterm()
    run.t0, run.start_step = time.time(), run.step
    try:
        _loop(run, batches, objective, autocast, csv_log, log)
    except KeyboardInterrupt:
        log("interrupted: saving checkpoint")
    finally:
        if cfg.val_source:
            run.last_val = quick_validation(run.ema, cfg, run.device)
        _save(run)
        csv_log.close()
    log(f"saved {run.stem}.safetensors at step {run.step}")
    return run.stem.with_suffix(".safetensors")


# ---- setup: data, model, optimiser ----------------------------------------------------------------

def _setup(cfg: TrainConfig, log) -> _Run:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(resolve_device(cfg.device))
    # seeded before anything draws from torch's generator: the network's initial weights
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seqs, data_summary, bank = _load_data(cfg, device, log)
    net, model, ema, opt = _build_model(cfg, device)
    return _Run(cfg, device, out / cfg.name, seqs, data_summary, bank, net, model, ema, opt)


def _load_data(cfg: TrainConfig, device: torch.device, log):
    """The training sequences, their summary for the model card, and the interp bank (or None)."""
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
    return seqs, data_summary, bank


def _grown(name: str) -> bool:
    """Whether a parameter of the preconditioned model ('net.<module>...') is one that a grown
    window network adds to trained weights."""
    return name.split(".")[1] in PROPAGATION_MODULES


def _build_model(cfg: TrainConfig, device: torch.device):
    """The network, its preconditioned model, the EMA copy and the optimiser."""
    net = build_net(model_arch(cfg), cfg.task)
    model = EDMPrecond(net).to(device).to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    # a grown propagation starts at zero effect and learns only through its zero output conv:
    # it gets its own lr (lr_scale_new x lr) so it can catch up with the trained layers
    named = list(model.named_parameters())
    groups = [{"params": [p for k, p in named if not _grown(k)], "lr_scale": 1.0}]
    if any(_grown(k) for k, _ in named):
        groups.append({"params": [p for k, p in named if _grown(k)], "lr_scale": cfg.lr_scale_new})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return net, model, ema, opt


def _objective(cfg: TrainConfig, device: torch.device):
    """The loss (with the shipped LPIPS network when it has an LPIPS term) and the autocast context."""
    lpips_fn = None
    if cfg.lpips_weight > 0:
        from ..metrics.lpips_metric import load_lpips  # shipped AlexNet backbone
        lpips_fn = load_lpips(device)
    objective = RestorationLoss(cfg.loss, cfg.p_first_step, cfg.lpips_weight, lpips_fn)
    return objective, torch.autocast(device.type, dtype=torch.bfloat16, enabled=_amp(cfg, device))


def _amp(cfg: TrainConfig, device: torch.device) -> bool:
    """bf16 autocast on CUDA, and on CPUs with native bf16 arithmetic, where it halves the step
    (elsewhere the CPU emulates bf16 and is slower)."""
    return cfg.amp and (device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()))


# ---- resume / init ------------------------------------------------------------------------------

def _resume_or_init(run: _Run, resume: bool, log) -> None:
    """Continue from `<name>.train.pt` (resume), or start from `init_weights`, or from scratch."""
    if resume and run.state_path.exists():
        _resume(run, log)
    elif run.cfg.init_weights:
        _init_from_weights(run, log)


def _resume(run: _Run, log) -> None:
    # weights_only: the state is tensors and numbers, and a pickle could run code
    state = torch.load(run.state_path, map_location=run.device, weights_only=True)
    run.model.load_state_dict(state["model"])
    run.ema.load_state_dict(state["ema"])
    run.opt.load_state_dict(state["opt"])
    run.step, run.wall_before = state["step"], state["wall"]
    run.sched0 = tuple(state.get("sched0", run.sched0))
    if run.stem.with_suffix(".yaml").exists():
        run.history = list(yaml.safe_load(run.stem.with_suffix(".yaml").read_text()).get("history") or [])
    log(f"resumed from step {run.step}")


def _init_from_weights(run: _Run, log) -> None:
    """A new run from shipped weights: the step count and history go on, the lr schedule restarts."""
    from safetensors.torch import load_file

    cfg = run.cfg
    init = Path(cfg.init_weights).with_suffix("")
    if not init.with_suffix(".safetensors").is_file():
        raise ConfigError(f"key 'init_weights': {init.with_suffix('.safetensors')} not found")
    weights = load_file(str(init.with_suffix(".safetensors")), device=str(run.device))
    try:
        missing, unexpected = run.model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    except RuntimeError:  # a layer of another shape
        missing, unexpected = [], [None]
    # the weights may lack only what a grown model adds (a window network's propagation), which
    # starts as it was built: at zero effect
    if unexpected or not all(_grown(k) for k in missing):
        raise ConfigError(f"key 'init_weights': {init} does not fit channels {cfg.channels}, "
                          f"blocks {cfg.blocks}, task {cfg.task}")
    if missing:
        log(f"new modules start from their initialisation: {sorted({k.split('.')[1] for k in missing})}")
    run.ema.load_state_dict(run.model.state_dict())
    if init.with_suffix(".yaml").exists():
        prev = yaml.safe_load(init.with_suffix(".yaml").read_text())
        run.history = list(prev.get("history") or [])
        run.step, run.wall_before = int(prev.get("step", 0)), float(prev.get("train_seconds", 0.0))
    run.sched0 = (run.step, run.wall_before)
    log(f"initialised from {init} (step {run.step})")


# ---- the loop and one step ----------------------------------------------------------------------

def _loop(run: _Run, batches, objective, autocast, csv_log: "_CsvLog", log) -> None:
    """Steps until the step or minute budget (counted from sched0) runs out; logs, validates and
    checkpoints on their schedules."""
    cfg = run.cfg
    running = []
    while (run.step - run.sched0[0] < cfg.iters
           and (run.wall() - run.sched0[1]) / 60 < cfg.max_minutes):
        batch = next(batches)
        lr = _lr(cfg, run.step - run.sched0[0], (run.wall() - run.sched0[1]) / 60)
        running.append(_step(run, objective, autocast, batch, lr))
        val_row = ["", "", ""]
        if cfg.val_source and run.step % cfg.val_every == 0:
            run.last_val = quick_validation(run.ema, cfg, run.device)
            val_row = [f"{run.last_val['psnr']:.3f}", f"{run.last_val['baseline_psnr']:.3f}",
                       f"{run.last_val['lpips']:.4f}"]
            log(f"step {run.step}: val PSNR {run.last_val['psnr']:.2f} dB "
                f"(baseline {run.last_val['baseline_psnr']:.2f} dB), LPIPS {run.last_val['lpips']:.4f}")
        if run.step % cfg.log_every == 0 or val_row[0]:
            wall = run.wall()
            loss, est_loss = np.mean(running, axis=0)
            csv_log.row(run.step, wall, loss, lr, val_row, est_loss)
            if run.step % cfg.log_every == 0:
                log(f"step {run.step} loss {loss:.4f} (estimate {est_loss:.4f}) lr {lr:.1e} "
                    f"wall {wall / 60:.1f} min")
            running = []
        if run.step % cfg.ckpt_every == 0:
            _save(run)


def _lr(cfg: TrainConfig, steps: int, minutes: float) -> float:
    """Linear warm-up, then cosine decay over whichever budget (steps or minutes) runs out first;
    `steps` and `minutes` count from the schedule's start."""
    lr = cfg.lr * min(1.0, (steps + 1) / cfg.warmup)
    progress = max(steps / max(1, cfg.iters), minutes / cfg.max_minutes)
    return lr * (0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _step(run: _Run, objective, autocast, batch: dict, lr: float) -> tuple[float, float]:
    """One optimisation step at `lr` and the EMA update; returns the loss and the estimate's."""
    for g in run.opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)  # (a state saved before the groups had none)
    loss, _, _ = objective(run.model, batch, autocast=autocast)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
    run.opt.step()
    run.step += 1
    decay = min(run.cfg.ema, (1 + run.step) / (10 + run.step))
    with torch.no_grad():
        for pe, pm in zip(run.ema.parameters(), run.model.parameters()):
            pe.lerp_(pm, 1 - decay)
    return loss.item(), objective.estimate_loss(batch)


# ---- save ---------------------------------------------------------------------------------------

def _save(run: _Run) -> None:
    """The EMA weights and their model card (checkpoint.save), and the full state for resuming,
    replaced atomically so an interruption leaves the previous one whole."""
    wall = run.wall()
    # a call that trained nothing (a resume whose budget was already spent) is not a phase
    current = [_phase(run.cfg, run.start_step, run.step, run.wall_before, wall, run.device)]
    phases = run.history + (current if run.step > run.start_step or not run.history else [])
    meta = _meta(run.cfg, run.net, run.step, run.data_summary, run.last_val, wall, phases)
    checkpoint.save(run.stem, run.ema, meta)
    tmp = run.state_path.with_name(run.state_path.name + ".tmp")
    torch.save({"model": run.model.state_dict(), "ema": run.ema.state_dict(), "opt": run.opt.state_dict(),
                "step": run.step, "wall": wall, "sched0": run.sched0}, tmp)
    os.replace(tmp, run.state_path)


class _CsvLog:
    """`<name>.log.csv`: appended to when resuming, else started with its header. `est_loss` is
    the loss of the degraded estimate on the same batches: loss / est_loss is the training gain."""

    COLUMNS = ["step", "wall_s", "loss", "lr", "val_psnr", "val_baseline_psnr", "val_lpips", "est_loss"]

    def __init__(self, path: Path, resume: bool):
        new = not path.exists() or not resume
        # a log begun before a column existed keeps its header, and its rows keep that shape
        self.columns = self.COLUMNS if new else self._header(path)
        self.file = open(path, "w" if new else "a", newline="")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(self.COLUMNS)

    @classmethod
    def _header(cls, path: Path) -> list[str]:
        with open(path, newline="") as f:
            return next(csv.reader(f), None) or cls.COLUMNS

    def row(self, step: int, wall: float, loss: float, lr: float, val_row: list, est_loss: float) -> None:
        cells = [step, f"{wall:.1f}", f"{loss:.5f}", f"{lr:.2e}", *val_row, f"{est_loss:.5f}"]
        self.writer.writerow(cells[:len(self.columns)])
        self.file.flush()   # a run killed without warning keeps its log up to the last row

    def close(self) -> None:
        self.file.close()


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
