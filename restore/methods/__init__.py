"""The restoration methods: plugins of restore.registry.

Importing this package is the discovery: it imports every module in it, in name order, and their
@register decorators fill the registry. Nothing is skipped quietly: a plugin that fails to import
fails the import of this package. A model whose weights are not shipped registers nothing
(methods/diffusion.py asks the model zoo), which is not an error.

- classical.py  non-learned baselines (nlmeans; lanczos, bicubic; dis, blend)
- damage.py     the blind compression-damage estimate behind `--deblock auto` (registers nothing)
- deblock.py    the deblock strength contract and its classical method (dct)
- diffusion.py  the shipped conditional video diffusion models (the defaults when present)
"""
from __future__ import annotations

import importlib
import pkgutil

PLUGINS = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))

for _name in PLUGINS:
    importlib.import_module(f"{__name__}.{_name}")
