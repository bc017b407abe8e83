"""Quality-bar verdicts and the markdown report."""
from __future__ import annotations

import math


def quality_bar(methods: dict, psnr_key: str = "psnr", also: tuple[str, ...] = ()) -> dict:
    """Does "diffusion" beat every classical method on both PSNR (higher) and LPIPS (lower)?

    Margins are diffusion minus the best classical on PSNR (dB) and best classical minus
    diffusion on LPIPS: positive = the bar is met by that much, negative = missed by that much.
    `also`: further PSNR keys reported (not required), e.g. PSNR-RGB next to PSNR-Y for SR."""
    d = methods["diffusion"]
    classical = {k: v for k, v in methods.items() if v.get("family") == "classical"}
    if not classical:
        raise ValueError("no classical method to compare with")
    best_p = max(classical, key=lambda k: classical[k][psnr_key])
    best_l = min(classical, key=lambda k: classical[k]["lpips"])
    out = {"psnr_key": psnr_key,
           "psnr_margin": d[psnr_key] - classical[best_p][psnr_key], "best_psnr": best_p,
           "lpips_margin": classical[best_l]["lpips"] - d["lpips"], "best_lpips": best_l}
    out["psnr_ok"] = out["psnr_margin"] > 0
    out["lpips_ok"] = out["lpips_margin"] > 0
    out["pass"] = out["psnr_ok"] and out["lpips_ok"]
    out["also"] = {}
    for key in also:
        b = max(classical, key=lambda k: classical[k][key])
        out["also"][key] = {"margin": d[key] - classical[b][key], "best": b}
    return out


