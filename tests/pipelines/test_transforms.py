"""The Beam composite on its own: Create -> Ingest -> files and a summary in staging."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from catalog import store
from pipelines import recipe as recipe_mod
from pipelines.run import Runner
from pipelines.transforms import Ingest
from tests.pipelines.conftest import demo_recipe


def test_ingest_writes_files_and_an_exact_summary(tmp_path, demo_sources, tmp_warehouse):
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    runner = Runner(recipe)
    plans, schema, suites = runner.plan()
    staging = str(tmp_path / "staging")
    plan = runner.ingest_plan(store.new_run_id(), "v-test", plans, schema, suites, staging)
    assert len(plan.chunks) == 8  # 2 files x 4 time steps, chunk_size 1

    with TestPipeline() as p:
        files_uri, summary_uri = p | Ingest(plan)
        assert_that(files_uri, equal_to([f"{staging}/files.json"]), label="files")
        assert_that(summary_uri, equal_to([f"{staging}/summary.json"]), label="summary")

    files = json.loads((tmp_path / "staging" / "files.json").read_text())
    summary = json.loads((tmp_path / "staging" / "summary.json").read_text())
    assert {f["partition"] for f in files} == {"date=2025-07-01", "date=2025-07-02"}
    per_source = summary["sources"]
    assert len(per_source) == 2
    for rec in per_source.values():
        assert rec["chunks"] == 4
        assert rec["rows_in"] == 4 * 5 * 71 * 101  # time x depth x lat x lon
        assert rec["rows_in"] == rec["rows_out"] + rec["rows_dropped"] + rec["rows_quarantined"]
    written = sum(pq.ParquetFile(tmp_path / "staging" / f["path"]).metadata.num_rows for f in files)
    assert written == sum(rec["rows_out"] for rec in per_source.values())
    assert summary["metrics"], "validation metrics were merged"
