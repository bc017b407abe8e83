#!/usr/bin/env python
"""The validation table (docs/validation.md): `restore bench` on ../shared/data/val with every method
and peer, written where the docs keep it. A thin shell over restore.eval.run_bench.

    .venv/bin/python scripts/validate_models.py --dvdnet ~/peers/dvdnet --peers-dir ~/peers/site
    .venv/bin/python scripts/validate_models.py --weights-dir /tmp/w --tasks denoise25 --frames 4   # a quick look

Same as `restore bench --data ../shared/data/val --md docs/validation.md --out docs/validation-plots
--tuning-cache docs/validation-tuning.json`; --weights-dir points our models at a training run's
checkpoints (<model>.safetensors + .yaml) instead of the shipped weights.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, action="append", help="data folder(s) (default ../shared/data/val)")
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default 10)")
    p.add_argument("--methods", default=None, help="comma-separated method names (default: all)")
    p.add_argument("--weights-dir", type=Path, help="folder with <model>.safetensors + .yaml (default: shipped weights)")
    p.add_argument("--dvdnet", type=Path, help="DVDnet peer folder (authors' code + weights)")
    p.add_argument("--peers-dir", type=Path, action="append", default=[], help="pip --target folder of peer packages")
    p.add_argument("--device", default="auto")
    p.add_argument("--md", type=Path, default=REPO / "docs" / "validation.md", help="report path (JSON beside it)")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "validation-plots", help="folder for the plots")
    p.add_argument("--tuning-cache", type=Path, default=REPO / "docs" / "validation-tuning.json")
    p.add_argument("--retune", action="store_true")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="only rewrite --md from the numbers in JSON (e.g. docs/validation.json), running nothing")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.weights_dir is not None:
        if not args.weights_dir.is_dir():
            print(f"validate_models: --weights-dir {args.weights_dir}: not a folder", file=sys.stderr)
            return 2
        # Before anything imports restore.methods.diffusion: it registers the models it finds there.
        os.environ["RESTORE_WEIGHTS_DIR"] = str(args.weights_dir.resolve())
    if args.render is not None:
        import json

        from restore.eval.report import render

        try:
            text = render(json.loads(args.render.read_text()))
        except (OSError, ValueError, KeyError) as err:
            print(f"validate_models: --render {args.render}: {err}", file=sys.stderr)
            return 2
        args.md.write_text(text)
        sys.stdout.write(text)
        return 0
    from restore.errors import RestoreError
    from restore.eval.bench import run_bench
    from restore.eval.methods import DEFAULT_TASKS
    from restore.eval.report import render

    data = args.data or [REPO.parent / "shared" / "data" / "val"]
    command = shlex.join(["python", "scripts/validate_models.py"] + (sys.argv[1:] if argv is None else list(argv)))
    try:
        results = run_bench(data, args.tasks or ",".join(DEFAULT_TASKS), frames=args.frames, methods=args.methods,
                            out=args.out, device=args.device, dvdnet=args.dvdnet, peers_dir=args.peers_dir,
                            tuning_cache=args.tuning_cache, retune=args.retune, md=args.md, command=command)
    except RestoreError as err:
        print(f"validate_models: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
