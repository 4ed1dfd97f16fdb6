"""A committed version is readable by every common Parquet reader, with the same rows.

The version comes from a real ``Runner`` run of the Qingdao demo grid (two days, 8 time steps,
a null-free ``date=`` partitioning); each reader gets the catalog's exact file list. Spark is not
installed in the test environment (see the catalog section of the README).
"""
from __future__ import annotations

import textwrap
import warnings

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from examples.qingdao_demo import generate

from catalog import read as api
from catalog.store import open_catalog
from pipelines import recipe as recipe_mod
from pipelines.driver import Runner

polars = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")

RECIPE = """\
name: readers-demo
title: Qingdao demo grid (readers test)
licence: CC0-1.0
owner: {name: tests}
sources:
  - kind: netcdf_grid
    uri: sources/*.nc
    chunk_dim: time
    chunk_size: 4
quality: {enabled: false}  # validation is not what this test is about
output: {partition_by: date}
"""


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readers")
    generate(folder / "sources", days=2)
    (folder / "recipe.yaml").write_text(textwrap.dedent(RECIPE))
    warehouse = folder / "warehouse"
    outcome = Runner(recipe_mod.load(folder / "recipe.yaml"), warehouse=str(warehouse)).run()
    catalog = open_catalog(f"sqlite:///{warehouse / 'catalog.db'}")
    record = catalog.version("readers-demo", outcome.version_id)
    files = api.data_files(catalog, record)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.UnreleasedVersionWarning)
        table = api.open_dataset("readers-demo", warehouse=warehouse).to_table()
    catalog.close()
    return record, files, table


def _summary(time: pa.ChunkedArray | pa.Array, thetao) -> tuple:
    """Reader-independent digest: row count, time range, mean temperature (float64)."""
    return (len(time), pc.min(time).as_py(), pc.max(time).as_py(),
            round(pc.mean(pc.cast(thetao, pa.float64())).as_py(), 6))


def test_pyarrow_open_dataset(version):
    record, files, table = version
    assert len(files) == record.file_count >= 2
    assert table.num_rows == record.rows > 0
    assert sorted(set(table["date"].to_pylist())) == ["2025-07-01", "2025-07-02"]
    assert table.schema.field("time").type == pa.timestamp("us", "UTC")


def test_pandas(version):
    record, files, table = version
    frame = pd.read_parquet(files, columns=["time", "sea_water_potential_temperature"])
    assert len(frame) == record.rows
    assert _summary(pa.array(frame["time"]), pa.array(frame["sea_water_potential_temperature"])) \
        == _summary(table["time"], table["sea_water_potential_temperature"])


def test_polars_read_and_scan(version):
    record, files, table = version
    frame = polars.read_parquet(files)
    assert frame.height == record.rows
    lazy = (polars.scan_parquet(files)
            .select(polars.len(), polars.col("sea_water_potential_temperature").cast(
                polars.Float64).mean())
            .collect())
    assert lazy.item(0, 0) == record.rows
    expected = _summary(table["time"], table["sea_water_potential_temperature"])
    got = _summary(frame["time"].to_arrow(), frame["sea_water_potential_temperature"].to_arrow())
    assert got == expected
    assert round(lazy.item(0, 1), 6) == expected[3]


def test_duckdb_with_hive_partitioning(version):
    record, files, table = version
    con = duckdb.connect()
    rows = con.execute(
        "SELECT count(*), count(DISTINCT date), avg(sea_water_potential_temperature::DOUBLE) "
        "FROM read_parquet(?, hive_partitioning = true)", [files]).fetchone()
    assert rows[0] == record.rows and rows[1] == 2
    assert round(rows[2], 6) == _summary(table["time"], table["sea_water_potential_temperature"])[3]
    per_day = con.execute(
        "SELECT CAST(date AS VARCHAR) AS d, count(*) FROM read_parquet(?, hive_partitioning = true) "
        "GROUP BY d ORDER BY d", [files]).fetchall()
    expected = table.group_by("date").aggregate([("time", "count")]).sort_by("date")
    assert per_day == list(zip(expected["date"].to_pylist(), expected["time_count"].to_pylist(), strict=True))
    con.close()
