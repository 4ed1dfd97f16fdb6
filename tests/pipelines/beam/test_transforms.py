"""The Beam composite on its own: Create -> Ingest -> files and a summary in staging."""
from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from catalog import store
from pipelines import plan as plan_mod
from pipelines import recipe as recipe_mod
from pipelines.beam.transforms import Ingest
from tests.pipelines.conftest import demo_recipe


def test_ingest_writes_files_and_an_exact_summary(tmp_path, demo_sources, tmp_warehouse):
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    planned = plan_mod.plan_recipe(recipe)
    staging = str(tmp_path / "staging")
    plan = plan_mod.ingest_plan(recipe, planned.entries, planned.dataset,
                                run_id=store.new_run_id(), version_id="v-test", staging=staging)
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


def _chunks(counts: dict[str, int]):
    from connectors.base import ChunkSpec

    return [ChunkSpec(source_index=i, uri=uri, sha256="ab" * 32, ordinal=k, dim="time",
                      start=k, stop=k + 1)
            for i, (uri, n) in enumerate(counts.items()) for k in range(n)]


@pytest.mark.parametrize("counts, workers, expected", [
    ({"a": 240}, 2, {"a": 2}),          # one big file: both workers get half
    ({"a": 7}, 2, {"a": 1}),            # too few chunks to be worth cutting
    ({"a": 8, "b": 3}, 4, {"a": 2, "b#1": 1}),  # b is read by recipe entry 1
    ({"a": 100}, 1, {"a": 1}),
])
def test_chunk_ranges(counts, workers, expected):
    from pipelines.beam.transforms import chunk_ranges

    assert chunk_ranges(_chunks(counts), workers) == expected


def test_ranges_are_contiguous_and_in_order():
    from pipelines.beam.transforms import _keyed_by_range, chunk_ranges

    chunks = _chunks({"a": 10})
    ranges = chunk_ranges(chunks, 2)
    keys = [_keyed_by_range(c, ranges, {"a": 10})[0][2] for c in chunks]
    assert keys == [0] * 5 + [1] * 5


@pytest.mark.parametrize("beam_args, workers, chunks, mode, count", [
    ([], 3, 100, "multi_threading", 3),
    ([], 3, 2, "multi_threading", 2),       # never more workers than chunks
    ([], 1, 100, "in_memory", 1),
    # the user's Beam options win; worker processes share no memory with the driver
    (["--direct_num_workers=2", "--direct_running_mode=multi_processing"], 4, 100,
     "multi_processing", 1),
    (["--direct_num_workers=2", "--direct_running_mode=multi_threading"], 4, 100,
     "multi_threading", 2),
    (["--runner=FlinkRunner"], 4, 100, "in_memory", 1),  # not ours to set on other runners
])
def test_pipeline_options(beam_args, workers, chunks, mode, count):
    from apache_beam.options.pipeline_options import DirectOptions

    from pipelines.beam.options import pipeline_options

    options, threads = pipeline_options(beam_args, workers, chunks)
    assert (options.view_as(DirectOptions).direct_running_mode, threads) == (mode, count)


def test_auto_workers_is_one_per_core():
    from pipelines.beam.options import resolve_workers

    assert resolve_workers("auto", 10_000) == (os.cpu_count() or 1)
    assert resolve_workers("auto", 1) == 1
