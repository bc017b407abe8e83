"""A plain `pip install .` ships every package: pyproject lists packages by hand (cli/, configs/
and data/ install inside the restore namespace), so a new package must be added there too."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_under_restore_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "restore").rglob("__init__.py")
             if "__pycache__" not in p.parts}
    missing = found - listed
    assert not missing, f"packages missing from pyproject.toml [tool.setuptools] packages: {sorted(missing)}"
