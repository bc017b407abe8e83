"""Export trained checkpoints as the shipped models and write their model cards.

    python scripts/make_model_cards.py --from runs --validation docs/validation.json \
        --validation docs/deblock-validation.json
    python scripts/make_model_cards.py --steps sr-x2=1           # set a model's default steps

Weights are stored as float16 safetensors (half the size; inference computes in float32) with
the checkpoint's YAML metadata; each card (data/weights/<name>.md) gives the task, training data
and time, sampling defaults and the validation rows of docs/validation.json for that model.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from restore.diffusion.zoo import NAMES  # noqa: E402  (the shipped models' names: one table)

WEIGHTS = REPO / "data" / "weights"
TASK_TEXT = {
    "deblock": "Blind compression-artefact removal (`--deblock`): x264 / x265 at CRF 18-45, MPEG-2 / "
               "MPEG-4 Part 2 at low bitrates, light JPEG and noise, 4:2:0, 8 bit (configs/train/deblock.yaml). "
               "Same structure as the denoiser, run at the noise-level floor (blind); `--deblock STRENGTH` "
               "blends its output with the input, `auto` takes the strength from the stream "
               "(restore/methods/damage.py).",
    "denoise": "Video denoising: additive Gaussian noise (std 0-55 on the 0-255 scale, 8-bit clipped) "
               "and light JPEG damage. Sampling starts at the input itself, at its noise level "
               "(given with --denoise SIGMA or estimated).",
    "denoise-aligned": "Video denoising as `denoise` (the same network, fine-tuned from it), for windows "
                       "centred on each output frame with the two neighbours warped onto it by DIS flow of the "
                       "noisy frames (restore/diffusion/centred.py; `--denoise-method diffusion-aligned`, "
                       "configs/train/denoise-aligned.yaml); the restored neighbours are averaged into the "
                       "output frame where they agree with it (centred.fuse_slots). In the chunk-joint windows of `denoise` it does "
                       "worse than `denoise`: use it through its method.",
    "sr-x2": "x2 video super-resolution of MATLAB-bicubic ('BI') downscaled frames, conditioned on "
             "the bicubic upsample; sampling starts from it plus noise.",
    "sr-x4": "x4 video super-resolution of MATLAB-bicubic ('BI') downscaled frames, conditioned on "
             "the bicubic upsample; sampling starts from it plus noise.",
    "interp-x2": "Frame interpolation at any t in (0, 1) (trained at t = 1/3, 1/2, 2/3, mostly 1/2), "
                 "conditioned on both neighbours and their DIS-flow warps to t; sampling starts "
                 "from the flow-warped blend plus noise, and the network corrects what the flow got "
                 "wrong (ghosts, occlusions). Trained on a GPU: flow hints are computed once on "
                 "whole frames (restore/diffusion/bank.py); see docs/diffusion.md.",
}


def export(src: Path, name: str) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(src / name / f"{name}.safetensors"))
    save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()},
              str(WEIGHTS / f"{name}.safetensors"))
    shutil.copy(src / name / f"{name}.yaml", WEIGHTS / f"{name}.yaml")
    log = src / name / f"{name}.log.csv"
    if log.exists():
        shutil.copy(log, WEIGHTS / f"{name}.log.csv")


def _fmt(v, nd=3):
    try:
        return f"{float(v):.{nd}f}"
    except (TypeError, ValueError):
        return str(v)


# which bench tasks each shipped model answers (docs/validation.json is `restore bench --md` output)
BENCH_TASKS = {"deblock": ("deblock-x264crf18", "deblock-x264crf23", "deblock-x264crf30", "deblock-x264crf37",
                           "deblock-x265crf32"),
               "denoise": ("denoise15", "denoise25", "denoise50"),
               "denoise-aligned": ("denoise15", "denoise25", "denoise50"), "sr-x2": ("sr2",), "sr-x4": ("sr4",),
               "interp-x2": ("interp",)}


def validation_rows(name: str, results: dict) -> list[str]:
    """The bench rows of this model's tasks: ours, the best classical method and the best peer."""
    rows = ["| task | data | method | family | Y-PSNR | RGB-PSNR | SSIM | LPIPS | s/frame |",
            "|---|---|---|---|---|---|---|---|---|"]
    for task in BENCH_TASKS[name]:
        for ds in results.get(task, {}).get("datasets", []):
            methods = ds["methods"]
            keep = [m for m, r in methods.items() if r.get("family") == "ours" and "@" not in m and ":" not in m]
            for family in ("classical", "peer"):
                rivals = [m for m, r in methods.items() if r.get("family") == family]
                if rivals:
                    keep.append(max(rivals, key=lambda m: methods[m].get("psnr_rgb") or 0))
                    sharpest = min(rivals, key=lambda m: methods[m].get("lpips") or 9)
                    if sharpest not in keep:
                        keep.append(sharpest)
            for m in keep:
                r = methods[m]
                rows.append(f"| {task} | {ds['dataset']} | {m} | {r.get('family')} | {_fmt(r.get('psnr_y'), 2)} | "
                            f"{_fmt(r.get('psnr_rgb'), 2)} | {_fmt(r.get('ssim'), 4)} | {_fmt(r.get('lpips'), 4)} | "
                            f"{_fmt(r.get('sec_per_frame'), 2)} |")
    return rows + [""] if len(rows) > 2 else []


