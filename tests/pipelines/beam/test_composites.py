"""Each composite of the pipeline on the DirectRunner: Create -> composite -> assert_that, and the
step's Beam counters read back from the PipelineResult."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.util import assert_that, equal_to

from catalog.storage.writer import WriteOptions, footer_metadata
from connectors.base import ChunkSpec, ColumnInfo, quarantine_table
from expectations.qc.apply import extend_schema
from expectations.qc.config import QCConfig
from expectations.qc.plan import plan_qc
from expectations.validation.checks import compile_checks
from pipelines import plan as plan_mod
from pipelines import recipe as recipe_mod
from pipelines.beam import steps, transforms
from pipelines.driver import Runner
from pipelines.splits import SplitConfig
from tests.pipelines.conftest import demo_recipe

UTC = dt.UTC
SUITES = [{"name": "s", "expectations": [
    {"type": "expect_column_values_to_be_between",
     "kwargs": {"column": "sea_water_temperature", "min_value": -2, "max_value": 40}},
    {"type": "expect_compound_columns_to_be_unique",
     "kwargs": {"column_list": ["station_id", "time"]}},
]}]


def run(build: Callable[[beam.Pipeline], None]) -> dict[str, int]:
    """Build a pipeline, run it on the DirectRunner (assert_that fails the run), return its
    ``haina`` counters."""
    pipeline = beam.Pipeline("DirectRunner")
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    return transforms.counter_totals(result.metrics())


def step_counts(counters: dict[str, int], step: str) -> dict[str, int]:
    return {name.split(".", 1)[1]: value for name, value in counters.items()
            if name.startswith(f"{step}.")}


def table(hours: int = 3, *, temps: list[float] | None = None, station: str = "S1") -> pa.Table:
    return pa.table({
        "time": pa.array([dt.datetime(2025, 1, 1, h, tzinfo=UTC) for h in range(hours)],
                         pa.timestamp("us", tz="UTC")),
        "latitude": pa.array([10.0 + h for h in range(hours)]),
        "station_id": pa.array([station] * hours),
        "sea_water_temperature": pa.array(temps or [12.0] * hours, pa.float64()),
        "source_file": pa.array(["a.csv"] * hours),
    })


def chunk(ordinal: int = 0, uri: str = "a.csv") -> ChunkSpec:
    return ChunkSpec(source_index=0, uri=uri, sha256="ab" * 32, ordinal=ordinal)


def output(data: pa.Table, ordinal: int = 0, quarantine: pa.Table | None = None
           ) -> steps.ChunkOutput:
    return steps.ChunkOutput(chunk(ordinal), data, rows_in=data.num_rows, rows_dropped=0,
                             quarantine=quarantine)


def shape(out: steps.ChunkOutput) -> tuple[int, int, int]:
    return out.chunk.ordinal, out.table.num_rows, out.rows_quarantined


def test_read_counts_chunks_files_and_rows(tmp_path, demo_sources):
    recipe = recipe_mod.load(demo_recipe(tmp_path))
    planned = plan_mod.plan_recipe(recipe)
    plan = plan_mod.ingest_plan(recipe, planned.entries, planned.dataset, run_id="r-test",
                                version_id="v-test", staging=str(tmp_path / "staging"))
    cells = 4 * 5 * 71 * 101  # time x depth x lat x lon of each file

    def build(p: beam.Pipeline) -> None:
        read = (p | beam.Create(list(plan.chunks))
                | transforms.Read(plan.configs, plan.schemas, planned.dataset.read_schema))
        rows = read | beam.Map(lambda out: (out.rows_in, out.error))
        assert_that(rows, equal_to([(cells // 4, None)] * 8))

    counts = step_counts(run(build), "read")
    assert counts["chunks_in"] == counts["chunks_out"] == 8
    assert counts["source_files"] == 2
    assert counts["rows_in"] == 2 * cells
    assert counts["rows_in"] == counts["rows_out"] + counts["rows_dropped"] \
        + counts["rows_quarantined"]
    assert counts["rows_dropped"] > 0 and counts.get("chunk_errors", 0) == 0


def test_qc_quarantines_hard_failures_and_counts_them():
    columns = [ColumnInfo("time", "coordinate"), ColumnInfo("latitude", "coordinate"),
               ColumnInfo("station_id", "id"), ColumnInfo("sea_water_temperature", "variable"),
               ColumnInfo("source_file", "source")]
    qc = plan_qc(columns, QCConfig(hard_tests=["gross_range"]))
    schema = extend_schema(table().schema, qc)
    inputs = [output(table(temps=[12.0, 99.5, 13.0])), output(table(), ordinal=1)]

    def build(p: beam.Pipeline) -> None:
        flagged = p | beam.Create(inputs) | transforms.QC(qc, schema)
        assert_that(flagged | beam.Map(shape), equal_to([(0, 2, 1), (1, 3, 0)]))

    counts = step_counts(run(build), "qc")
    assert counts == {"chunks_in": 2, "chunks_out": 2, "rows_in": 6, "rows_out": 5,
                      "rows_quarantined": 1}
    assert inputs[0].table.num_rows == 3 and inputs[0].quarantine is None, "input not mutated"


def test_split_fills_the_split_column_and_counts_rows():
    config = SplitConfig(by="station_id")

    def build(p: beam.Pipeline) -> None:
        split = (p | beam.Create([output(table(station="S1")), output(table(2, station="S2"), 1)])
                 | transforms.Split(config))
        names = split | beam.Map(lambda out: (out.chunk.ordinal, "split" in out.table.column_names,
                                              out.table.num_rows))
        assert_that(names, equal_to([(0, True, 3), (1, True, 2)]))

    counts = step_counts(run(build), "split")
    assert counts == {"chunks_in": 2, "chunks_out": 2, "rows_in": 5, "rows_out": 5,
                      "rows_quarantined": 0}


def test_validate_attaches_metrics_and_counts_rows():
    checks = compile_checks(SUITES)

    def build(p: beam.Pipeline) -> None:
        validated = (p | beam.Create([output(table(temps=[12.0, 45.0, 13.0]))])
                     | transforms.Validate(checks, SUITES, "arrow"))
        unexpected = validated | beam.Map(
            lambda out: out.metrics["checks"]["s[0]"]["unexpected"])
        assert_that(unexpected, equal_to([1]))

    counts = step_counts(run(build), "validate")
    assert counts == {"chunks_in": 1, "chunks_out": 1, "rows_in": 3, "rows_out": 3,
                      "rows_quarantined": 0}


def test_write_writes_data_and_quarantine_files_and_counts_them(tmp_path):
    bad = quarantine_table(["bad_time"], [""], "a.csv", [7], ["x"])
    staging = str(tmp_path / "staging")

    def build(p: beam.Pipeline) -> None:
        outputs = (p | beam.Create([output(table(), 0, quarantine=bad), output(table(), 1)])
                   | transforms.Write(staging, footer_metadata("t", "v-test", "r-test"),
                                      WriteOptions(), "none", 10**9, 10**9))
        kinds = outputs.files | beam.Map(lambda f: (f["partition"], f["rows"]))
        assert_that(kinds, equal_to([("quarantine", 1), ("", 6)]), label="files")
        rows = outputs[transforms.WriteFilesFn.SUMMARY] | beam.Map(
            lambda s: s["sources"]["a.csv"]["rows_out"])
        assert_that(rows, equal_to([3, 3]), label="summaries")

    counts = step_counts(run(build), "write")
    written = sorted(Path(staging).rglob("*.parquet"))
    assert len(written) == 2
    assert counts["chunks_in"] == 2 and counts["rows_in"] == 6
    assert (counts["files_written"], counts["rows_written"]) == (1, 6)
    assert (counts["quarantine_files"], counts["quarantine_rows"]) == (1, 1)
    assert counts["bytes_written"] + counts["quarantine_bytes"] == \
        sum(path.stat().st_size for path in written)
    assert sum(pq.ParquetFile(path).metadata.num_rows for path in written) == 7


def test_count_duplicates_finds_keys_repeated_across_chunks():
    unique = {c.id: c for c in compile_checks(SUITES) if c.family == "compound"}
    # chunk 1 repeats chunk 0's first two (station, time) keys: 4 rows hold a repeated key
    inputs = [output(table(3)), output(table(2), ordinal=1), output(table(1, station="S2"), 2)]

    def build(p: beam.Pipeline) -> None:
        parts = p | beam.Create(inputs) | transforms.CountDuplicates(unique)
        merged = (parts | beam.combiners.ToList()
                  | beam.Map(lambda summaries: sum(steps.duplicates_found(s)
                                                   for s in summaries)))
        assert_that(merged, equal_to([4]))

    counts = step_counts(run(build), "duplicates")
    assert counts["chunks_in"] == 3 and counts["duplicates"] == 4
    assert counts["key_parts"] >= 3 and counts["buckets"] >= 1


def test_collect_files_and_summarize_write_json_and_count(tmp_path):
    staging = str(tmp_path)
    records = [{"path": "data/a.parquet", "rows": 3}, {"path": "data/b.parquet", "rows": 2}]
    summaries = [steps.chunk_summary(output(table(), i)) for i in range(3)]

    def build(p: beam.Pipeline) -> None:
        files = (p | "Files" >> beam.Create(records)
                 | transforms.CollectFiles(f"{staging}/files.json", staging))
        summary = (p | "Summaries" >> beam.Create(summaries)
                   | transforms.Summarize(f"{staging}/summary.json", staging))
        assert_that(files, equal_to([f"{staging}/files.json"]), label="files")
        assert_that(summary, equal_to([f"{staging}/summary.json"]), label="summary")

    counts = run(build)
    listed = json.loads((tmp_path / "files.json").read_text())
    merged = json.loads((tmp_path / "summary.json").read_text())
    assert sorted(f["path"] for f in listed) == ["data/a.parquet", "data/b.parquet"]
    assert (merged["sources"]["a.csv"]["chunks"], merged["sources"]["a.csv"]["rows_out"]) == (3, 9)
    assert step_counts(counts, "collect_files") == {
        "files_in": 2, "json_files": 1, "json_bytes": (tmp_path / "files.json").stat().st_size}
    assert step_counts(counts, "summarize") == {
        "summaries_in": 3, "json_files": 1,
        "json_bytes": (tmp_path / "summary.json").stat().st_size}


def test_distribute_hands_whole_ranges_in_chunk_order():
    chunks = [chunk(k) for k in range(8)]

    def build(p: beam.Pipeline) -> None:
        spread = p | transforms.Distribute(chunks, workers=2)
        assert_that(spread | beam.Map(lambda c: c.ordinal), equal_to(list(range(8))))

    run(build)


def test_ingest_counters_agree_with_the_run_summary(tmp_path, demo_sources, tmp_warehouse):
    """A whole run: the driver reads the pipeline's counters back, and they tell the same
    story as the exact summary the run commits."""
    outcome = Runner(recipe_mod.load(demo_recipe(tmp_path))).run()
    c, counts = outcome.counters, outcome.counts
    assert (c["read.chunks_in"], c["read.rows_in"], c["read.rows_dropped"]) == \
        (counts["chunks"], counts["rows_in"], counts["rows_dropped"])
    assert c["read.rows_quarantined"] + c["qc.rows_quarantined"] == counts["rows_quarantined"]
    assert c["write.rows_written"] == counts["rows_out"]
    data_files = [f for f in outcome.files if f["partition"] != "quarantine"]
    assert c["write.files_written"] == len(data_files)
    assert c["write.bytes_written"] == sum(f["bytes"] for f in data_files)
    assert c["summarize.summaries_in"] == counts["chunks"]
