"""Lineage of real runs: OpenLineage events validate offline and read back with the client's
models; ``haina lineage`` shows where a version came from and where a source went."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from examples.qingdao_demo import generate

from catalog.lineage import events as lineage
from catalog.storage.warehouse import Warehouse
from catalog.store import open_catalog
from pipelines import recipe as recipe_mod
from pipelines.cli.app import main
from pipelines.driver import Runner
from tests.pipelines.conftest import demo_recipe


def _run_and_emit(recipe_path: Path, warehouse: Path):
    """Run a recipe; the Runner emits its START and COMPLETE events."""
    # full=True: the second run of the same recipe over the same files must commit a version
    outcome = Runner(recipe_mod.load(recipe_path), warehouse=str(warehouse), full=True).run()
    return outcome, open_catalog(Warehouse(str(warehouse)).catalog_url)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two datasets over the same demo file: lin-a committed twice, lin-b once."""
    root = tmp_path_factory.mktemp("lineage")
    generate(root / "sources", days=1)
    warehouse = root / "warehouse"
    a, b = demo_recipe(root, name="lin-a"), demo_recipe(root, name="lin-b")
    outcomes = [_run_and_emit(path, warehouse)[0] for path in (a, a, b)]
    catalog = open_catalog(Warehouse(str(warehouse)).catalog_url)
    return {"root": root, "warehouse": warehouse, "outcomes": outcomes, "catalog": catalog,
            "sources": sorted((root / "sources").glob("*.nc"))}


def test_events_of_a_real_run_validate_and_read_back_with_the_client(world, specs):
    from openlineage.client import event_v2
    from openlineage.client.facet_v2 import schema_dataset

    outcome = world["outcomes"][0]
    lines = lineage.read_jsonl(outcome.version_dir)
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    assert lines == lineage.events(world["catalog"], run_id=outcome.run_id)
    for event in lines:
        lineage.validate_event(event, specs)
        model = lineage.to_client_event(event)
        assert isinstance(model, event_v2.RunEvent)
        assert lineage.from_client_event(model) == event
    complete = lineage.to_client_event(lines[1])
    assert complete.run.runId == lineage.openlineage_run_id(outcome.run_id)
    assert complete.job.name == "lin-a"
    output = complete.outputs[0]
    assert isinstance(output.facets["schema"], schema_dataset.SchemaDatasetFacet)
    assert output.facets["version"].datasetVersion == outcome.version_id
    assert output.outputFacets["outputStatistics"].rowCount == outcome.counts["rows_out"]


def test_complete_event_content_matches_the_files(world):
    outcome = world["outcomes"][0]
    complete = lineage.read_jsonl(outcome.version_dir)[1]
    hashes = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in world["sources"]}
    assert {i["name"]: i["facets"]["version"]["datasetVersion"]
            for i in complete["inputs"]} == hashes
    out = complete["outputs"][0]["facets"]
    manifest = Path(outcome.version_dir, "manifest.json").read_bytes()
    assert out["haina_manifest"]["sha256"] == hashlib.sha256(manifest).hexdigest()
    uo = out["columnLineage"]["fields"]["eastward_sea_water_velocity"]["inputFields"]
    assert {f["field"] for f in uo} == {"uo"}
    assert uo[0]["transformations"][0]["description"] == "cm s-1 -> m s-1: x * 0.01"
    found = out["dataQualityAssertions"]["assertions"]
    assert len(found) == sum(v["evaluated"] for v in outcome.validation) > 0
    assert sum(a["success"] for a in found) == sum(v["successful"] for v in outcome.validation)
    assert {a["name"] for a in found} == {v["suite"] for v in outcome.validation}


def _cli(capsys, world, *args) -> str:
    capsys.readouterr()
    assert main(["--warehouse", str(world["warehouse"]), "lineage", *args]) == 0
    return capsys.readouterr().out


def test_downstream_lists_exactly_the_versions_that_used_a_source(world, capsys):
    source = world["sources"][0]
    rows = json.loads(_cli(capsys, world, "--downstream", str(source), "--format", "json"))
    expected = sorted((o.dataset, o.version_id) for o in world["outcomes"])
    assert sorted((r["dataset"], r["version_id"]) for r in rows) == expected
    assert len({r["dataset"] for r in rows}) == 2 and len(rows) == 3
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    by_hash = json.loads(_cli(capsys, world, "--downstream", sha, "--format", "json"))
    assert sorted((r["dataset"], r["version_id"]) for r in by_hash) == expected
    assert "no dataset version used" in _cli(capsys, world, "--downstream", "/nowhere.nc")


def test_upstream_tree_json_dot_and_prov(world, capsys):
    outcome = world["outcomes"][2]
    ref = f"lin-b@{outcome.version_id}"
    graph = json.loads(_cli(capsys, world, ref, "--format", "json"))
    assert graph["run"]["id"] == outcome.run_id
    assert {s["uri"] for s in graph["sources"]} == {str(p) for p in world["sources"]}
    assert graph["lineage_events"] == ["START", "COMPLETE"]
    met = sum(v["successful"] for v in outcome.validation)
    assert graph["checks"]["expectations_met"] == met
    tree = _cli(capsys, world, ref)
    assert outcome.run_id in tree and "checks passed" in tree
    assert hashlib.sha256(world["sources"][0].read_bytes()).hexdigest()[:40] in tree.replace("\n", "")
    dot = _cli(capsys, world, ref, "--format", "dot")
    assert dot.startswith("digraph lineage {") and dot.count("[label=\"used\"]") == 1
    doc = json.loads(_cli(capsys, world, ref, "--format", "prov"))
    assert f"run:{outcome.run_id}" in doc["activity"] and len(doc["used"]) == 1


def test_column_lineage_cli(world, capsys):
    column = json.loads(_cli(capsys, world, "lin-a@latest", "--column",
                             "eastward_sea_water_velocity", "--format", "json"))
    assert (column["source_name"], column["source_units"], column["units"]) == \
        ("uo", "cm s-1", "m s-1")
    assert column["conversion"] == "cm s-1 -> m s-1: x * 0.01"
    assert len(column["files"]) == 1
    capsys.readouterr()
    assert main(["--warehouse", str(world["warehouse"]), "lineage", "lin-a@latest",
                 "--column", "nope"]) == 2
    assert "has no column 'nope'" in capsys.readouterr().err
