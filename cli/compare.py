"""`restore compare REFERENCE ENC1 ENC2 ...`: rate-quality curves and Bjontegaard deltas.

Encodes are grouped into curves by label (--labels, one per file; by default the codec name), or
produced here with --encode CODEC:CRF,CRF,... (one curve per --encode). Quality defaults to the
ffmpeg conventions encoder people cross-check with: per-plane YUV PSNR (PSNR of the mean MSE)
and SSIM on the source Y plane; LPIPS is off by default here (a ladder is many full scorings),
--lpips adds it and BD-LPIPS. The first curve is the anchor of every BD number.
"""
from __future__ import annotations

import json
import tempfile
import warnings

import click

from restore.cli._options import OPTIONAL_TYPES


def _labels(option_values, n_files):
    labels = [x.strip() for v in option_values for x in v.split(",") if x.strip()]
    if labels and len(labels) != n_files:
        from restore.errors import ConfigError

        raise ConfigError(f"--labels: got {len(labels)} labels for {n_files} encoded files")
    return labels


@click.command("compare")
@click.argument("reference", type=click.Path(dir_okay=False))
@click.argument("encodes", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--labels", multiple=True, help="Curve label per encoded file (comma-separated or repeated); "
                                               "files with the same label form one curve. Default: codec name.")
@click.option("--encode", "encode_specs", multiple=True,
              help="Encode a ladder here, e.g. 'libx264:18,23,28,33' (repeat for more codecs).")
@click.option("--restore-ladder", "restore_specs", multiple=True, metavar="CODEC:CRF,...",
              help="Encode a ladder, restore every encode (--deblock) and report what restoration buys: "
                   "BD-rate of (encode, then restore) against (encode only), both scored on REFERENCE. "
                   "Give a full-chroma REFERENCE (RGB or 4:4:4 master): against a 4:2:0 one, chroma the "
                   "restoration brings back counts as error.")
@click.option("--deblock", "deblock", type=OPTIONAL_TYPES["deblock"], is_flag=False, flag_value="auto", default=None,
              metavar="[auto|STRENGTH]", help="With --restore-ladder: the deblock strength (default auto).")
@click.option("--deblock-method", default=None, metavar="NAME",
              help="With --restore-ladder: the deblock method (restore models; default: the default one).")
@click.option("--preset", default="medium", show_default=True, help="Encoder preset for --encode.")
@click.option("--keep", "keep_dir", type=click.Path(file_okay=False), help="Keep --encode outputs in this folder.")
@click.option("--psnr-mode", type=click.Choice(["yuv", "y", "rgb"]), default="yuv", show_default=True)
@click.option("--ssim-mode", type=click.Choice(["wang", "ffmpeg"]), default="wang", show_default=True,
              help="wang: Gaussian (Wang 2004) on Y; ffmpeg: ffmpeg's ssim filter (All), faster; yuv mode only.")
@click.option("--lpips/--no-lpips", "use_lpips", default=False, show_default=True)
@click.option("--vmaf", "vmaf", is_flag=False, flag_value="both", default=None, metavar="[vmaf|neg|both]",
              help="VMAF per encode (vmaf_v0.6.1, NEG, or both when given no value) and BD-rate on it.")
@click.option("--method", type=click.Choice(["pchip", "akima"]), default="pchip", show_default=True,
              help="Interpolation for the Bjontegaard integrals.")