def _phase_text(h: dict) -> str:
    extra = [f"{k} {h[k]}" for k in ("noise_power", "interp_max_stride") if h.get(k) not in (None, 1, 1.0)]
    text = (f"steps {h['steps'][0]}-{h['steps'][1]} ({h['minutes']:.0f} min): batches of {h.get('batch')} "
            f"chunks of {h.get('frames')} frames, {h.get('patch')} px, peak lr {h.get('lr'):g}"
            + (f" ({h['lr_scale_new']:g}x that for the propagation)" if h.get("lr_scale_new") else ""))
    text += "".join(", " + e for e in extra)
    if h.get("p_first_step") is not None:  # older phases did not record it (they trained at 0.3 to 0.7)
        text += f", {h['p_first_step']:.0%} of samples at the start level"
    if h.get("loss"):
        text += f", {h['loss']} loss" + (f" + {h['lpips_weight']:g} LPIPS" if h.get("lpips_weight") else "")
    if h.get("device"):
        text += f", on {h['device']}"
    return text + (f" ({h['note']})" if h.get("note") else "")


def _arch_text(arch: dict) -> str:
    if arch.get("type") == "window":
        return (f"window network (restore/diffusion/windownet.py) at 1/{arch['factor']} of the output resolution: "
                f"per-frame encoder ({arch['enc']} ch), fusion of {2 * arch['radius'] + 1} neighbouring frames"
                f"{' warped onto each frame by DIS flow (align)' if arch.get('align') else ''}, "
                + (f"a {arch['propagate']}-channel state propagated backward and forward through the whole "
                   "window along the same flows, " if arch.get("propagate") else "")
                + f"U-Net channels {arch['channels']}, blocks {arch['blocks']}, pixel-shuffle head")
    return (f"pixel-space video U-Net, channels {arch['channels']}, {arch['blocks']} blocks/level, "
            "temporal conv + frame attention")


def _chunk_text(cfg: dict, meta: dict) -> str:
    inf = meta.get("inference") or {}
    if not inf:
        return (f"{cfg.get('frames')} frames in training; windows of {int(cfg.get('frames', 3)) + 1} "
                "anchored on each other at inference")
    if inf.get("align_radius"):
        k = 2 * int(inf["align_radius"]) + 1
        return (f"{cfg.get('frames')} frames in training, aligned onto the centre one; at inference one window of "
                f"{k} frames per output frame, the neighbours warped onto it (no anchors)")
    return (f"{cfg.get('frames')} frames in training; at inference windows of {inf['window']} frames "
            f"({inf['anchors']} restored anchors in front, {inf.get('lookahead', 0)} frames of lookahead)")


