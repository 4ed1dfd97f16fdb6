"""catalog.releases.diff: schema differences, multiset row comparison, statistics drift, whole versions."""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.releases import diff as diff_mod
from catalog.releases.diff import (
    ColumnChange,
    compare_rows,
    diff_versions,
    key_columns,
    schema_diff,
)
from catalog.storage import writer
from catalog.storage.manifest import ColumnEntry, schema_columns
from catalog.store import open_catalog
from tests.catalog.releases.release_support import day_table, make_version, schema

KEYS = ["time", "depth", "latitude", "longitude", "station_id"]
VALUES = ["sea_water_temperature", "sea_water_temperature_qc"]


# --- schema ------------------------------------------------------------------------------------
def test_schema_diff_names_added_removed_retyped_units_and_metadata():
    old = schema_columns(schema())
    extra = (pa.field("split", pa.string(), metadata={"haina.role": "split"}),)
    new = [c for c in schema_columns(schema(extra=extra, temp_units="K"))
           if c.name != "sea_water_temperature_qc"]
    new[1] = dataclasses.replace(new[1], type="float",
                                 metadata={**new[1].metadata, "haina.long_name": "z"})
    got = schema_diff(old, new)
    assert got.added == ("split",)
    assert got.removed == ("sea_water_temperature_qc",)
    assert got.retyped == (ColumnChange("depth", "double", "float"),)
    assert got.units == (ColumnChange("sea_water_temperature", "degC", "K"),)
    assert got.metadata == (ColumnChange("depth", "haina.long_name", None),)
    assert schema_diff(old, old) == diff_mod.SchemaDiff()


def test_key_columns_by_role_else_by_name():
    assert key_columns(schema_columns(schema())) == tuple(KEYS)
    bare = [ColumnEntry(n, "double") for n in ("mmsi", "sog", "latitude", "time")]
    assert key_columns(bare) == ("time", "latitude", "mmsi")


# --- rows --------------------------------------------------------------------------------------
def _edit(table: pa.Table, column: str, rows: list[int], value) -> pa.Table:
    values = table[column].to_pylist()
    for i in rows:
        values[i] = value
    index = table.schema.get_field_index(column)  # keep the field's metadata (units, role)
    return table.set_column(index, table.schema.field(index), pa.array(values, table[column].type))


BASE = day_table(1, n=40).drop_columns(["source_file"])
COLS = KEYS + VALUES


@pytest.mark.parametrize("label, new, expected", [
    ("identical", BASE, (0, 0, 0, {})),
    ("reordered", BASE.take(np.arange(40)[::-1]), (0, 0, 0, {})),
    ("value changed", _edit(BASE, "sea_water_temperature", [3, 7], 99.0),
     (0, 0, 2, {"sea_water_temperature": 2})),
    ("flag changed", _edit(BASE, "sea_water_temperature_qc", [0], 4),
     (0, 0, 1, {"sea_water_temperature_qc": 1})),
    ("null value equals null", _edit(_edit(BASE, "sea_water_temperature", [5], None),
                                     "sea_water_temperature", [5], None),
     (0, 0, 1, {"sea_water_temperature": 1})),
    ("row removed", BASE.slice(0, 39), (0, 1, 0, {})),
    ("rows added", pa.concat_tables([BASE, day_table(2, n=3).drop_columns(["source_file"])]),
     (3, 0, 0, {})),
    ("duplicate row added", pa.concat_tables([BASE, BASE.slice(10, 1)]), (1, 0, 0, {})),
    ("key moved: removed + added", _edit(BASE, "latitude", [2], 10.0), (1, 1, 0, {})),
])
def test_compare_rows_cases(label, new, expected):
    assert compare_rows(BASE, new, KEYS, COLS) == expected, label


def test_null_depth_keys_match_themselves():
    assert BASE["depth"].null_count == 20  # the key has nulls: they must still pair up
    assert compare_rows(BASE, BASE.take(np.arange(40)[::-1]), KEYS, COLS) == (0, 0, 0, {})


def _oracle(a: list[tuple], b: list[tuple], nkeys: int) -> tuple[int, int, int]:
    """Brute force over Python tuples: multiset difference, then pairing leftovers by key."""
    ca, cb = Counter(a), Counter(b)
    left_a, left_b = ca - cb, cb - ca
    ka, kb = Counter(), Counter()
    for row, n in left_a.items():
        ka[row[:nkeys]] += n
    for row, n in left_b.items():
        kb[row[:nkeys]] += n
    changed = sum(min(n, kb[k]) for k, n in ka.items())
    return sum(kb.values()) - changed, sum(ka.values()) - changed, changed


rows_strategy = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from(
    [0.5, 1.0, None])), min_size=0, max_size=25)


@settings(max_examples=60, deadline=None)
@given(a=rows_strategy, b=rows_strategy)
def test_compare_rows_matches_brute_force(a, b):
    def table(rows):
        k, v, w = zip(*rows, strict=True) if rows else ((), (), ())
        return pa.table({"k": pa.array(k, pa.int64()), "v": pa.array(v, pa.int64()),
                         "w": pa.array(w, pa.float64())})
    added, removed, changed, _ = compare_rows(table(a), table(b), ["k"], ["k", "v", "w"])
    assert (added, removed, changed) == _oracle(a, b, 1)


