"""One vocabulary: enhance tasks (restore.registry.TASKS) and shipped model names
(restore.diffusion.zoo.MODELS), each spelled in one table."""
from __future__ import annotations

from importlib.resources import files

import pytest
import yaml

from restore import registry
from restore.diffusion import zoo
from restore.diffusion.tasks import TASKS as TRAIN_TASKS
from restore.errors import ConfigError


@pytest.mark.parametrize("m", zoo.MODELS, ids=lambda m: m.name)
def test_each_shipped_model_has_its_training_config(m):
    assert m.task in registry.TASKS and m.train_task in TRAIN_TASKS
    cfg = yaml.safe_load(files("restore.configs").joinpath("train", f"{m.name}.yaml").read_text())
    assert cfg["name"] == m.name and cfg["task"] == m.train_task
    if m.train_task == "sr":
        assert cfg["scale"] == m.scale


def test_model_names_by_task():
    assert zoo.NAMES == ("deblock", "denoise", "denoise-aligned", "sr-x2", "sr-x4", "interp-x2")
    assert [zoo.model_name(t) for t in ("deblock", "denoise", "interpolate")] == ["deblock", "denoise", "interp-x2"]
    assert zoo.model_name("upscale", 4) == "sr-x4"
    with pytest.raises(ConfigError, match="upscale x3"):
        zoo.model_name("upscale", 3)


def test_train_help_and_model_cards_take_the_names_from_the_table(capsys):
    from restore.cli.main import main

    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ", ".join(zoo.NAMES) in out


def test_restore_models_names_the_shipped_models(capsys):
    import json

    from restore.cli.main import main

    assert main(["models", "--json"]) == 0
    rows = {(r["task"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    for m in zoo.MODELS:
        if zoo.available(m.name):
            assert m.name in [x["name"] for r in rows.values() if r["task"] == m.task and r["family"] == "diffusion"
                              for x in r["models"]]
    assert [x["name"] for x in rows[("denoise", "diffusion")]["models"]] == ["denoise"]
    assert rows[("upscale", "lanczos")]["models"] == []
