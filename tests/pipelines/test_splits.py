"""Leakage-free splits: group integrity, stability across batches, fractions, key arithmetic."""
from __future__ import annotations

import datetime as dt
import glob
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import connectors
from pipelines import recipe as recipe_mod
from pipelines import splits
from pipelines.exceptions import RecipeError
from pipelines.splits import SplitConfig

REPO = Path(__file__).resolve().parents[2]
UTC = dt.UTC
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


def _config(**kw) -> SplitConfig:
    return SplitConfig(**{"by": "platform_id", "fractions": FRACTIONS, "seed": 42, **kw})


def _expected_split(key: str, seed: int, fractions: dict[str, float]) -> str:
    """Independent oracle: SHA-256 of the documented canonical bytes, cumulative fractions
    over the split names in sorted order."""
    digest = hashlib.sha256(f"haina-split-v1\x1f{seed}\x1f{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name in sorted(fractions):
        edge += fractions[name]
        if u < edge:
            return name
    return max(n for n in fractions if fractions[n] > 0)


def _straddling_groups(keys: pa.Array, split: pa.Array) -> int:
    pairs = pa.table({"k": keys, "s": split.dictionary_decode()})
    per_key = pairs.group_by("k").aggregate([("s", "count_distinct")])
    return int(pc.sum(pc.greater(per_key["s_count_distinct"], 1)).as_py() or 0)


def _synthetic(n_rows: int, n_groups: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, n_groups, n_rows)
    return pa.table({"platform_id": pa.array([f"P{i:06d}" for i in range(n_groups)]).take(ids),
                     "value": rng.normal(size=n_rows).astype(np.float32)})


# --- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"fractions": {"train": 0.8, "test": 0.1}}, "sum to 1"),
    ({"fractions": {"train": 1.2, "test": -0.2}}, "in [0, 1]"),
    ({"fractions": {"train": 1.0}}, "between 2 and 127"),
    ({"fractions": {"1st": 0.5, "test": 0.5}}, "identifiers"),
    ({"by": "time_block"}, "needs block"),
    ({"by": "time_block", "block": "7 days"}, "needs block"),
    ({"by": "tile"}, "needs tile_degrees"),
    ({"by": "tile", "tile_degrees": 0}, "greater than 0"),
    ({"block": "7d"}, "only used with by: time_block"),
    ({"tile_degrees": 1.0}, "only used with by: tile"),
    ({"seed": -1}, "greater than or equal to 0"),
    ({"fraction": {"train": 1}}, "Extra inputs"),
])
def test_bad_configs_are_refused(kw, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _config(**kw)


def test_config_is_frozen_and_names_are_sorted():
    config = _config()
    assert config.names == ("test", "train", "validation")
    with pytest.raises(ValidationError):
        config.seed = 1


# --- assignment ------------------------------------------------------------------------------
def test_assignment_matches_the_documented_hash():
    keys = [f"P{i:06d}" for i in range(300)]
    got = splits.assign_splits(pa.table({"platform_id": keys}), _config())
    assert got.type == pa.dictionary(pa.int8(), pa.string())
    assert got.dictionary.to_pylist() == ["test", "train", "validation"]
    assert got.dictionary_decode().to_pylist() == [_expected_split(k, 42, FRACTIONS) for k in keys]


def test_known_values_are_pinned():
    # literal values, so a change of the hashing scheme cannot pass unnoticed
    table = pa.table({"platform_id": ["1901462", "41002", "P000001", "P000002", "P000005"]})
    got = splits.assign_splits(table, _config()).dictionary_decode().to_pylist()
    assert got == [_expected_split(k, 42, FRACTIONS) for k in table["platform_id"].to_pylist()]
    assert got == PINNED


PINNED = ["train", "train", "test", "validation", "train"]  # u = .293 .110 .098 .922 .624


def test_order_of_fractions_in_the_recipe_does_not_matter():
    table = _synthetic(2000, 500)
    reordered = {"test": 0.1, "validation": 0.1, "train": 0.8}
    a = splits.assign_splits(table, _config())
    b = splits.assign_splits(table, _config(fractions=reordered))
    assert a.equals(b)


def test_seed_changes_the_assignment():
    table = _synthetic(2000, 500)
    a = splits.assign_splits(table, _config(seed=1)).dictionary_decode()
    b = splits.assign_splits(table, _config(seed=2)).dictionary_decode()
    assert not a.equals(b)


def test_no_group_straddles_and_fractions_are_near_targets():
    table = _synthetic(200_000, 20_000)
    split = splits.assign_splits(table, _config())
    assert _straddling_groups(table["platform_id"].combine_chunks(), split) == 0
    by_group = splits.group_counts(table, _config())
    achieved = splits.split_fractions(by_group)
    # 20 000 groups: the binomial standard deviation of a 0.1 fraction is 0.002
    for name, target in FRACTIONS.items():
        assert abs(achieved[name] - target) < 0.01, (name, achieved)
    assert sum(by_group.values()) == 20_000


def test_stable_when_data_arrive_in_batches():
    table = _synthetic(50_000, 3_000, seed=1)
    whole = splits.assign_splits(table, _config()).dictionary_decode()
    shuffled = np.random.default_rng(2).permutation(table.num_rows)
    first, second = shuffled[:20_000], shuffled[20_000:]
    parts = [splits.assign_splits(table.take(idx), _config()).dictionary_decode()
             for idx in (first, second)]
    recombined = pa.concat_arrays(parts).take(pa.array(np.argsort(shuffled)))
    assert recombined.equals(whole)


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.integers(-2**62, 2**62) | st.none(), min_size=1, max_size=60),
       cut=st.integers(0, 60), seed=st.integers(0, 2**32))
