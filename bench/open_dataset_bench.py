"""Benchmark: what reading through ``open_dataset`` costs over plain pyarrow, and versions of many
files (the issue's "release time for a version of 10 000 files").

    .venv/bin/python bench/open_dataset_bench.py [--rows 5000000] [--days 10] [--many-files 10000]
                                                 [--repeat 3] [--workdir bench/out/open_dataset]

Builds, in a fresh warehouse under ``--workdir`` (gitignored):

1. a version of ``--rows`` synthetic observations (time, depth, latitude, longitude, four float32
   variables, ``platform_id``, ``split``, ``source_file``), one file per day, written through
   ``catalog.storage.writer`` and committed through the catalog contract, exactly like a run does;
2. a version of ``--many-files`` tiny files (:func:`make_many_files_version`).

Then measures in the same process, best of ``--repeat`` (wall time):

* ``open_dataset(...).to_table()``: catalog lookup + file list + hive dataset + read;
* ``pyarrow.dataset.dataset(files).to_table()``: the same files, no catalog;
* ``pyarrow.parquet.read_table(files)``;
* ``open_dataset(..., split="train").to_table()`` and ``open_dataset(..., verify=True)``;
* on the many-files version: ``open_dataset`` alone (catalog query of N file rows + dataset
  factory over N paths), its ``to_table()``, and the plain pyarrow equivalent;
* ``haina release NAME@ID --version 1.0.0`` on the many-files version, when the release command
  exists (``pipelines/cli/release.py``), as a subprocess; ``haina releases NAME`` (same start-up,
  no work) is timed too, so the difference is the release itself.

Prints rows/s and ratios, and writes them to ``<workdir>/results.json``.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from catalog import read as api
from catalog.storage import writer
from catalog.store import (
    Catalog,
    DatasetRecord,
    RunRecord,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
)
from pipelines import splits

REPO = Path(__file__).resolve().parents[1]
SPLITS = splits.SplitConfig(by="platform_id", seed=42)
SOURCE_SHA = "b" * 64


# --- building versions -----------------------------------------------------------------------
def synthetic_day(day: int, n: int, seed: int = 0) -> pa.Table:
    """``n`` observations on 2025-01-01 + ``day`` days, in the canonical observation schema."""
    rng = np.random.default_rng(seed + day)
    start = np.datetime64("2025-01-01T00:00:00", "us") + np.timedelta64(day, "D")
    offsets = np.sort(rng.integers(0, 86_400_000_000, n)).astype("timedelta64[us]")
    table = pa.table({
        "time": pa.array(start + offsets, pa.timestamp("us", "UTC")),
        "depth": rng.choice(np.array([0.5, 5, 10, 20, 35], "f8"), n),
        "latitude": rng.uniform(35.2, 36.6, n), "longitude": rng.uniform(119.6, 121.6, n),
        **{name: rng.normal(mu, 1, n).astype(np.float32) for name, mu in (
            ("sea_water_temperature", 20), ("sea_water_practical_salinity", 31),
            ("eastward_sea_water_velocity", 0), ("northward_sea_water_velocity", 0))},
        "platform_id": pa.array([f"P{i:04d}" for i in range(2000)]).take(
            pa.array(rng.integers(0, 2000, n))),
        "source_file": pa.array(["/bench/source.nc"] * n),
    })
    return splits.add_split_column(table, SPLITS)


def _begin(catalog: Catalog, dataset: str) -> tuple[str, str]:
    catalog.ensure_dataset(DatasetRecord(name=dataset, title=dataset, licence="CC0-1.0"))
    run_id, version_id = new_run_id(), new_version_id()
    catalog.begin_run(RunRecord(run_id=run_id, dataset=dataset), [])
    return run_id, version_id


def _commit(catalog: Catalog, dataset: str, run_id: str, version_id: str, folder: str,
            records) -> VersionRecord:
    # a minimal manifest, hashed like a run's, so that `haina release` can verify the version
    manifest = json.dumps({"extra": {"splits": splits.manifest_entry(SPLITS, {})},
                           "files": [r.path for r in records]}).encode()
    with open(os.path.join(folder, "manifest.json"), "wb") as out:
        out.write(manifest)
    version = VersionRecord(
        version_id=version_id, dataset=dataset, run_id=run_id, path=folder,
        manifest_sha256=hashlib.sha256(manifest).hexdigest(), rows=sum(r.rows for r in records),
        bytes=sum(r.bytes for r in records), file_count=len(records))
    catalog.commit_version(version, records)
    catalog.finish_run(run_id, status="succeeded", counts={"rows_out": version.rows})
    return version


def make_version(warehouse: str, dataset: str, tables_by_day) -> VersionRecord:
    """Commit one version holding ``tables_by_day`` (one file per day) through the catalog."""
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    run_id, version_id = _begin(catalog, dataset)
    folder = os.path.join(warehouse, "datasets", dataset, "versions", version_id)
    kv = writer.footer_metadata(dataset, version_id, run_id)
    records = []
    for ordinal, table in enumerate(tables_by_day):
        for partition, part in writer.split_by_date(table):
            rel = "data/" + writer.file_name(SOURCE_SHA, partition, ordinal, 0)
            written = writer.write_table(part, f"{folder}/{rel}", kv_metadata=kv)
            records.append(written.record(rel, partition, SOURCE_SHA))
    version = _commit(catalog, dataset, run_id, version_id, folder, records)
    catalog.close()
    return version


def make_many_files_version(warehouse: str, n_files: int, dataset: str = "many-files",
                            rows_per_file: int = 10) -> VersionRecord:
    """Commit a draft version of ``n_files`` tiny files (``rows_per_file`` rows each, one file
    per day) through ``catalog.commit_version`` after a ``begin_run``, in the warehouse's
    SQLite catalog. ``haina release`` (or any whole-version operation) can then be timed on it.
    """
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    run_id, version_id = _begin(catalog, dataset)
    folder = os.path.join(warehouse, "datasets", dataset, "versions", version_id)
    kv = writer.footer_metadata(dataset, version_id, run_id)
    template = synthetic_day(0, rows_per_file)
    day_us = 86_400_000_000
    records = []
    for i in range(n_files):
        # shift the template by i days: one partition per file, as a long daily series has
        shifted = pa.array(template["time"].combine_chunks().cast(pa.int64()).to_numpy()
                           + i * day_us, pa.int64()).cast(pa.timestamp("us", "UTC"))
        table = template.set_column(0, template.schema.field("time"), shifted)
        partition = f"date={np.datetime64('2025-01-01') + np.timedelta64(i, 'D')}"
        rel = "data/" + writer.file_name(SOURCE_SHA, partition, i, 0)
        written = writer.write_table(table, f"{folder}/{rel}", kv_metadata=kv)
        records.append(written.record(rel, partition, SOURCE_SHA))
    version = _commit(catalog, dataset, run_id, version_id, folder, records)
    catalog.close()
    return version


# --- measuring -------------------------------------------------------------------------------
def best(func, repeat: int) -> tuple[float, int]:
    """Best wall time of ``repeat`` calls (after one untimed warm-up call: imports, caches)
    and the row count the call returned."""
    func()
    times, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows = func()
        times.append(time.perf_counter() - start)
    return min(times), rows


def measure_reads(warehouse: str, version: VersionRecord, repeat: int) -> dict[str, dict]:
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    files = api.data_files(catalog, version)
    catalog.close()
    name, vid = version.dataset, version.version_id
    cases = {
        "open_dataset": lambda: api.open_dataset(name, vid, warehouse=warehouse)
        .to_table().num_rows,
        "pyarrow.dataset": lambda: ds.dataset(files, format="parquet").to_table().num_rows,
        "pq.read_table": lambda: pq.read_table(files).num_rows,
        "open_dataset split=train": lambda: api.open_dataset(
            name, vid, warehouse=warehouse, split="train").to_table().num_rows,
        "open_dataset verify=True": lambda: api.open_dataset(
            name, vid, warehouse=warehouse, verify=True).to_table().num_rows,
    }
    return {label: _result(*best(func, repeat)) for label, func in cases.items()}


def measure_many_files(warehouse: str, version: VersionRecord, repeat: int) -> dict[str, dict]:
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    files = api.data_files(catalog, version)
    catalog.close()
    name, vid = version.dataset, version.version_id
    cases = {
        "open_dataset only (n=files)": lambda: len(api.open_dataset(name, vid, warehouse=warehouse)
                                              .files),
        "open_dataset.to_table": lambda: api.open_dataset(name, vid, warehouse=warehouse)
        .to_table().num_rows,
        "pyarrow.dataset.to_table": lambda: ds.dataset(files, format="parquet")
        .to_table().num_rows,
    }
    return {label: _result(*best(func, repeat)) for label, func in cases.items()}


def _result(seconds: float, rows: int) -> dict:
    return {"seconds": round(seconds, 4), "rows": rows,
            "rows_per_s": round(rows / seconds) if seconds else None}


def time_release(warehouse: str, version: VersionRecord) -> dict | None:
    """``haina release`` of the many-files version, when the release command exists."""
    if importlib.util.find_spec("pipelines.cli.release") is None:
        return None
    haina = str(Path(sys.executable).with_name("haina"))
    env = {**os.environ, "HAINA_WAREHOUSE": warehouse}
    env.pop("HAINA_CATALOG_URL", None)
    # start-up of the same command module (imports, catalog open), for reference
    baseline = _wall([haina, "releases", version.dataset], env)
    ref = f"{version.dataset}@{version.version_id}"
    start = time.perf_counter()
    done = subprocess.run([haina, "release", ref, "--version", "1.0.0"], env=env, check=False,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return {"command": f"haina release {ref} --version 1.0.0", "seconds": round(seconds, 3),
            "startup_seconds": round(baseline, 3), "returncode": done.returncode,
            "stderr_tail": done.stderr[-500:]}


def _wall(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


# --- command line ----------------------------------------------------------------------------
def _print(title: str, results: dict[str, dict], reference: str) -> None:
    print(f"\n{title}")
    ref = results[reference]["seconds"]
    for label, r in results.items():
        ratio = r["seconds"] / ref if ref else float("nan")
        rate = f"{r['rows_per_s']:>14,} rows/s" if r["rows_per_s"] else ""
        print(f"  {label:<28} {r['seconds']:>9.3f} s {r['rows']:>12,} rows {rate}  "
              f"x{ratio:.2f} of {reference}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--many-files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default=str(REPO / "bench" / "out" / "open_dataset"))
    parser.add_argument("--no-release", action="store_true", help="skip timing haina release")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", api.UnreleasedVersionWarning)

    warehouse = os.path.abspath(args.workdir)
    shutil.rmtree(warehouse, ignore_errors=True)
    os.makedirs(warehouse)
    start = time.perf_counter()
    big = make_version(warehouse, "bench-obs", (synthetic_day(d, args.rows // args.days)
                                                for d in range(args.days)))
    built_big = time.perf_counter() - start
    start = time.perf_counter()
    many = make_many_files_version(warehouse, args.many_files) if args.many_files else None
    built_many = time.perf_counter() - start
    print(f"version of {big.rows:,} rows in {big.file_count} files ({big.bytes / 2**20:.0f} MiB) "
          f"built in {built_big:.1f} s; version of {args.many_files:,} files built in "
          f"{built_many:.1f} s")

    results: dict = {"rows": big.rows, "files": big.file_count, "bytes": big.bytes,
                     "reads": measure_reads(warehouse, big, args.repeat),
                     "build_seconds": {"big": round(built_big, 2), "many": round(built_many, 2)}}
    _print(f"read a version (best of {args.repeat})", results["reads"], "pyarrow.dataset")
    if many is not None:
        results["many_files"] = {"files": many.file_count,
                                 **measure_many_files(warehouse, many, args.repeat)}
        _print(f"version of {many.file_count:,} files",
               {k: v for k, v in results["many_files"].items() if k != "files"},
               "pyarrow.dataset.to_table")
        if not args.no_release:
            results["release"] = time_release(warehouse, many)
            if results["release"] is None:
                print("\nhaina release: not available (pipelines/cli/release.py missing)")
            else:
                r = results["release"]
                print(f"\n{r['command']}: {r['seconds']:.2f} s (exit {r['returncode']}; "
                      f"`haina releases NAME` alone {r['startup_seconds']:.2f} s)")
    with open(os.path.join(warehouse, "results.json"), "w") as out:
        json.dump(results, out, indent=2)
    print(f"\nresults: {os.path.join(warehouse, 'results.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