def card(name: str, meta: dict, results: dict | None, size: int) -> str:
    cfg = meta.get("config", {})
    data = meta.get("data", {})
    lines = [
        f"# {name}",
        "",
        TASK_TEXT[name],
        "",
        *([f"**Placeholder:** {meta['placeholder']}", ""] if meta.get("placeholder") else []),
        "| | |",
        "|---|---|",
        f"| architecture | {_arch_text(meta['arch'])} |",
        f"| parameters | {size / 1e6:.2f} M (float16 on disk, float32 at run time) |",
        f"| chunk | {_chunk_text(cfg, meta)} |",
        f"| default sampling | {(meta.get('inference') or meta['sampling'])['steps']} Euler step(s) from start level "
        f"{(meta.get('inference') or meta['sampling'])['start_sigma']} (data in [-1, 1]) |",
        f"| training | {meta['step']} steps, {meta['train_seconds'] / 60:.0f} min wall"
        f"{'' if any(h.get('device') for h in meta['history']) else ' on a 2-core CPU'}; "
        + "; ".join(_phase_text(h) for h in meta["history"]) + " |",
        f"| data | {data.get('sequences')} sequences, {data.get('frames')} frames "
        f"({data.get('stills')} still images made into clips): {', '.join(data.get('sources', []))}"
        f"{'; ' + data['note'] if data.get('note') else ''} |",
        f"| git commit | {meta.get('git_commit')} |",
        *([f"| last stage | each restored frame averaged with its motion-aligned restored neighbours, weighted by "
           f"the learned fusion `{meta['inference']['fuse_net']}` (restore/diffusion/fusenet.py; trained on this "
           "model's own outputs by scripts/train_fusenet.py: retrain it when these weights change) |"]
          if (meta.get("inference") or {}).get("fuse_net") else []),
        "",
        "Training curve: `" + name + ".log.csv` (step, wall seconds, loss, and every `val_every` steps the "
        "quick validation: PSNR, the degraded input's PSNR and LPIPS on a 192 px crop of davis-dog; "
        "`est_loss`, where logged, is the loss of the degraded estimate itself on the same batches).",
        "",
    ]
    rows = validation_rows(name, results) if results else []
    if rows:
        where = ("docs/deblock-validation.md, `restore bench --tasks deblock`" if name == "deblock"
                 else "docs/validation.md, `restore bench --data ../shared/data/val`")
        lines += [f"## Validation ({where})", "",
                  "Ours, and the best classical method and peer by RGB-PSNR and by LPIPS:", ""]
        lines += rows
    if meta.get("placeholder"):
        lines += ["## Licence and data", "", "Trained on the bundled sample clip only (Big Buck Bunny, "
                  "(c) Blender Foundation, CC BY 3.0; see data/CREDITS.md).", ""]
        return "\n".join(lines)
    lines += ["## Licence and data", "",
              "Trained on DAVIS-2016 (CC BY 4.0), Vimeo-90K septuplets (non-commercial research use), "
              "BSD100, Urban100 and short handheld clips. Because of Vimeo-90K's terms, check the data "
              "licences before using these weights commercially (or retrain on your own footage with "
              "`restore train --data`).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--from", dest="src", type=Path, help="training runs folder (runs/<name>/<name>.*) to export")
    p.add_argument("--models", default=",".join(NAMES), help="which models --from exports (default: all)")
    p.add_argument("--validation", type=Path, action="append", default=None,
                   help="bench JSON(s) whose rows go into the cards (repeatable; default docs/validation.json "
                        "and docs/deblock-validation.json)")
    p.add_argument("--steps", action="append", default=[], help="NAME=N default sampling steps")
    p.add_argument("--start-sigma", action="append", default=[], help="NAME=S default start level")
    args = p.parse_args(argv)
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    if args.src:
        for name in args.models.split(","):
            export(args.src, name.strip())
    for opt, key, cast in ((args.steps, "steps", int), (args.start_sigma, "start_sigma", float)):
        for item in opt:
            name, value = item.split("=", 1)
            path = WEIGHTS / f"{name}.yaml"
            meta = yaml.safe_load(path.read_text())
            meta["sampling"][key] = cast(value)
            if meta.get("inference"):  # restorers read the inference block first
                meta["inference"][key] = cast(value)
            path.write_text(yaml.safe_dump(meta, sort_keys=False))
    results = {}
    for path in args.validation or [REPO / "docs" / "validation.json", REPO / "docs" / "deblock-validation.json"]:
        if path.exists():
            results.update(json.loads(path.read_text()).get("tasks", {}))
    from safetensors.torch import load_file

    for name in NAMES:
        if not (WEIGHTS / f"{name}.yaml").exists():
            continue
        meta = yaml.safe_load((WEIGHTS / f"{name}.yaml").read_text())
        size = sum(t.numel() for t in load_file(str(WEIGHTS / f"{name}.safetensors")).values())
        (WEIGHTS / f"{name}.md").write_text(card(name, meta, results, size))
        print(f"wrote {WEIGHTS / (name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