def test_property_batching_never_changes_a_split(keys, cut, seed):
    config = _config(by="mmsi", seed=seed)
    table = pa.table({"mmsi": pa.array(keys, pa.int64())})
    whole = splits.assign_splits(table, config).dictionary_decode()
    cut = min(cut, len(keys))
    parts = pa.concat_arrays([splits.assign_splits(table.slice(0, cut), config).dictionary_decode(),
                              splits.assign_splits(table.slice(cut), config).dictionary_decode()])
    assert parts.equals(whole)
    expected = [_expected_split(splits.canonical_key(k), seed, FRACTIONS) for k in keys]
    assert whole.to_pylist() == expected


def test_int_and_string_keys_share_groups_and_nulls_form_one_group():
    ints = pa.table({"mmsi": pa.array([366999712, 367123450, None, 5], pa.int64())})
    strings = pa.table({"mmsi": pa.array(["366999712", "367123450", None, "5"])})
    dictionary = pa.table({"mmsi": strings["mmsi"].combine_chunks().dictionary_encode()})
    config = _config(by="mmsi")
    a, b, c = (splits.assign_splits(t, config) for t in (ints, strings, dictionary))
    assert a.equals(b) and a.equals(c)
    assert a.dictionary_decode()[2].as_py() == _expected_split("\x00null", 42, FRACTIONS)


def test_zero_fraction_split_is_never_chosen():
    config = _config(fractions={"train": 0.7, "validation": 0.0, "test": 0.3})
    got = splits.split_counts(splits.assign_splits(_synthetic(5000, 2000), config))
    assert "validation" not in got and set(got) == {"train", "test"}


def test_empty_table():
    table = pa.table({"platform_id": pa.array([], pa.string())})
    got = splits.assign_splits(table, _config())
    assert len(got) == 0 and got.dictionary.to_pylist() == ["test", "train", "validation"]


def test_missing_key_column_names_the_columns_and_the_fix():
    with pytest.raises(RecipeError, match=r"splits.by: 'mmsi' needs column 'mmsi'.*value.*Fix"):
        splits.assign_splits(pa.table({"value": [1.0]}), _config(by="mmsi"))


# --- time blocks and tiles -------------------------------------------------------------------
def _times(values) -> pa.Table:
    return pa.table({"time": pa.array(values, pa.timestamp("us", "UTC"))})


@pytest.mark.parametrize("block, when, expected", [
    ("7d", dt.datetime(1970, 1, 8, tzinfo=UTC), 1),
    ("7d", dt.datetime(1970, 1, 7, 23, 59, tzinfo=UTC), 0),
    ("7d", dt.datetime(1969, 12, 31, 23, tzinfo=UTC), -1),
    ("1d", dt.datetime(2018, 6, 17, 12, tzinfo=UTC), 17699),
    ("6h", dt.datetime(1970, 1, 2, 5, 59, tzinfo=UTC), 4),
    ("30min", dt.datetime(1970, 1, 1, 1, 0, tzinfo=UTC), 2),
    ("1M", dt.datetime(2023, 1, 11, tzinfo=UTC), 53 * 12),
    ("3M", dt.datetime(1969, 12, 1, tzinfo=UTC), -1),
    ("1Y", dt.datetime(2001, 8, 15, tzinfo=UTC), 31),
])
def test_time_block_keys(block, when, expected):
    config = _config(by="time_block", block=block)
    assert splits.time_block_keys(_times([when]), config).to_pylist() == [expected]


