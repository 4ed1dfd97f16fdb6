"""Planning without a catalog: ``haina check`` and :func:`pipelines.plan.plan_recipe` write nothing,
and the plans they return are frozen."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipelines import plan as plan_mod
from pipelines import recipe as recipe_mod
from pipelines.cli.app import main
from pipelines.driver import Runner
from tests.pipelines.conftest import demo_recipe


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_check_on_a_new_warehouse_leaves_no_warehouse_or_catalog(tmp_path, demo_sources,
                                                                 monkeypatch, capsys):
    monkeypatch.delenv("HAINA_WAREHOUSE", raising=False)
    monkeypatch.delenv("HAINA_CATALOG_URL", raising=False)
    recipe = demo_recipe(tmp_path)
    warehouse = tmp_path / "not-yet" / "warehouse"
    before = _tree(tmp_path)

    assert main(["--warehouse", str(warehouse), "check", str(recipe)]) == 0

    printed = capsys.readouterr().out
    assert f"catalog: none yet at sqlite:///{warehouse}/catalog.db" in printed
    assert "recipe OK" in printed
    assert not warehouse.parent.exists()
    assert _tree(tmp_path) == before, "check wrote something"


def test_runner_constructor_and_plan_touch_no_catalog(tmp_path, demo_sources, monkeypatch):
    """A Runner holds settings only: constructing one and planning with it opens nothing."""
    warehouse = tmp_path / "elsewhere"
    monkeypatch.setenv("HAINA_WAREHOUSE", str(warehouse))
    runner = Runner(recipe_mod.load(demo_recipe(tmp_path)))
    entries, schema, suites = runner.plan()
    assert len(entries) == 2 and "sea_water_salinity_qc" in schema.names and suites
    assert "catalog" not in vars(runner), "the catalog was opened"
    assert not warehouse.exists()


def test_the_recipe_plan_is_frozen_and_complete(tmp_path, demo_sources):
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    planned = plan_mod.plan_recipe(recipe)
    assert [(entry, Path(p.uri).name) for entry, p in planned.entries] == [
        (0, "qingdao_coastal_20250701.nc"), (0, "qingdao_coastal_20250702.nc")]
    assert planned.chunks == 8
    dataset = planned.dataset
    assert dataset.qc is not None and dataset.qc.enabled
    assert "sea_water_salinity_qc" in dataset.schema.names
    assert "sea_water_salinity_qc" not in dataset.read_schema.names
    assert [s["name"] for s in dataset.suites][:2] == ["haina.kind.grid", "haina.coordinates"]
    assert len(dataset.checks) == sum(len(s["expectations"]) for s in dataset.suites)
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.dataset = dataset  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.suites = ()  # type: ignore[misc]


def test_the_ingest_plan_is_what_the_dataset_plan_decided(tmp_path, demo_sources):
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    planned = plan_mod.plan_recipe(recipe)
    ingest = plan_mod.ingest_plan(recipe, planned.entries, planned.dataset, run_id="r-1",
                                  version_id="v-1", staging="/staging")
    assert ingest.qc_plan is planned.dataset.qc
    assert ingest.read_schema is planned.dataset.read_schema
    assert ingest.dataset_schema is planned.dataset.schema
    assert ingest.checks is planned.dataset.checks
    assert dict(ingest.kv_metadata) == {"haina.dataset": "demo-test", "haina.version": "v-1",
                                        "haina.run_id": "r-1", "haina.licence": "CC0-1.0",
                                        "haina.attribution": "Synthetic test data"}
    assert len(ingest.chunks) == 8 and set(ingest.schemas) == {
        f"{p.uri}" for _, p in planned.entries}


def test_plan_dataset_of_only_carried_files_reads_and_judges_nothing(tmp_path, demo_sources):
    """A run that only carries files over (or drops sources) keeps the previous schema."""
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    previous = plan_mod.plan_recipe(recipe).dataset.schema
    dataset = plan_mod.plan_dataset(recipe, (), previous, "v-previous")
    assert dataset.schema is previous and dataset.read_schema is previous
    assert (dataset.qc, dataset.suites, dataset.checks) == (None, (), ())
