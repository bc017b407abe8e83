"""`restore score REFERENCE DISTORTED [DISTORTED ...]`: quality of one or more videos against a reference.

LPIPS is on by default (perceptual quality is what restoration changes most, and the weights ship
with restore, so it always loads offline); --no-lpips skips it for speed on long CPU runs.
Output files follow cli/_output.py: checked before any scoring, written atomically.
"""
from __future__ import annotations

import warnings

import click


@click.command("score")
@click.argument("reference", type=click.Path(dir_okay=False))
@click.argument("distorted", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--lpips/--no-lpips", "use_lpips", default=True, show_default=True,
              help="LPIPS (AlexNet v0.1, bundled weights). Off is faster on CPU.")
@click.option("--ssim/--no-ssim", "use_ssim", default=True, show_default=True, help="SSIM (see --ssim-mode).")
@click.option("--ssim-mode", type=click.Choice(["auto", "wang", "ffmpeg"]), default="auto", show_default=True,
              help="ffmpeg: ffmpeg's ssim filter (8x8 integer block sums, every plane, its All; needs --psnr-mode "
                   "yuv); wang: Gaussian 11x11 on Y (Wang 2004, equal to scikit-image), several times slower; "
                   "auto: ffmpeg with --psnr-mode yuv, wang otherwise.")
@click.option("--vmaf", "vmaf", is_flag=False, flag_value="both", default=None, metavar="[vmaf|neg|both]",
              help="VMAF on the Y plane: vmaf_v0.6.1, the NEG model (no enhancement gain; the honest "
                   "one for restoration), or both (the default when --vmaf has no value).")
@click.option("--temporal", is_flag=True,
              help="E_warp and flicker (DIS flow on the reference), TecoGAN's tOF and tLP; slower.")
@click.option("--psnr-mode", type=click.Choice(["auto", "y", "rgb", "yuv"]), default="auto", show_default=True,
              help="yuv: per plane on the code values, as ffmpeg's psnr filter; y: BT.601 Y of RGB as SR "
                   "papers; rgb; auto: yuv, except y for 8-bit RGB references and with --crop-border.")
@click.option("--crop-border", type=click.IntRange(min=0), default=0, show_default=True,
              help="Pixels cropped on every side before PSNR/SSIM (y and rgb modes, so auto picks y; SR papers "
                   "use the scale).")
@click.option("--align", "align", default="auto", show_default=True,
              help="auto (search offsets -5..5), none, or a frame offset N (distorted frame i+N = reference frame i).")
@click.option("--scale-to-reference", is_flag=True, help="Resize distorted frames to the reference size instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the full reports as JSON on stdout instead of the table.")
@click.option("--json-file", "-o", "json_path", type=click.Path(dir_okay=False),
              help="Write the full reports (summaries and per-frame values) as JSON to this file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write per-frame values as CSV.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Per-frame curves of every metric (PNG).")
@click.option("--overwrite", is_flag=True, help="Replace existing --json-file/--csv/--plot files (never an input).")
@click.option("--device", default="auto", show_default=True, help="LPIPS / VMAF device: auto, cpu, cuda[:N].")
@click.option("--progress/--no-progress", default=False, help="Show a progress bar per file.")
def command(reference, distorted, use_lpips, use_ssim, ssim_mode, vmaf, temporal, psnr_mode, crop_border, align,
            scale_to_reference, as_json, json_path, csv_path, plot_path, overwrite, device, progress):
    """Score DISTORTED videos against REFERENCE: PSNR, SSIM, LPIPS, optionally VMAF and temporal metrics.

    By default PSNR and SSIM are ffmpeg's (psnr and ssim filters on the YUV code values, the same
    numbers and about the same speed); --psnr-mode y gives BT.601 Y with Gaussian SSIM, as papers.

    \b
    Examples:
      restore score ref.mp4 restored.mp4
      restore score ref.mp4 a.mp4 b.mp4 --no-lpips --csv frames.csv --plot frames.png
      restore score ref.mp4 enc.mp4 --no-lpips --vmaf
      restore score hr.mp4 sr.mp4 --psnr-mode y --crop-border 4
      restore score src.y4m enc.mp4 --psnr-mode yuv --json | jq '.reports[0].aggregates'
    """
    from restore.cli._output import check_outputs, legacy_json_argument, write_file, write_text
    from restore.metrics import report
    from restore.metrics.score import ScoreWarning, score
    from restore.metrics.vmaf import parse_models

    legacy_json_argument(distorted)
    vmaf_models = parse_models(vmaf)
    inputs = [reference, *distorted]
    # every output is checked now, before any decoding: refuse inputs, existing files, unwritable folders
    check_outputs({"--json-file": json_path, "--csv": csv_path, "--plot": plot_path},
                  inputs=inputs, overwrite=overwrite)
    metrics = ("psnr",) + (("ssim",) if use_ssim else ())
    lpips_model = None
    if use_lpips or temporal:
        from restore.metrics.lpips_metric import LPIPS

        lpips_model = LPIPS(device=device)  # built once, shared by every distorted file (and tLP)
    reports = []
    for path in distorted:
        with warnings.catch_warnings():
            # the report carries the warnings; the table prints them once, so no duplicate noise
            warnings.simplefilter("ignore", ScoreWarning)
            reports.append(score(reference, path, metrics=metrics, lpips=use_lpips, temporal=temporal,
                                 align=align, crop_border=crop_border, scale_to_reference=scale_to_reference,
                                 device=device, progress=progress, psnr_mode=psnr_mode,
                                 lpips_model=lpips_model, vmaf=vmaf_models or None, ssim_mode=ssim_mode))
    keep = dict(inputs=inputs, overwrite=overwrite)
    if csv_path:
        write_file(csv_path, lambda tmp: report.write_csv(reports, tmp), **keep)
    if json_path:
        write_text(json_path, report.write_json(reports), **keep)
    if plot_path:
        write_file(plot_path, lambda tmp: report.plot(reports, tmp), **keep)
    if as_json:
        click.echo(report.write_json(reports))
    else:
        click.echo(report.table(reports))
        for what, path in (("per-frame CSV", csv_path), ("JSON", json_path), ("plot", plot_path)):
            if path:
                click.echo(f"wrote {what}: {path}")