def test_time_block_keys_match_pandas_and_any_time_unit():
    stamps = pd.date_range("2017-12-25", "2018-03-10", freq="5h", tz="UTC")
    config = _config(by="time_block", block="7d")
    expected = ((stamps - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta("7D")).tolist()
    for unit in ("s", "ms", "us", "ns"):
        table = pa.table({"time": pa.array(stamps.as_unit(unit), pa.timestamp(unit, "UTC"))})
        assert splits.time_block_keys(table, config).to_pylist() == expected
    months = _config(by="time_block", block="1M")
    got = splits.time_block_keys(pa.table({"time": pa.array(stamps)}), months).to_pylist()
    assert got == ((stamps.year - 1970) * 12 + stamps.month - 1).tolist()


def test_null_times_form_one_group():
    config = _config(by="time_block", block="1d")
    table = _times([None, dt.datetime(2020, 1, 1, tzinfo=UTC), None])
    keys = splits.time_block_keys(table, config)
    assert keys.to_pylist() == [None, 18262, None]
    split = splits.assign_splits(table, config).dictionary_decode().to_pylist()
    assert split[0] == split[2] == _expected_split("\x00null", 42, FRACTIONS)
    assert split[1] == _expected_split("18262", 42, FRACTIONS)


def test_tile_keys_match_numpy_floor():
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(-90, 90, 3000), rng.uniform(-180, 180, 3000)
    lat[:3] = [-0.5, 0.0, 89.99]
    lon[:3] = [-180.0, 179.99, -0.01]
    table = pa.table({"latitude": lat, "longitude": lon})
    config = _config(by="tile", tile_degrees=2.5)
    keys = splits.tile_keys(table, config).dictionary_decode().to_pylist()
    expected = [f"{int(a)},{int(b)}" for a, b in
                zip(np.floor(lat / 2.5), np.floor(lon / 2.5), strict=True)]
    assert keys == expected
    assert keys[:3] == ["-1,-72", "0,71", "35,-1"]


def test_tile_keys_with_missing_positions():
    table = pa.table({"latitude": pa.array([10.5, None, 10.9, float("nan")]),
                      "longitude": pa.array([20.5, 20.5, None, 3.0])})
    keys = splits.tile_keys(table, _config(by="tile", tile_degrees=1.0))
    assert keys.dictionary_decode().to_pylist() == ["10,20", None, None, None]
    everything_missing = pa.table({"latitude": pa.nulls(2, pa.float64()),
                                   "longitude": pa.nulls(2, pa.float64())})
    split = splits.assign_splits(everything_missing, _config(by="tile", tile_degrees=1.0))
    assert len(set(split.dictionary_decode().to_pylist())) == 1


# --- integration helpers ---------------------------------------------------------------------
def test_add_split_column_goes_before_source_file_and_replaces_nulls():
    config = _config()
    schema = splits.with_split_field(pa.schema([("platform_id", pa.string()),
                                                ("source_file", pa.string())]), config)
    assert schema.names == ["platform_id", "split", "source_file"]
    assert schema.field("split").metadata[b"haina.role"] == b"id"
    table = pa.table({"platform_id": ["a", "b"], "split": pa.nulls(2, pa.string()),
                      "source_file": ["f", "f"]})
    out = splits.add_split_column(table, config)
    assert out.column_names == ["platform_id", "split", "source_file"]
    assert out["split"].null_count == 0
    # an existing column keeps its place (the dataset schema's order, e.g. with QC flags)
    flagged = table.select(["platform_id", "split"]).append_column("x_qc", pa.array([1, 1]))
    assert splits.add_split_column(flagged, config).column_names == ["platform_id", "split",
                                                                     "x_qc"]
    added = splits.add_split_column(table.select(["platform_id"]), config)
    assert added.column_names == ["platform_id", "split"]
    assert splits.with_split_field(schema, config).equals(schema)
    assert splits.with_split_field(schema, None) is schema


def test_counts_fractions_manifest_and_files(tmp_path):
    config = _config(by="platform_id")
    table = splits.add_split_column(_synthetic(10_000, 1_000), config)
    pq.write_table(table.slice(0, 4000), tmp_path / "a.parquet")
    pq.write_table(table.slice(4000), tmp_path / "b.parquet")
    counts = splits.count_splits_in_files([str(tmp_path / "a.parquet"),
                                           str(tmp_path / "b.parquet")])
    direct = pd.Series(table["split"].to_pylist()).value_counts().to_dict()
    assert counts == direct and sum(counts.values()) == 10_000
    assert splits.merge_counts([{"train": 2}, {"train": 1, "test": 4}]) == {"train": 3, "test": 4}
    assert splits.split_fractions({"train": 3, "test": 1}) == {"test": 0.25, "train": 0.75}
    assert splits.split_fractions({"train": 0}) == {"train": 0.0}
    entry = splits.manifest_entry(config, counts, splits.group_counts(table, config))
    assert entry["by"] == "platform_id" and entry["seed"] == 42
    assert entry["fractions"] == {"test": 0.1, "train": 0.8, "validation": 0.1}
    assert entry["rows"] == {n: counts.get(n, 0) for n in ("test", "train", "validation")}
    assert sum(entry["groups"].values()) == 1000
    assert entry["achieved"]["train"] == pytest.approx(counts["train"] / 10_000)


# --- real data -------------------------------------------------------------------------------
def _read_recipe(name: str) -> pa.Table:
    """Plan and read every file of an example recipe with its connector (no pipeline)."""
    recipe = recipe_mod.load(REPO / "examples" / "recipes" / f"{name}.yaml")
    tables = []
    for config in recipe.sources:
        for pattern in config.uris():
            for path in sorted(glob.glob(str(recipe.base_dir / pattern))):
                data = Path(path).read_bytes()
                connector = connectors.get(config.kind)
                plan = connector.plan(config, path, hashlib.sha256(data).hexdigest(), len(data))
                tables += [connector.read(config, chunk, plan.schema).table
                           for chunk in plan.chunks]
    assert tables, f"{name}: no source file found"
    return pa.concat_tables(tables)


@pytest.fixture(scope="module")
def ais(shared_data) -> pa.Table:
    return _read_recipe("ais_marinecadastre_20230111")


@pytest.mark.realdata
@pytest.mark.parametrize("config", [
    SplitConfig(by="mmsi", fractions=FRACTIONS, seed=42),
    SplitConfig(by="tile", tile_degrees=1.0, fractions=FRACTIONS, seed=7),
    SplitConfig(by="time_block", block="1h", fractions=FRACTIONS, seed=3),
], ids=["mmsi", "tile", "time_block"])
def test_real_ais_groups_never_straddle_and_are_stable(ais, config):
    keys = splits.group_keys(ais, config)
    whole = splits.assign_splits(ais, config)
    assert _straddling_groups(keys.dictionary_decode() if pa.types.is_dictionary(keys.type)
                              else keys, whole) == 0
    # two incremental versions: the rows of the first half, then the rest
    half = ais.num_rows // 2
    parts = [splits.assign_splits(ais.slice(0, half), config),
             splits.assign_splits(ais.slice(half), config)]
    assert pa.concat_arrays([p.dictionary_decode() for p in parts]).equals(
        whole.dictionary_decode())


@pytest.mark.realdata
def test_real_ais_fractions_near_targets(ais):
    config = SplitConfig(by="mmsi", fractions=FRACTIONS, seed=42)
    assert pc.count_distinct(ais["mmsi"]).as_py() == 1000
    achieved = splits.split_fractions(splits.group_counts(ais, config))
    # 1000 vessels: the standard deviation of a 0.1 fraction is 0.0095
    for name, target in FRACTIONS.items():
        assert abs(achieved[name] - target) < 0.04, achieved
    first = splits.assign_splits(ais, config).dictionary_decode()
    mmsi = ais["mmsi"].to_pylist()
    assert first.to_pylist()[:50] == [_expected_split(str(m), 42, FRACTIONS) for m in mmsi[:50]]


@pytest.mark.realdata
def test_real_stations_by_station_and_by_day(shared_data):
    names = ["station_ndbc_41002", "station_coops_9414458", "station_cmop_sandi_salinity",
             "station_erddap_glider_amelia"]
    tables = [_read_recipe(n).select(["time", "latitude", "longitude", "station_id"])
              for n in names]
    combined = pa.concat_tables(tables)
    by_station = SplitConfig(by="station_id", fractions=FRACTIONS, seed=42)
    split = splits.assign_splits(combined, by_station)
    assert _straddling_groups(combined["station_id"].combine_chunks(), split) == 0
    expected = {s: _expected_split(s, 42, FRACTIONS)
                for s in ("41002", "9414458", "sandi", "amelia-20180501T0000")}
    got = dict(zip(combined["station_id"].to_pylist(), split.dictionary_decode().to_pylist(),
                   strict=True))
    assert got == expected
    # NDBC 41002, 2018-06-17 .. 2018-08-01 in one-day blocks: ~46 groups
    ndbc = tables[0].sort_by("time")
    by_day = SplitConfig(by="time_block", block="1d", fractions=FRACTIONS, seed=42)
    keys = splits.time_block_keys(ndbc, by_day)
    assert 40 <= pc.count_distinct(keys).as_py() <= 50
    whole = splits.assign_splits(ndbc, by_day).dictionary_decode()
    assert _straddling_groups(keys, splits.assign_splits(ndbc, by_day)) == 0
    # a day cut in two by the batch boundary keeps one split in both batches
    cut = ndbc.num_rows // 2 + 7
    again = pa.concat_arrays([splits.assign_splits(ndbc.slice(0, cut), by_day).dictionary_decode(),
                              splits.assign_splits(ndbc.slice(cut), by_day).dictionary_decode()])
    assert again.equals(whole)
    days = (pd.Series(ndbc["time"].to_pandas()) - pd.Timestamp("1970-01-01", tz="UTC")) \
        // pd.Timedelta("1D")
    assert keys.to_pylist() == days.tolist()
