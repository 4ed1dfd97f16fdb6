"""A warehouse made by real runs of the demo recipe: version 1 released as 1.0.0, then a newer
draft (version 2) committed by a second run over one more day of sources."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

import pytest
from examples.qingdao_demo import generate

from pipelines.cli.app import main
from tests.pipelines.conftest import demo_recipe

NAME = "demo-test"


class Released(NamedTuple):
    root: Path  # holds sources/, the recipe and warehouse/
    warehouse: Path
    recipe: Path
    released: str  # version id of 1.0.0
    draft: str  # version id of the newer draft


def _newest_version(warehouse: Path) -> str:
    return sorted((warehouse / "datasets" / NAME / "versions").iterdir())[-1].name


@pytest.fixture(scope="module")
def released_then_draft(tmp_path_factory: pytest.TempPathFactory) -> Released:
    root = tmp_path_factory.mktemp("released_then_draft")
    warehouse = root / "warehouse"
    recipe = demo_recipe(root)
    generate(root / "sources", days=1)
    assert main(["--warehouse", str(warehouse), "run", str(recipe)]) == 0
    released = _newest_version(warehouse)
    assert main(["--warehouse", str(warehouse), "release", f"{NAME}@{released}"]) == 0
    generate(root / "sources", days=1, start=dt.date(2025, 7, 2))
    assert main(["--warehouse", str(warehouse), "run", str(recipe)]) == 0
    draft = _newest_version(warehouse)
    assert draft != released
    return Released(root, warehouse, recipe, released, draft)
