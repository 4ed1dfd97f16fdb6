"""Helpers for the release and diff tests (no tests here): catalogs on both backends and small
versions with real Parquet files, manifests and catalog rows, built in code."""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa

from catalog.storage import manifest as manifest_mod
from catalog.storage import writer
from catalog.store import (
    DatasetRecord,
    FileRecord,
    RunRecord,
    VersionRecord,
    open_catalog,
)

UTC = dt.UTC
DATASET = "buoys"





# --- tables ------------------------------------------------------------------------------------
def _meta(role: str, units: str | None = None) -> dict[str, str]:
    out = {"haina.role": role}
    if units:
        out["haina.units"] = units
    return out


def schema(*, extra: tuple[pa.Field, ...] = (), temp_units: str = "degC",
           temp_type: pa.DataType | None = None) -> pa.Schema:
    temp_type = temp_type or pa.float32()
    fields = [
        pa.field("time", pa.timestamp("us", tz="UTC"), metadata=_meta("coordinate", "UTC")),
        pa.field("depth", pa.float64(), metadata=_meta("coordinate", "m")),
        pa.field("latitude", pa.float64(), metadata=_meta("coordinate", "degrees_north")),
        pa.field("longitude", pa.float64(), metadata=_meta("coordinate", "degrees_east")),
        pa.field("station_id", pa.string(), metadata=_meta("id")),
        pa.field("sea_water_temperature", temp_type, metadata=_meta("variable", temp_units)),
        pa.field("sea_water_temperature_qc", pa.uint8(), metadata=_meta("flag")),
        *extra,
        pa.field("source_file", pa.string(), metadata=_meta("source")),
    ]
    return pa.schema(fields)


def day_table(day: int, n: int = 200, *, seed: int = 0, sch: pa.Schema | None = None) -> pa.Table:
    """``n`` rows on 2025-07-``day``: hourly times at 4 stations, depth null for half of them."""
    sch = sch or schema()
    rng = np.random.default_rng(seed + day)
    start = np.datetime64(f"2025-07-{day:02d}T00:00:00", "us")
    idx = np.arange(n)
    station = idx % 4
    depth = np.where(station % 2 == 0, np.nan, 1.5 * station)
    cols = {
        "time": pa.array(start + (idx // 4) * np.timedelta64(15, "m"), pa.timestamp("us", "UTC")),
        "depth": pa.array(depth, pa.float64(), from_pandas=True),  # NaN -> null (no depth)
        "latitude": 36.0 + 0.1 * station, "longitude": 120.0 + 0.1 * station,
        "station_id": pa.array([f"ST{s}" for s in station]),
        "sea_water_temperature": rng.normal(20, 2, n).astype("f4"),
        "sea_water_temperature_qc": pa.array(np.where(idx % 10 == 0, 3, 1), pa.uint8()),
        "source_file": pa.array([f"/src/day{day}.csv"] * n),
    }
    for field in sch:
        if field.name not in cols:
            cols[field.name] = pa.array(np.where(idx % 5 == 0, "test", "train"))
    return pa.table({f.name: pa.array(cols[f.name]).cast(f.type) for f in sch}, schema=sch)


# --- versions ----------------------------------------------------------------------------------
def open_cat(url: str):
    return open_catalog(url)


def make_version(catalog, root: Path, version_id: str, partitions: Mapping[str, pa.Table], *,
                 dataset: str = DATASET, options: writer.WriteOptions | None = None,
                 title: str = "Buoys") -> VersionRecord:
    """Write the partitions as Parquet into the version folder, its manifest, and commit it."""
    options = options or writer.WriteOptions()
    catalog.ensure_dataset(DatasetRecord(name=dataset, title=title, created_at=None))
    run_id = f"r-{version_id}"
    catalog.begin_run(RunRecord(run_id=run_id, dataset=dataset), [])
    folder = root / "datasets" / dataset / "versions" / version_id
    files, sch = [], None
    for partition, table in sorted(partitions.items()):
        rel = f"data/{partition}/part-{partition[-2:]}.parquet"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        kv = writer.footer_metadata(dataset, version_id, run_id)
        written = writer.write_table(table, str(folder / rel), kv_metadata=kv, options=options)
        files.append(written.record(rel, partition, "s" * 64))
        sch = table.schema
    version = VersionRecord(version_id=version_id, dataset=dataset, run_id=run_id,
                            path=str(folder), manifest_sha256="", rows=sum(f.rows for f in files),
                            bytes=sum(f.bytes for f in files), file_count=len(files))
    manifest = manifest_mod.Manifest.build(
        {"name": dataset, "title": title}, version, catalog.run(run_id), files, [],
        sch or schema(), {})
    _uri, sha = manifest.write(str(folder))
    version = dataclasses.replace(version, manifest_sha256=sha)
    catalog.commit_version(version, files)
    catalog.finish_run(run_id, status="succeeded", counts={})
    return catalog.version(dataset, version_id)


def fake_version(catalog, version_id: str, *, dataset: str = DATASET) -> VersionRecord:
    """A committed version without files (for lifecycle and concurrency tests)."""
    catalog.ensure_dataset(DatasetRecord(name=dataset, created_at=None))
    run_id = f"r-{version_id}"
    catalog.begin_run(RunRecord(run_id=run_id, dataset=dataset), [])
    catalog.commit_version(VersionRecord(
        version_id=version_id, dataset=dataset, run_id=run_id, path=f"/nowhere/{version_id}",
        manifest_sha256="m" * 64, rows=0, bytes=0, file_count=0), [])
    catalog.finish_run(run_id, status="succeeded", counts={})
    return catalog.version(dataset, version_id)


def files_of(catalog, version: VersionRecord) -> list[FileRecord]:
    return catalog.files(version.version_id)
