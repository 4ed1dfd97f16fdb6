"""The consumer API ``open_dataset``: exact files, partitions, splits, states, verification.

Versions are built in code: tables written with ``catalog.storage.writer`` into a version folder and
committed through the catalog contract, on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import catalog as catalog_pkg
from catalog import read as api
from catalog.exceptions import (
    CatalogConnectionError,
    CatalogError,
    DatasetNotFoundError,
    VersionNotFoundError,
)
from catalog.releases import lifecycle as release
from catalog.sql import backend as sql_mod
from catalog.storage import writer
from catalog.store import (
    DatasetRecord,
    RunRecord,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
)
from pipelines import splits
from pipelines.beam import steps

UTC = dt.UTC
SPLITS = splits.SplitConfig(by="platform_id", seed=42,
                            fractions={"train": 0.6, "validation": 0.2, "test": 0.2})


# --- backends (the pattern of tests/catalog/test_store_contract.py) --------------------------


@pytest.fixture
def cat(catalog_url):
    catalog = open_catalog(catalog_url)
    yield catalog
    catalog.close()


# --- building versions -----------------------------------------------------------------------
def _table(day: int | None, n: int, first_platform: int = 0, with_split: bool = True) -> pa.Table:
    rng = np.random.default_rng(n + (day or 0))
    if day is None:
        times = pa.nulls(n, pa.timestamp("us", "UTC"))
    else:
        start = dt.datetime(2025, 7, day, tzinfo=UTC)
        times = pa.array([start + dt.timedelta(minutes=i) for i in range(n)],
                         pa.timestamp("us", "UTC"))
    table = pa.table({
        "time": times,
        "depth": pa.nulls(n, pa.float64()),
        "latitude": rng.uniform(35, 37, n), "longitude": rng.uniform(120, 122, n),
        "sea_water_temperature": rng.normal(20, 2, n).astype(np.float32),
        "platform_id": pa.array([f"P{first_platform + i % 40:03d}" for i in range(n)]),
        "source_file": pa.array(["/src/a.nc"] * n),
    })
    return splits.add_split_column(table, SPLITS) if with_split else table


def commit(cat, root, dataset: str, tables, *, partition_by: str = "date", state: str = "draft",
           quarantine: pa.Table | None = None, manifest: dict | None = None) -> VersionRecord:
    """Write ``tables`` as one version (one file per table and date) and commit it."""
    cat.ensure_dataset(DatasetRecord(name=dataset))
    run_id, version_id = new_run_id(), new_version_id()
    cat.begin_run(RunRecord(run_id=run_id, dataset=dataset), [])
    folder = os.path.join(root, "datasets", dataset, "versions", version_id)
    kv = writer.footer_metadata(dataset, version_id, run_id)
    records = []
    for n, table in enumerate(tables):
        for partition, part in steps.partitions(table, partition_by):
            rel = "data/" + writer.file_name("ab" * 32, partition, n, 0)
            written = writer.write_table(part, f"{folder}/{rel}", kv_metadata=kv)
            records.append(written.record(rel, partition, "ab" * 32))
    if quarantine is not None:
        rel = "quarantine/part-abababababab-000000.parquet"
        written = writer.write_table(quarantine, f"{folder}/{rel}", kv_metadata=kv)
        records.append(written.record(rel, "quarantine", "ab" * 32))
    with open(os.path.join(folder, "manifest.json"), "w") as out:
        json.dump(manifest or {}, out)
    data = [r for r in records if r.partition != "quarantine"]
    version = VersionRecord(version_id=version_id, dataset=dataset, run_id=run_id,
                            path=folder, manifest_sha256="0" * 64,
                            rows=sum(r.rows for r in data), bytes=sum(r.bytes for r in data),
                            file_count=len(data), state=state)
    cat.commit_version(version, records)
    cat.finish_run(run_id, status="succeeded", counts={})
    return version


def set_state(cat, version_id: str, state: str) -> None:
    with cat._engine.begin() as conn:
        conn.execute(sql_mod.versions_t.update()
                     .where(sql_mod.versions_t.c.version_id == version_id).values(state=state))


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "warehouse"
    folder.mkdir(exist_ok=True)
    return str(folder)


def _open(cat, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.UnreleasedVersionWarning)
        return api.open_dataset(*args, catalog=cat, **kw)


# --- exact files, partitions -----------------------------------------------------------------
def test_reads_exactly_the_version_files(cat, root):
    quarantine = pa.table({"reason": ["bad"], "source_file": ["/src/a.nc"]})
    v1 = commit(cat, root, "obs", [_table(1, 100), _table(2, 50)], quarantine=quarantine)
    v2 = commit(cat, root, "obs", [_table(1, 100), _table(2, 50), _table(3, 70)])
    # a leftover of a crashed run inside v1's folder is not part of v1
    pq.write_table(_table(4, 999), os.path.join(v1.path, "data", "date=2025-07-04.parquet"))
    got1 = _open(cat, "obs", v1.version_id).to_table()
    got2 = _open(cat, "obs", v2.version_id).to_table()
    assert got1.num_rows == v1.rows == 150
    assert got2.num_rows == v2.rows == 220
    assert "reason" not in got1.column_names
    assert sorted(set(got2["date"].to_pylist())) == ["2025-07-01", "2025-07-02", "2025-07-03"]
    assert got1.schema.field("date").type == pa.string()
    assert got1.column_names[:6] == ["time", "depth", "latitude", "longitude",
                                     "sea_water_temperature", "platform_id"]


def test_null_time_partition_and_pruning(cat, root):
    v = commit(cat, root, "obs", [_table(1, 10), _table(None, 5), _table(2, 8)])
    dataset = _open(cat, "obs", v.version_id)
    table = dataset.to_table()
    assert table.num_rows == 23
    assert table.filter(pa.compute.is_null(table["date"]))["time"].null_count == 5
    assert dataset.count_rows(filter=ds.field("date") == "2025-07-02") == 8
    pruned = _open(cat, "obs", v.version_id, filter=ds.field("date") >= "2025-07-02")
    # partition pruning, not only a row filter: the other partitions' files are never opened
    for path in api.data_files(cat, v):
        if "2025-07-02" not in path:
            os.remove(path)
    assert pruned.to_table().num_rows == 8


def test_unpartitioned_version_has_no_date_column(cat, root):
    v = commit(cat, root, "flat", [_table(1, 30)], partition_by="none")
    table = _open(cat, "flat", v.version_id).to_table()
    assert table.num_rows == 30 and "date" not in table.column_names


def test_version_values_round_trip(cat, root):
    source = _table(1, 64)
    v = commit(cat, root, "obs", [source])
    got = _open(cat, "obs", v.version_id).to_table().drop_columns(["date"])
    assert got.column("sea_water_temperature").equals(source.column("sea_water_temperature"))
    assert got.column("time").to_pylist() == source.column("time").to_pylist()


# --- version resolution and states -----------------------------------------------------------
def test_latest_is_the_latest_draft_with_a_warning(cat, root):
    commit(cat, root, "obs", [_table(1, 10)])
    v2 = commit(cat, root, "obs", [_table(1, 12)])
    with pytest.warns(api.UnreleasedVersionWarning, match=f"no release.*{v2.version_id}"):
        dataset = api.open_dataset("obs", catalog=cat)
    assert dataset.count_rows() == 12


def test_unknown_names_and_versions(cat, root):
    with pytest.raises(DatasetNotFoundError, match="'nope' is not in the catalog"):
        api.open_dataset("nope", catalog=cat)
    cat.ensure_dataset(DatasetRecord(name="empty"))
    with pytest.raises(VersionNotFoundError, match="'empty' has no version yet.*Fix: run"):
        api.open_dataset("empty", catalog=cat)
    v = commit(cat, root, "obs", [_table(1, 10)])
    with pytest.raises(VersionNotFoundError, match=f"no version 'v1'.*{v.version_id}"):
        api.open_dataset("obs", "v1", catalog=cat)


def test_semver_latest_and_states_through_the_release_module(cat, root):
    v1 = commit(cat, root, "obs", [_table(1, 10)])
    v2 = commit(cat, root, "obs", [_table(1, 20)])
    v3 = commit(cat, root, "obs", [_table(1, 30)])  # a newer draft, not released
    release.record_release(cat, v1, "1.0.0")
    release.record_release(cat, v2, "1.1.0", bump="MINOR", previous="1.0.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a release exists: no fallback warning
        assert api.open_dataset("obs", catalog=cat).count_rows() == 20
        assert api.open_dataset("obs", "1.0.0", catalog=cat).count_rows() == 10
        assert api.open_dataset("obs", "latest-draft", catalog=cat).count_rows() == 30
        assert api.open_dataset("obs", v3.version_id, catalog=cat).count_rows() == 30
    with pytest.raises(VersionNotFoundError, match="no release 2.0.0.*1.0.0, 1.1.0"):
        api.open_dataset("obs", "2.0.0", catalog=cat)
    release.deprecate(cat, "obs", "1.1.0", "superseded")
    with pytest.warns(api.DeprecatedVersionWarning, match="deprecated: superseded"):
        assert api.open_dataset("obs", "1.1.0", catalog=cat).count_rows() == 20
    release.yank(cat, "obs", "1.0.0", "wrong salinity units")
    with pytest.raises(api.VersionYankedError, match="yanked: wrong salinity units"):
        api.open_dataset("obs", "1.0.0", catalog=cat)
    with pytest.warns(api.YankedVersionWarning):
        dataset = api.open_dataset("obs", "1.0.0", catalog=cat, allow_yanked=True)
    assert dataset.count_rows() == 10
    assert issubclass(api.VersionYankedError, CatalogError)


def test_states_set_outside_a_release_are_honoured(cat, root):
    v = commit(cat, root, "obs", [_table(1, 10)])
    set_state(cat, v.version_id, "deprecated")
    with pytest.warns(api.DeprecatedVersionWarning, match="deprecated"):
        api.open_dataset("obs", v.version_id, catalog=cat)
    set_state(cat, v.version_id, "yanked")
    with pytest.raises(api.VersionYankedError, match=f"obs@{v.version_id} was yanked.*Fix"):
        api.open_dataset("obs", v.version_id, catalog=cat)
    with pytest.warns(api.YankedVersionWarning):
        dataset = api.open_dataset("obs", v.version_id, catalog=cat, allow_yanked=True)
    assert dataset.count_rows() == 10


# --- splits, columns, filters ----------------------------------------------------------------
def test_split_selects_exactly_the_split_rows(cat, root):
    tables = [_table(1, 200), _table(2, 200, first_platform=40)]
    manifest = {"extra": {"splits": splits.manifest_entry(SPLITS, {})}}
    v = commit(cat, root, "obs", tables, manifest=manifest)
    everything = pa.concat_tables(tables)
    for name in ("train", "validation", "test"):
        got = _open(cat, "obs", v.version_id, split=name).to_table()
        expected = [s == name for s in everything["split"].to_pylist()]
        assert got.num_rows == sum(expected) > 0
        assert set(got["split"].to_pylist()) == {name}
        assert sorted(got["platform_id"].to_pylist()) == sorted(
            everything.filter(pa.array(expected))["platform_id"].to_pylist())
    with pytest.raises(api.NoSplitsError, match="unknown split 'trian'.*test, train, validation"):
        _open(cat, "obs", v.version_id, split="trian")


def test_split_names_from_the_data_without_manifest_entry(cat, root):
    v = commit(cat, root, "obs", [_table(1, 200)])
    assert _open(cat, "obs", v.version_id, split="test").count_rows() > 0
    with pytest.raises(api.NoSplitsError, match="unknown split 'holdout'"):
        _open(cat, "obs", v.version_id, split="holdout")


def test_split_of_a_version_without_splits(cat, root):
    v = commit(cat, root, "plain", [_table(1, 20, with_split=False)])
    with pytest.raises(api.NoSplitsError, match="no 'split' column.*Fix: add a `splits:`"):
        _open(cat, "plain", v.version_id, split="train")


def test_columns_and_filter(cat, root):
    v = commit(cat, root, "obs", [_table(1, 200), _table(2, 100)])
    dataset = _open(cat, "obs", v.version_id, split="train",
                    columns=["time", "sea_water_temperature", "date"],
                    filter=ds.field("date") == "2025-07-02")
    assert dataset.schema.names == ["time", "sea_water_temperature", "split", "date"]
    table = dataset.to_table()
    full = _open(cat, "obs", v.version_id).to_table()
    mask = pa.compute.and_(pa.compute.equal(full["date"], "2025-07-02"),
                           pa.compute.equal(full["split"].cast(pa.string()), "train"))
    assert table.num_rows == pa.compute.sum(mask).as_py() > 0
    # narrowing further at read time, as the docstring promises
    warm = dataset.to_table(columns=["sea_water_temperature"],
                            filter=ds.field("sea_water_temperature") > 20)
    assert warm.column_names == ["sea_water_temperature"]
    assert pa.compute.min(warm["sea_water_temperature"]).as_py() > 20
    with pytest.raises(api.QueryError, match=r"columns \['salinity'\] are not in the version"):
        _open(cat, "obs", v.version_id, columns=["salinity"])
    with pytest.raises(api.QueryError, match="filter does not apply.*Fix"):
        _open(cat, "obs", v.version_id, columns=["time"], filter=ds.field("platform_id") == "P")


def test_iter_batches_and_to_pandas(cat, root):
    v = commit(cat, root, "obs", [_table(1, 300), _table(2, 200)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", api.UnreleasedVersionWarning)
        batches = list(api.iter_batches("obs", v.version_id, batch_size=128, catalog=cat,
                                        columns=["time"]))
        frame = api.to_pandas("obs", v.version_id, catalog=cat, split="validation")
    assert all(b.num_rows <= 128 for b in batches) and sum(b.num_rows for b in batches) == 500
    assert batches[0].schema.names == ["time"]
    assert len(frame) == _open(cat, "obs", v.version_id, split="validation").count_rows()
    with pytest.raises(api.QueryError, match="batch_size must be positive"):
        api.iter_batches("obs", v.version_id, batch_size=0, catalog=cat)
    with pytest.raises(DatasetNotFoundError):  # raised at the call, not at the first batch
        api.iter_batches("missing", catalog=cat)


# --- verification ----------------------------------------------------------------------------
def test_verify_names_the_first_changed_or_missing_file(cat, root):
    v = commit(cat, root, "obs", [_table(1, 50), _table(2, 50)])
    assert _open(cat, "obs", v.version_id, verify=True).count_rows() == 100
    files = api.data_files(cat, v)
    with open(files[1], "r+b") as handle:  # flip one byte in the second file
        handle.seek(10)
        byte = handle.read(1)
        handle.seek(10)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(api.IntegrityError, match="date=2025-07-02.*has sha256 .* catalog "
                                                 "recorded") as info:
        _open(cat, "obs", v.version_id, verify=True)
    assert info.value.path == files[1] and info.value.actual != info.value.expected
    os.remove(files[0])
    with pytest.raises(api.IntegrityError, match="date=2025-07-01.*missing"):
        _open(cat, "obs", v.version_id, verify=True)
    with pytest.raises(api.IntegrityError, match="cannot open the version's data files"):
        _open(cat, "obs", v.version_id)


# --- warehouse and catalog resolution (SQLite: the catalog lives in the warehouse) ------------
@pytest.fixture
def local(tmp_path):
    root = tmp_path / "wh"
    catalog = open_catalog(f"sqlite:///{root / 'catalog.db'}")
    yield catalog, str(root)
    catalog.close()


def test_warehouse_from_argument_env_and_default(local, tmp_path, monkeypatch):
    cat, root = local
    v = commit(cat, root, "obs", [_table(1, 10)])
    monkeypatch.delenv("HAINA_CATALOG_URL", raising=False)
    monkeypatch.delenv("HAINA_WAREHOUSE", raising=False)
    assert api.open_dataset("obs", v.version_id, warehouse=root).count_rows() == 10
    monkeypatch.setenv("HAINA_WAREHOUSE", root)
    assert api.open_dataset("obs", v.version_id).count_rows() == 10
    monkeypatch.delenv("HAINA_WAREHOUSE")
    monkeypatch.setenv("HAINA_CATALOG_URL", f"sqlite:///{root}/catalog.db")
    assert api.open_dataset("obs", v.version_id, warehouse=tmp_path / "x").count_rows() == 10
    monkeypatch.delenv("HAINA_CATALOG_URL")
    monkeypatch.chdir(tmp_path)
    os.rename(root, tmp_path / "warehouse")  # ./warehouse, and the catalog's paths are stale
    assert api.open_dataset("obs", v.version_id).count_rows() == 10


def test_missing_catalog_is_not_created(tmp_path, monkeypatch):
    monkeypatch.delenv("HAINA_CATALOG_URL", raising=False)
    with pytest.raises(CatalogConnectionError, match="no catalog at .*catalog.db.*Fix: pass"):
        api.open_dataset("obs", warehouse=tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_lazy_export_from_the_catalog_package():
    assert catalog_pkg.open_dataset is api.open_dataset
    assert catalog_pkg.iter_batches is api.iter_batches
    with pytest.raises(AttributeError):
        catalog_pkg.no_such_name  # noqa: B018


def test_version_record_paths_are_used_as_recorded(local):
    cat, root = local
    v = commit(cat, root, "obs", [_table(1, 10)])
    files = api.data_files(cat, v, warehouse=root)
    assert all(f.startswith(v.path + "/data/date=") for f in files)
    assert [r.path for r in api.data_records(cat, v)] == [f.path for f in cat.files(v.version_id)]


def test_version_whose_rows_were_all_quarantined(cat, root):
    quarantine = pa.table({"reason": ["bad"], "source_file": ["/src/a.nc"]})
    v = commit(cat, root, "rejects", [], quarantine=quarantine)
    assert _open(cat, "rejects", v.version_id).to_table().num_rows == 0
    with pytest.raises(api.NoSplitsError):
        _open(cat, "rejects", v.version_id, split="train")
