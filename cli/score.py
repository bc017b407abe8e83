"""`restore score REFERENCE DISTORTED [DISTORTED ...]`: quality of one or more videos against a reference.

LPIPS is on by default (perceptual quality is what restoration changes most, and the weights ship
with restore, so it always loads offline); --no-lpips skips it for speed on long CPU runs.
"""
from __future__ import annotations

import warnings

import click


@click.command("score")
@click.argument("reference", type=click.Path(dir_okay=False))
@click.argument("distorted", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--lpips/--no-lpips", "use_lpips", default=True, show_default=True,
              help="LPIPS (AlexNet v0.1, bundled weights). Off is faster on CPU.")
@click.option("--ssim/--no-ssim", "use_ssim", default=True, show_default=True, help="SSIM (Wang 2004) on Y.")
@click.option("--temporal", is_flag=True, help="Warping error E_warp (DIS flow on the reference) and flicker; slower.")
@click.option("--psnr-mode", type=click.Choice(["y", "rgb", "yuv"]), default="y", show_default=True,
              help="y: BT.601 Y as SR papers; rgb; yuv: per plane in the source's format, as ffmpeg's psnr filter.")
@click.option("--crop-border", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pixels cropped on every side before PSNR/SSIM (y and rgb modes; SR papers use the scale).")
@click.option("--align", "align", default="auto", show_default=True,
              help="auto (search offsets -5..5), none, or a frame offset N (distorted frame i+N = reference frame i).")
@click.option("--scale-to-reference", is_flag=True, help="Resize distorted frames to the reference size instead of failing.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True), help="Write per-frame values as CSV.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the full report (summaries and per-frame values) as JSON; '-' prints it instead of the table.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True), help="Per-frame curves of every metric (PNG).")
@click.option("--device", default="auto", show_default=True, help="LPIPS device: auto, cpu, cuda[:N].")
@click.option("--progress/--no-progress", default=False, help="Show a progress bar per file.")
def command(reference, distorted, use_lpips, use_ssim, temporal, psnr_mode, crop_border, align,
            scale_to_reference, csv_path, json_path, plot_path, device, progress):
    """Score DISTORTED videos against REFERENCE: PSNR, SSIM, LPIPS (and E_warp with --temporal).

    \b
    Examples:
      restore score ref.mp4 restored.mp4
      restore score ref.mp4 a.mp4 b.mp4 --no-lpips --csv frames.csv --plot frames.png
      restore score hr.mp4 sr.mp4 --psnr-mode y --crop-border 4
      restore score src.y4m enc.mp4 --psnr-mode yuv --json -
    """
    from restore.metrics import report
    from restore.metrics.score import ScoreWarning, score

    metrics = ("psnr",) + (("ssim",) if use_ssim else ())
    lpips_model = None
    if use_lpips:
        from restore.metrics.lpips_metric import LPIPS

        lpips_model = LPIPS(device=device)  # built once, shared by every distorted file
    reports = []
    for path in distorted:
        with warnings.catch_warnings():
            # the report carries the warnings; the table prints them once, so no duplicate noise
            warnings.simplefilter("ignore", ScoreWarning)
            reports.append(score(reference, path, metrics=metrics, lpips=use_lpips, temporal=temporal,
                                 align=align, crop_border=crop_border, scale_to_reference=scale_to_reference,
                                 device=device, progress=progress, psnr_mode=psnr_mode,
                                 lpips_model=lpips_model))
    if csv_path:
        report.write_csv(reports, csv_path)
    if json_path and json_path != "-":
        report.write_json(reports, json_path)
    if plot_path:
        report.plot(reports, plot_path)
    if json_path == "-":
        click.echo(report.write_json(reports))
    else:
        click.echo(report.table(reports))
        for what, path in (("per-frame CSV", csv_path), ("JSON", json_path), ("plot", plot_path)):
            if path:
                click.echo(f"wrote {what}: {path}")
