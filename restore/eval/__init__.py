"""Evaluation in the library: degradation protocols, dataset scoring, peers and the benchmark report.

    from restore.eval import run_bench
    run_bench(data=["../shared/data/val"], tasks="denoise25,sr4", frames=10, out="bench-out")

Modules: protocols (seeded noise, BI downscaling, frame dropping, x264/x265 at a CRF), data
(loading a data folder or a clip), scoring (PSNR via restore.metrics, SSIM, LPIPS, E_warp),
methods (tasks and the registry's methods), peers (ffmpeg filters and learned peers, run out of
process), tuning (peer strength search with a JSON cache), bench (the runner) and report
(bench.md, bench.json, scatter plots). Nothing below this layer imports it.
"""
from __future__ import annotations


def run_bench(*args, **kwargs):
    from .bench import run_bench as _run

    return _run(*args, **kwargs)
