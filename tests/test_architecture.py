"""The import contract of docs/ARCHITECTURE.md, checked on the source (AST, nothing imported).

Every `import` counts, the ones inside functions too: an import deferred into a function is still
a dependency, and a cycle hidden that way is still a cycle. Checked:

- layers: a component imports only from its own layer or the layers below (LAYERS);
- the base layer (primitives, errors, device, the registry) imports nothing of restore but
  restore.errors: the registry is a leaf that knows no plugin;
- no cycles, between modules or between components (a package and a top-level module are one
  component each);
- no private name across modules: `from x import _name` only inside x itself, and a private
  module (`_av.py`) only from its own package;
- restore.metrics reads and writes video only through restore.io (no PyAV, no OpenCV capture).

Run `python tests/test_architecture.py [ROOT]` to print every violation of a source tree.
"""
from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top; a component may import from its own layer (without cycles) and from any below.
LAYERS = [
    ("base", ["restore", "restore.errors", "restore.ops", "restore.device", "restore.registry"]),
    ("io", ["restore.io"]),
    ("domain", ["restore.metrics", "restore.diffusion", "restore.methods", "restore.chunks",
                "restore.config"]),
    ("application", ["restore.pipeline", "restore.seams", "restore.batch", "restore.eval"]),
    ("interface", ["restore.cli"]),
]
BASE_MAY_IMPORT = {"restore.errors"}

# Known, named exceptions, each with the reason it is not fixed yet. Keep this short.
PRIVATE_IMPORT_EXCEPTIONS: set = set()
CYCLE_EXCEPTIONS: set = set()


def _module_files(root: Path) -> dict[str, Path]:
    """Module name -> file, with cli/ installed as restore.cli (pyproject package-dir)."""
    out = {}
    for base, prefix in ((root / "restore", "restore"), (root / "cli", "restore.cli")):
        for dirpath, dirnames, filenames in os.walk(base):  # symlinked folders are not followed
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__"
                                 and not (Path(dirpath) / d).is_symlink())
            rel = Path(dirpath).relative_to(base).parts
            for f in filenames:
                if not f.endswith(".py"):
                    continue
                parts = [prefix, *rel] + ([] if f == "__init__.py" else [f[:-3]])
                out[".".join(parts)] = Path(dirpath) / f
    return out