def _f(v, nd=3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return f"{v:.{nd}f}"


def _signed(v, nd=3) -> str:
    return f"{v:+.{nd}f}"


def _verdict(bar: dict) -> str:
    if bar["pass"]:
        return "**PASS**"
    missed = [n for n, ok in (("PSNR", bar["psnr_ok"]), ("LPIPS", bar["lpips_ok"])) if not ok]
    return f"**MISS** ({' and '.join(missed)})"


def _params(p: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in p.items()) or "-"


def _label(name: str, row: dict) -> str:
    return f"**{name}**" if row.get("family") == "diffusion" else name


def render(results: dict, meta: dict) -> str:
    lines: list[str] = []
    w = lines.append
    w("# Validation of the diffusion models")
    w("")
    w("Produced by `scripts/validate_models.py`; do not edit by hand, rerun it.")
    w("")
    w(f"- Command: `{meta['command']}`")
    for key in ("date", "git_commit", "machine", "device", "frames_limit", "weights_dir", "total_seconds"):
        if key in meta:
            w(f"- {key.replace('_', ' ').capitalize()}: {meta[key]}")
    if meta.get("models"):
        w("- Models:")
        for name, m in meta["models"].items():
            w(f"  - `{name}`: {m}")
    w("")
    w("Protocols (../shared/data/README.md): denoising adds Gaussian noise of the given std (0-255 scale, "
      "fixed seed) and rounds to 8 bits, so every method sees the same noisy frames; SR uses MATLAB-style "
      "bicubic downscaling (BI) of HR crops to a multiple of the scale, rounded to 8 bits; all outputs are "
      "rounded to 8 bits before scoring. PSNR: RGB (peak 1) and, for SR, BT.601 Y (MATLAB rgb2ycbcr, "
      "peak 255); SR crops `scale` border pixels for every metric. SSIM (Wang 2004: 11x11 Gaussian, "
      "sigma 1.5) on BT.601 Y. LPIPS AlexNet v0.1 (lower is better). davis-dog is a clip: PSNR of the "
      "mean MSE over its frames (ffmpeg's convention); Set14 and the interpolation triplets are image "
      "sets: mean of per-image PSNR. SSIM and LPIPS are means.")
    w("")

    bars = _collect_bars(results)
    if bars:
        w("## Quality bar: diffusion (default steps) vs the best classical method")
        w("")
        w("Margins: PSNR diffusion minus best classical (dB), LPIPS best classical minus diffusion; "
          "positive = diffusion better.")
        w("")
        w("| task | data | PSNR | diffusion | best classical | margin | LPIPS diffusion | best classical | margin | bar |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for task, data, methods, bar in bars:
            d = methods["diffusion"]
            bp, bl = methods[bar["best_psnr"]], methods[bar["best_lpips"]]
            key = bar["psnr_key"]
            w(f"| {task} | {data} | {'Y' if key == 'psnr_y' else 'RGB'} | {_f(d[key])} | "
              f"{_f(bp[key])} ({bar['best_psnr']}) | {_signed(bar['psnr_margin'])} | {_f(d['lpips'], 4)} | "
              f"{_f(bl['lpips'], 4)} ({bar['best_lpips']}) | {_signed(bar['lpips_margin'], 4)} | {_verdict(bar)} |")
        n_pass = sum(b[3]["pass"] for b in bars)
        w("")
        w(f"{n_pass} of {len(bars)} rows meet the bar.")
        w("")

    timing = results.get("timing", {})

    if "denoise" in results:
        w(f"## Denoising: {meta.get('denoise_clip', '')}" + _time(timing, "denoise"))
        w("")
        w("Peers' strengths were tuned per sigma for best PSNR on a few frames with noise from another "
          "seed (see 'Peer tuning'); the diffusion model gets the true sigma as its strength.")
        w("")
        for key, row in results["denoise"].items():
            w(f"### sigma {row['sigma']:g} ({row['frames']} frames)")
            w("")
            w("| method | setting | PSNR | SSIM | LPIPS | s/frame |")
            w("|---|---|---|---|---|---|")
            inp = row["input"]
            w(f"| noisy input | - | {_f(inp['psnr'])} | {_f(inp['ssim'], 4)} | {_f(inp['lpips'], 4)} | - |")
            for name, m in row["methods"].items():
                limit = " (filter's limit)" if m.get("tuning", {}).get("at_limit") else ""
                w(f"| {_label(name, m)} | {_params(m['params'])}{limit} | {_f(m['psnr'])} | {_f(m['ssim'], 4)} | "
                  f"{_f(m['lpips'], 4)} | {_f(m['seconds_per_frame'], 2)} |")
            if "bar" in row:
                w("")
                w(_bar_line(row["bar"]))
            w("")

    if "sr" in results:
        w("## Super-resolution (BI)" + _time(timing, "sr"))
        w("")
        for key, e in results["sr"].items():
            w(f"### x{e['scale']} {e['dataset']} ({e['frames']} frames)")
            w("")
            w("| method | PSNR-Y | PSNR-RGB | SSIM-Y | LPIPS | s/frame |")
            w("|---|---|---|---|---|---|")
            for name, m in e["methods"].items():
                w(f"| {_label(name, m)} | {_f(m['psnr_y'])} | {_f(m['psnr'])} | {_f(m['ssim'], 4)} | "
                  f"{_f(m['lpips'], 4)} | {_f(m['seconds_per_frame'], 2)} |")
            if "bar" in e:
                w("")
                w(_bar_line(e["bar"]) + _rgb_note(e["bar"]))
            w("")

    if "interp" in results:
        e = results["interp"]["triplets"]
        w(f"## Interpolation: {len(e['triplets'])} triplet(s), t = 0.5" + _time(timing, "interp"))
        w("")
        w("| method | PSNR | SSIM | LPIPS | s/frame |")
        w("|---|---|---|---|---|")
        for name, m in e["methods"].items():
            w(f"| {_label(name, m)} | {_f(m['psnr'])} | {_f(m['ssim'], 4)} | {_f(m['lpips'], 4)} | "
              f"{_f(m['seconds_per_frame'], 2)} |")
        if "bar" in e:
            w("")
            w(_bar_line(e["bar"]))
        w("")

    if "sweep" in results:
        w("## Steps sweep (default start level)" + _time(timing, "sweep"))
        w("")
        w("| model | frames | steps | PSNR | SSIM | LPIPS | s/frame |")
        w("|---|---|---|---|---|---|---|")
        for label, e in results["sweep"].items():
            key = "psnr_y" if e["task"] == "upscale" else "psnr"
            b = e["baseline"]
            w(f"| {label} | {e['frames']} | {b['name']} | {_f(b[key])} | {_f(b['ssim'], 4)} | {_f(b['lpips'], 4)} | - |")
            for k, r in e["steps"].items():
                mark = " (default)" if int(k) == e["default_steps"] else ""
                w(f"| {label} | {e['frames']} | {k}{mark} | {_f(r[key])} | {_f(r['ssim'], 4)} | {_f(r['lpips'], 4)} | "
                  f"{_f(r['seconds_per_frame'], 2)} |")
        w("")
        w("PSNR is PSNR-Y (scale border cropped) for the SR models, RGB otherwise.")
        w("")

    if "ewarp" in results:
        w("## Temporal consistency: E_warp, chunk-joint vs frame by frame" + _time(timing, "ewarp"))
        w("")
        w("E_warp (Lai et al. 2018; restore.metrics.temporal): output frame t-1 warped onto t with DIS flow "
          "computed on the clean reference, occlusions masked, mean squared RGB difference in [0, 1]; lower "
          "is steadier. Joint: the restorer gets the whole clip in one call (windows anchored on the "
          "previous window, one noise draw per window). Frame by frame: the same restorer called on one "
          "frame at a time, no anchors (its start noise then differs from frame to frame).")
        w("")
        w("| task | frames | joint | frame by frame | joint / fbf | reference | baseline | PSNR joint | PSNR fbf | joint lower |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for label, e in results["ewarp"].items():
            b = e["baseline"]
            w(f"| {label} | {e['frames']} | {_f(e['joint']['ewarp'] * 1e3, 4)} | "
              f"{_f(e['frame_by_frame']['ewarp'] * 1e3, 4)} | {_f(e['ratio'], 3)} | "
              f"{_f(e['reference']['ewarp'] * 1e3, 4)} | {_f(b['ewarp'] * 1e3, 4)} ({b['name']}) | "
              f"{_f(e['psnr_joint'])} | {_f(e['psnr_frame_by_frame'])} | {'yes' if e['joint_lower'] else '**no**'} |")
        w("")
        w("E_warp values x 1e-3. 'reference': the clean clip itself (the floor set by flow errors and "
          "occlusions the mask misses); 'baseline': the noisy input or the bicubic upscale. PSNR (RGB) shows "
          "what each mode costs in fidelity.")
        w("")

    if "denoise" in results:
        w("## Peer tuning")
        w("")
        w("| peer | sigma | parameter | chosen | PSNR on tuning frames | tuning frames | tried (value: PSNR) |")
        w("|---|---|---|---|---|---|---|")
        for key, row in results["denoise"].items():
            for name, m in row["methods"].items():
                t = m.get("tuning")
                if not t:
                    continue
                param, value = next(iter(m["params"].items()))
                fr = t["recipe"]["frames"]
                tried = ", ".join(f"{float(k):.4g}: {v:.2f}" for k, v in t["tried"].items())
                w(f"| {name} | {row['sigma']:g} | {param} | {value:.4g} | {_f(t['psnr'])} | {fr[0]}-{fr[1] - 1} | {tried} |")
        w("")
        w("Peer settings:")
        for name, desc in meta.get("peers", {}).items():
            w(f"- {name}: {desc}")
        w("")
    if meta.get("notes"):
        w("## Notes")
        w("")
        for note in meta["notes"]:
            w(f"- {note}")
        w("")
    return "\n".join(lines) + "\n"


def _rgb_note(bar: dict) -> str:
    rgb = bar.get("also", {}).get("psnr")
    return f" PSNR-RGB: {_signed(rgb['margin'])} dB vs {rgb['best']}." if rgb else ""


def _bar_line(bar: dict) -> str:
    key = "PSNR-Y" if bar["psnr_key"] == "psnr_y" else "PSNR"
    return (f"Quality bar: {_verdict(bar)}: {key} {_signed(bar['psnr_margin'])} dB vs {bar['best_psnr']}, "
            f"LPIPS {_signed(bar['lpips_margin'], 4)} vs {bar['best_lpips']} (positive = diffusion better).")


def _time(timing: dict, key: str) -> str:
    return f" ({timing[key]:.0f} s)" if key in timing else ""


def _collect_bars(results: dict):
    out = []
    for key, row in results.get("denoise", {}).items():
        if "bar" in row:
            out.append(("denoise", f"davis-dog sigma {row['sigma']:g}", row["methods"], row["bar"]))
    for key, e in results.get("sr", {}).items():
        if "bar" in e:
            out.append((f"SR x{e['scale']}", e["dataset"], e["methods"], e["bar"]))
    e = results.get("interp", {}).get("triplets")
    if e and "bar" in e:
        out.append(("interp x2", f"{len(e['triplets'])} triplet(s)", e["methods"], e["bar"]))
    return out