@click.option("--align", default="none", show_default=True, help="Frame alignment (encodes of one source: none).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Rate-quality curves (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout instead of tables.")
@click.option("--json-file", "-o", "json_path", type=click.Path(dir_okay=False), help="Write the results as JSON to this file.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write one row per encode (rate and quality) as CSV.")
@click.option("--overwrite", is_flag=True, help="Replace existing --json-file/--csv/--plot files (never an input).")
@click.option("--device", default="auto", show_default=True, help="LPIPS device.")
def command(reference, encodes, labels, encode_specs, restore_specs, deblock, deblock_method, preset, keep_dir, psnr_mode, ssim_mode, use_lpips, vmaf, method, align,
            plot_path, as_json, json_path, csv_path, overwrite, device):
    """Bitrate against quality for encodes of REFERENCE, and BD-rate / BD-PSNR between them.

    \b
    Examples:
      restore compare src.mp4 a_crf18.mp4 a_crf23.mp4 a_crf28.mp4 a_crf33.mp4 \\
                              b_crf18.mp4 b_crf23.mp4 b_crf28.mp4 b_crf33.mp4 --labels a,a,a,a,b,b,b,b
      restore compare src.mp4 --encode libx264:18,23,28,33 --encode libx265:20,25,30,35 --plot rq.png
      restore compare src.mp4 --encode libx264:18,23,28,33 --encode libsvtav1:30,36,42,48 --vmaf --json
      restore compare src.mp4 --restore-ladder libx264:23,27,32,37 --deblock
    """
    from restore.cli._output import check_outputs, legacy_json_argument, write_file, write_text
    from restore.errors import ConfigError
    from restore.metrics import compare as cmp
    from restore.metrics.bdrate import BDWarning
    from restore.metrics.ladder import encode_ladder, parse_encode
    from restore.metrics.vmaf import parse_models

    legacy_json_argument(encodes)
    if not encodes and not encode_specs and not restore_specs:
        raise ConfigError("nothing to compare: give encoded files, --encode CODEC:CRF,... or --restore-ladder CODEC:CRF,...")
    if (deblock is not None or deblock_method) and not restore_specs:
        raise ConfigError("--deblock and --deblock-method go with --restore-ladder CODEC:CRF,...")
    if restore_specs and (encodes or encode_specs):
        raise ConfigError("--restore-ladder compares restored against plain encodes of one ladder: "
                          "give it alone, without encoded files or --encode")
    vmaf_models = parse_models(vmaf)
    inputs = [reference, *encodes]
    check_outputs({"--json-file": json_path, "--csv": csv_path, "--plot": plot_path},
                  inputs=inputs, overwrite=overwrite)
    label_list = _labels(labels, len(encodes))
    items = [(label_list[i] if label_list else None, path) for i, path in enumerate(encodes)]
    with tempfile.TemporaryDirectory(prefix="restore-compare-") as tmp:
        for spec_text in encode_specs:
            specs = parse_encode(spec_text)
            paths = encode_ladder(reference, specs, keep_dir or tmp, preset=preset)
            # one curve per --encode: the codec name, or the whole spec when a codec repeats
            label = specs[0].label if all(lab != specs[0].label for lab, _ in items) else spec_text
            items += [(label, str(p)) for p in paths]
        if restore_specs:
            from restore.pipeline import restore_ladder

            overrides = {"deblock": deblock if deblock is not None else "auto", "deblock_method": deblock_method,
                         "device": None if device == "auto" else device}
            overrides = {k: v for k, v in overrides.items() if v is not None}
            for spec_text in restore_specs:
                items += restore_ladder(reference, spec_text, keep_dir or tmp, overrides=overrides, preset=preset,
                                        log=None if as_json else (lambda m: click.echo(m, err=True)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = cmp.compare(reference, items, psnr_mode=psnr_mode, lpips=use_lpips, method=method,
                                 align=align, device=device, vmaf=vmaf_models or None, ssim_mode=ssim_mode)
    if restore_specs:
        # Both curves of a restore ladder are lossless RGB files, converted to the reference's pixel
        # format alike: one note instead of a warning per file.
        expected = "converted to the reference's"
        for p in result.points:
            p.warnings = [w for w in p.warnings if expected not in w]
        caught = [w for w in caught if expected not in str(w.message)]
        result.notes.append("restore ladder: the plain and the restored encodes went through restore enhance into "
                            "FFV1 (RGB) alike and were scored in the reference's pixel format; rates are the encodes'")
    from restore.ops.jsonsafe import json_safe

    keep = dict(inputs=inputs, overwrite=overwrite)
    if plot_path:
        write_file(plot_path, lambda tmp: cmp.plot_curves(result, tmp), **keep)
    if csv_path:
        write_file(csv_path, lambda tmp: cmp.write_csv(result, tmp), **keep)
    if json_path:
        write_text(json_path, json.dumps(json_safe(result.to_dict()), indent=2), **keep)
    if as_json:
        click.echo(json.dumps(json_safe(result.to_dict()), indent=2))
    else:
        click.echo(cmp.format_result(result))
        for w in dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, BDWarning)):
            click.echo(f"warning: {w}", err=True)  # BD warnings are already in the table
        for what, path in (("plot", plot_path), ("CSV", csv_path), ("JSON", json_path)):
            if path:
                click.echo(f"wrote {what}: {path}")