def _is_package(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def _imports(name: str, path: Path, files: dict[str, Path]):
    """(target module, imported names or None, line) for each restore import in one file."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if _is_package(name, files) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "restore" or a.name.startswith("restore."):
                    yield _existing(a.name, files), None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if not (mod == "restore" or mod.startswith("restore.")):
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if sub in files:  # `from pkg import module`
                    yield sub, None, node.lineno
                else:
                    yield _existing(mod, files), a.name, node.lineno


def _existing(mod: str, files: dict[str, Path]) -> str:
    while mod not in files and "." in mod:
        mod = mod.rpartition(".")[0]
    return mod


def component(mod: str) -> str:
    """The package directly under restore (restore.io), or the top-level module (restore.config)."""
    parts = mod.split(".")
    return ".".join(parts[:2])


def _layer_of() -> dict[str, int]:
    return {c: i for i, (_, comps) in enumerate(LAYERS) for c in comps}


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop(); on.discard(w); comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def violations(root: Path = ROOT) -> dict[str, list[str]]:
    files = _module_files(root)
    layer = _layer_of()
    found = {"unplaced": [], "layers": [], "base": [], "module cycles": [], "component cycles": [],
             "private": [], "metrics io": []}
    mod_graph: dict[str, set[str]] = {m: set() for m in files}
    comp_graph: dict[str, set[str]] = {}
    for name, path in sorted(files.items()):
        src = component(name)
        if src not in layer:
            found["unplaced"].append(f"{name}: component {src} is in no layer")
            continue
        for target, imported, line in _imports(name, path, files):
            where = f"{path.relative_to(root)}:{line}"
            dst = component(target)
            if target != name:
                mod_graph[name].add(target)
            if dst != src:
                comp_graph.setdefault(src, set()).add(dst)
                if dst not in layer:
                    found["unplaced"].append(f"{where}: {target} is in no layer")
                elif layer[dst] > layer[src]:
                    found["layers"].append(f"{where}: {name} ({LAYERS[layer[src]][0]}) imports "
                                           f"{target} ({LAYERS[layer[dst]][0]}), a layer above")
                elif layer[src] == 0 and dst not in BASE_MAY_IMPORT:
                    found["base"].append(f"{where}: {name} (base layer) imports {target}")
            if imported and imported.startswith("_") and not imported.endswith("__") and target != name \
                    and (name, target, imported) not in PRIVATE_IMPORT_EXCEPTIONS:
                found["private"].append(f"{where}: {name} imports private {target}.{imported}")
            private_mod = next((p for p in target.split(".") if p.startswith("_")), None)
            if private_mod:
                owner = target[:target.index("." + private_mod)]
                if not (name == owner or name.startswith(owner + ".")):
                    found["private"].append(f"{where}: {name} imports the private module {target} "
                                            f"from outside {owner}")
        if src == "restore.metrics":
            text = path.read_text()
            tree = ast.parse(text)
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "av" or n.startswith("av.") for n in names):
                    found["metrics io"].append(f"{path.relative_to(root)}:{node.lineno}: imports PyAV")
                if isinstance(node, ast.Attribute) and node.attr == "VideoCapture":
                    found["metrics io"].append(f"{path.relative_to(root)}:{node.lineno}: OpenCV capture")
    for cyc in _sccs(mod_graph):
        if tuple(cyc) not in CYCLE_EXCEPTIONS:
            found["module cycles"].append(" <-> ".join(cyc))
    for cyc in _sccs(comp_graph):
        found["component cycles"].append(" <-> ".join(cyc))
    return found


_FOUND = None


def _found() -> dict[str, list[str]]:
    global _FOUND
    if _FOUND is None:
        _FOUND = violations()
    return _FOUND


def _check(kind: str) -> None:
    bad = _found()[kind]
    assert not bad, f"{kind} ({len(bad)}):\n  " + "\n  ".join(bad)


def test_every_component_is_in_a_layer():
    _check("unplaced")


def test_no_upward_imports():
    _check("layers")


def test_base_layer_imports_only_errors_and_the_registry_is_a_leaf():
    _check("base")


def test_no_import_cycles_between_modules():
    _check("module cycles")


def test_no_import_cycles_between_components():
    _check("component cycles")


def test_no_private_names_across_modules():
    _check("private")


def test_metrics_decode_only_through_io():
    _check("metrics io")


def test_the_contract_catches_what_it_claims(tmp_path):
    """A tree with one violation of each kind fails each check (the checker is not vacuous)."""
    files = {
        "restore/__init__.py": "",
        "restore/errors.py": "",
        "restore/device.py": "",
        "restore/registry.py": "from . import device\n\ndef get():\n    from .methods import plugin\n",
        "restore/ops/__init__.py": "",
        "restore/ops/flow.py": "from restore.io import x\n",
        "restore/io/__init__.py": "",
        "restore/io/_av.py": "",
        "restore/io/encode.py": "from .mux import remux\n\ndef _format_for(p):\n    pass\n",
        "restore/io/mux.py": "def remux():\n    from restore.io.encode import _format_for\n",
        "restore/methods/__init__.py": "",
        "restore/methods/plugin.py": "from ..registry import get\n",
        "restore/metrics/__init__.py": "import av\n",
        "restore/batch/__init__.py": "from restore.io._av import local_url\n",
        "restore/stray.py": "",
        "cli/__init__.py": "",
    }
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    found = violations(tmp_path)
    assert any("restore.stray" in v for v in found["unplaced"])
    assert any("restore.ops.flow" in v for v in found["layers"])
    assert any("restore.registry" in v and "restore.methods" in v for v in found["layers"])
    assert any("restore.registry" in v and "restore.device" in v for v in found["base"])
    assert any("restore.io.encode" in v and "restore.io.mux" in v for v in found["module cycles"])
    assert any("restore.methods" in v and "restore.registry" in v for v in found["component cycles"])
    assert any("_format_for" in v for v in found["private"])
    assert any("restore.io._av" in v and "restore.batch" in v for v in found["private"])
    assert found["metrics io"]


if __name__ == "__main__":
    result = violations(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
    for kind, items in result.items():
        print(f"{kind}: {len(items)}")
        for item in items:
            print("  " + item)
    sys.exit(1 if any(result.values()) else 0)