# --- statistics --------------------------------------------------------------------------------
def test_stats_merged_from_parts_equal_whole_table_numpy():
    table = _edit(day_table(3, n=100), "sea_water_temperature", [1, 2], None)
    merged = diff_mod.merge_stats([diff_mod.partial_stats(table.slice(0, 37)),
                                   diff_mod.partial_stats(table.slice(37))])
    temp = table["sea_water_temperature"].to_numpy(zero_copy_only=False)
    t = merged["sea_water_temperature"]
    assert (t.rows, t.nulls, t.null_fraction) == (100, 2, 0.02)
    assert t.min == pytest.approx(float(np.nanmin(temp)))
    assert t.max == pytest.approx(float(np.nanmax(temp)))
    assert t.mean == pytest.approx(float(np.nanmean(temp)), rel=1e-6)
    assert merged["sea_water_temperature_qc"].flags == {"1": 0.9, "3": 0.1}
    assert merged["depth"].null_fraction == 0.5
    assert "source_file" not in merged


# --- whole versions ----------------------------------------------------------------------------
@pytest.fixture
def cat(tmp_path):
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield catalog
    catalog.close()


def test_diff_versions_fast_path_changed_and_added_partitions(cat, tmp_path):
    d1, d2 = day_table(1), day_table(2)
    v1 = make_version(cat, tmp_path, "v1", {"date=2025-07-01": d1, "date=2025-07-02": d2})
    d2_new = _edit(d2, "sea_water_temperature", list(range(0, 120, 10)), 35.0)
    v2 = make_version(cat, tmp_path, "v2", {"date=2025-07-01": d1, "date=2025-07-02": d2_new,
                                            "date=2025-07-03": day_table(3)})
    got = diff_versions(cat, v1, v2)
    by = {p.partition: p for p in got.partitions}
    assert by["date=2025-07-01"].method == "same-content"  # footers differ, row groups do not
    assert (by["date=2025-07-01"].unchanged, by["date=2025-07-01"].changed) == (200, 0)
    p2 = by["date=2025-07-02"]
    assert (p2.method, p2.added, p2.removed, p2.changed, p2.unchanged) == ("compared", 0, 0, 12, 188)
    assert p2.changed_columns == {"sea_water_temperature": 12}
    assert (by["date=2025-07-03"].method, by["date=2025-07-03"].added) == ("added", 200)
    assert got.files_added == ("data/date=2025-07-03/part-03.parquet",)
    assert got.files_removed == ()
    assert got.schema == diff_mod.SchemaDiff()
    assert got.totals == {"rows_a": 400, "rows_b": 600, "added": 200, "removed": 0, "changed": 12}
    assert any("footer metadata" in n for n in got.patch_notes)

    drift = {d.column: d for d in got.drift}
    expect_b = pa.concat_tables([d1, d2_new, day_table(3)])["sea_water_temperature"]
    assert drift["sea_water_temperature"].b.mean == pytest.approx(pc.mean(expect_b).as_py(), rel=1e-6)
    assert drift["sea_water_temperature"].b.max == pytest.approx(35.0)
    assert drift["sea_water_temperature"].a.max < 35.0
    assert got.to_json()["partitions"][1]["unchanged"] == 188


def test_same_records_reencoded_is_detected_as_encoding_only(cat, tmp_path):
    d1 = day_table(1)
    v1 = make_version(cat, tmp_path, "v1", {"date=2025-07-01": d1})
    v2 = make_version(cat, tmp_path, "v2", {"date=2025-07-01": d1.take(np.arange(200)[::-1])},
                      options=writer.WriteOptions(compression="snappy", compression_level=None))
    [p] = diff_versions(cat, v1, v2, stats=False).partitions
    assert (p.method, p.added, p.removed, p.changed, p.unchanged) == ("compared", 0, 0, 0, 200)
    assert any("different encoding" in n for n in diff_versions(cat, v1, v2).patch_notes)


def test_added_column_leaves_existing_rows_unchanged(cat, tmp_path):
    v1 = make_version(cat, tmp_path, "v1", {"date=2025-07-01": day_table(1)})
    sch = schema(extra=(pa.field("split", pa.string()),))
    v2 = make_version(cat, tmp_path, "v2", {"date=2025-07-01": day_table(1, sch=sch)})
    got = diff_versions(cat, v1, v2, stats=False)
    assert got.schema.added == ("split",)
    [p] = got.partitions
    assert (p.method, p.changed, p.unchanged) == ("compared", 0, 200)


def test_diff_refuses_two_datasets(cat, tmp_path):
    v1 = make_version(cat, tmp_path, "v1", {"date=2025-07-01": day_table(1)})
    v2 = make_version(cat, tmp_path, "v2", {"date=2025-07-01": day_table(1)}, dataset="other")
    with pytest.raises(diff_mod.DiffError, match="different datasets"):
        diff_versions(cat, v1, v2)
