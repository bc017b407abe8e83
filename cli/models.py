"""`restore models`: the restoration methods the registry knows, per task."""
from __future__ import annotations

import json

import click


def _card(spec) -> str | None:
    """Model card path, for methods whose spec or factory advertises one (diffusion models)."""
    for holder in (spec, spec.factory):
        for attr in ("card", "model_card", "card_path"):
            value = getattr(holder, attr, None)
            if value:
                return str(value)
    return None


def _shipped(task: str, spec) -> list[dict]:
    """The shipped models behind a diffusion method (restore.diffusion.zoo.MODELS), with cards."""
    if spec.family != "diffusion":
        return []
    from restore.diffusion import zoo

    names = spec.models or [m.name for m in zoo.models_for(task)]
    return [{"name": n, "card": str(zoo.card_path(n))} for n in names if zoo.available(n)]


def rows() -> list[dict]:
    import restore.methods  # noqa: F401  (registers the built-in methods)
    from restore import registry

    out = []
    for task in registry.TASKS:
        specs = registry.methods(task)
        defaults = set()
        for scale in sorted({s for spec in specs for s in spec.scales}):
            try:
                defaults.add((registry.get(task, None, scale).name, scale))
            except Exception:  # noqa: BLE001 - no method at this scale: nothing to mark
                pass
        for spec in specs:
            default_scales = [s for s in spec.scales if (spec.name, s) in defaults]
            out.append({
                "task": task, "name": spec.name, "family": spec.family,
                "scales": list(spec.scales), "default": bool(default_scales),
                "default_scales": default_scales, "description": spec.description,
                "card": _card(spec), "models": _shipped(task, spec),
            })
    return out


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def command(as_json):
    """List the restoration methods per task (deblock, denoise, upscale, interpolate).

    '*' marks the method `restore enhance` uses when none is chosen; pick another with
    --model NAME (or a family: --model classical), or per task with --deblock-method,
    --denoise-method, --upscale-method, --interp-method.

    \b
    Examples:
      restore models
      restore models --json
      restore enhance clip.mp4 --scale 2 --model bicubic
    """
    data = rows()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    width = max((len(r["name"]) for r in data), default=4)
    from restore import registry

    for task in registry.TASKS:
        click.echo(f"{task}:")
        for r in (r for r in data if r["task"] == task):
            mark = "*" if r["default"] else " "
            scales = "" if r["scales"] == [1] else f" x{'/x'.join(map(str, r['scales']))}"
            click.echo(f"  {mark} {r['name'].ljust(width)}  {r['family']:<9} {r['description']}{scales}")
            if r["models"]:
                for m in r["models"]:
                    click.echo(f"    {''.ljust(width)}  model {m['name']}, card: {m['card']}")
            elif r["card"]:
                click.echo(f"    {''.ljust(width)}  card: {r['card']}")
