"""apply_qc on chunk tables: flag columns, hard failures, stats and their exact merge."""
from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import connectors
from connectors.base import ColumnInfo
from expectations.exceptions import QCConfigError
from expectations.qc import flags as fl
from expectations.qc.apply import apply_qc, extend_schema
from expectations.qc.config import QCConfig
from expectations.qc.plan import plan_qc
from expectations.qc.stats import merge_qc_stats, qc_stats
from pipelines import recipe as recipe_mod

REPO = Path(__file__).resolve().parents[3]
RECIPES = REPO / "examples" / "recipes"
PCO2 = "partial_pressure_of_carbon_dioxide_in_sea_water"
DOXY = "mole_concentration_of_dissolved_molecular_oxygen_in_sea_water"


def read_recipe(name: str, shared_data) -> tuple[pa.Table, tuple[ColumnInfo, ...], pa.Schema]:
    """The whole file through its connector, as the pipeline reads it."""
    recipe = recipe_mod.load(RECIPES / name)
    source = recipe.sources[0]
    connector = connectors.get(source.kind)
    uri = str((RECIPES / source.uris()[0]).resolve())
    plan = connector.plan(source, uri, "0" * 64, Path(uri).stat().st_size)
    tables = [connector.read(source, chunk, plan.schema).table for chunk in plan.chunks]
    return pa.concat_tables(tables), plan.columns, plan.schema


@pytest.fixture(scope="module")
def ooi(shared_data):
    return read_recipe("dsg_ooi_pco2w_ce01issm.yaml", shared_data)


@pytest.fixture(scope="module")
def copernicus(shared_data):
    return read_recipe("dsg_copernicus_exec0220.yaml", shared_data)


def col(table, name) -> np.ndarray:
    return table.column(name).to_numpy()


def test_ooi_pco2_implausible_values_fail_and_are_hard_failed(ooi):
    table, columns, _ = ooi
    plan = plan_qc(columns, QCConfig(hard_tests=["gross_range"]))
    result = apply_qc(table, plan)
    pco2 = pc.fill_null(table.column(PCO2), np.nan).to_numpy()
    worst = int(np.nanargmax(pco2))
    assert pco2[worst] > 73_000
    assert col(result.table, f"{PCO2}_qc_gross_range")[worst] == fl.FAIL
    assert col(result.table, f"{PCO2}_qc")[worst] == fl.FAIL
    expected_hard = np.nan_to_num(pco2, nan=0) > 5000  # the default fail span is [0, 5000]
    assert result.hard_fail.to_numpy(zero_copy_only=False).tolist() == expected_hard.tolist()
    assert result.reasons[worst].as_py() == f"qc_fail:{PCO2}:gross_range"
    assert result.reasons.null_count == table.num_rows - int(expected_hard.sum())


def test_copernicus_doxy_fails_and_source_flags_join_the_aggregate(copernicus):
    table, columns, _ = copernicus
    result = apply_qc(table, plan_qc(columns, QCConfig()))
    doxy = pc.fill_null(table.column(DOXY), np.nan).to_numpy()
    assert col(result.table, f"{DOXY}_qc")[np.nanargmax(doxy)] == fl.FAIL
    counts = result.stats["qc"][DOXY]["source_flag"]
    assert (counts["1"], counts["3"], counts["4"]) == (112, 17, 1846)
    aggregate = col(result.table, f"{DOXY}_qc")
    source = col(result.table, f"{DOXY}_qc_source_flag")
    assert not ((source == fl.FAIL) & (aggregate != fl.FAIL)).any()  # never improved


def test_flag_columns_sit_before_source_file_with_lineage_metadata(ooi):
    table, columns, schema = ooi
    plan = plan_qc(columns, QCConfig())
    result = apply_qc(table, plan)
    assert result.table.schema == extend_schema(schema, plan)
    assert result.table.schema.names[-1] == "source_file"
    field = result.table.schema.field(f"{PCO2}_qc_spike")
    assert field.type == pa.uint8()
    assert field.metadata[b"haina.role"] == b"flag"
    assert field.metadata[b"haina.derived_from"] == PCO2.encode()
    assert field.metadata[b"haina.qc_test"] == b"spike"
    assert result.table.schema.field(f"{PCO2}_qc").metadata[b"haina.qc_test"] == b"aggregate"
    for name in table.column_names:  # the data columns are untouched
        assert result.table.column(name).equals(table.column(name))


def test_stats_count_every_row_and_histogram_edges_are_fixed(ooi):
    table, columns, _ = ooi
    plan = plan_qc(columns, QCConfig(hist_bins=50))
    stats = apply_qc(table, plan).stats
    for tests in stats["qc"][PCO2].values():
        assert sum(tests.values()) == table.num_rows
    daily = stats["qc_daily"][PCO2]
    assert sum(sum(v.values()) for v in daily.values()) == table.num_rows
    assert min(daily) >= "2015-01-01" and max(daily) <= "2015-12-31"
    hist = stats["hist"][PCO2]
    assert hist["edges"] == np.linspace(0, 5000, 51).tolist()
    pco2 = pc.drop_null(table.column(PCO2)).to_numpy()
    pco2 = pco2[np.isfinite(pco2)]
    assert sum(hist["counts"]) + hist["under"] + hist["over"] == pco2.size
    assert hist["over"] == int((pco2 > 5000).sum()) == 2
    assert hist["thresholds"] == {"fail_min": 0.0, "fail_max": 5000.0, "suspect_min": 100.0,
                                  "suspect_max": 2500.0}


def test_merge_is_exact_associative_commutative_with_identity(copernicus):
    table, columns, _ = copernicus
    plan = plan_qc(columns, QCConfig())
    whole = qc_stats(apply_qc(table, plan).table, plan)
    flagged = apply_qc(table, plan).table
    parts = [qc_stats(flagged.slice(a, b - a), plan)
             for a, b in ((0, 500), (500, 1300), (1300, table.num_rows))]
    for order in itertools.permutations(parts):
        left = merge_qc_stats(merge_qc_stats(order[0], order[1]), order[2])
        right = merge_qc_stats(order[0], merge_qc_stats(order[1], order[2]))
        assert left == right == whole
    assert merge_qc_stats({}, whole) == whole == merge_qc_stats(whole, {})


def test_recipe_overrides_replace_one_test_and_null_switches_off(ooi):
    table, columns, _ = ooi
    config = QCConfig.model_validate({"variables": {PCO2: {
        "gross_range": {"fail": [0, 100000]}, "spike": None}}})
    plan = plan_qc(columns, config)
    (pco2,) = [v for v in plan.variables if v.name == PCO2]
    assert pco2.tests["gross_range"]["fail"] == (0.0, 100000.0)
    assert "spike" not in pco2.tests
    result = apply_qc(table, plan)
    assert f"{PCO2}_qc_spike" not in result.table.column_names
    assert (col(result.table, f"{PCO2}_qc_gross_range") != fl.FAIL).all()
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_tests_filter_and_disabled():
    columns = [ColumnInfo("time", "coordinate"), ColumnInfo("sea_water_temperature", "variable")]
    plan = plan_qc(columns, QCConfig(tests=["gross_range"]))
    assert [list(v.tests) for v in plan.variables] == [["gross_range"]] and not plan.row_tests
    table = pa.table({"time": pa.array([0, 1], pa.timestamp("us", tz="UTC")),
                      "sea_water_temperature": pa.array([10.0, 99.0], pa.float32())})
    result = apply_qc(table, plan)
    assert col(result.table, "sea_water_temperature_qc").tolist() == [1, 4]
    off = apply_qc(table, plan_qc(columns, QCConfig(enabled=False)))
    assert off.table == table and off.stats == {} and not pc.any(off.hard_fail).as_py()


@pytest.mark.parametrize("config, where", [
    ({"region": "atlantis"}, "quality.qc.region"),
    ({"variables": {"sea_water_salinty": {"spike": {"suspect": 1}}}},
     "quality.qc.variables.sea_water_salinty"),
])
def test_config_errors_say_where_and_how_to_fix(config, where):
    columns = [ColumnInfo("sea_water_temperature", "variable")]
    with pytest.raises(QCConfigError) as err:
        plan_qc(columns, QCConfig.model_validate(config))
    assert err.value.where == where and err.value.fix


def test_region_thresholds_replace_global_ones():
    columns = [ColumnInfo("sea_water_practical_salinity", "variable")]
    plan = plan_qc(columns, QCConfig(region="estuary"))
    assert plan.variables[0].tests["gross_range"]["suspect"] == (0.0, 36.0)
    with pytest.raises(ValueError, match="within fail span"):
        QCConfig.model_validate({"variables": {"x": {"gross_range": {
            "fail": [0, 1], "suspect": [-1, 1]}}}})


def test_ordered_tests_never_compare_platforms():
    # two stations interleaved in row order: each alone is smooth, together they would spike
    n = 40
    times = np.repeat(np.arange(n // 2) * 600_000_000, 2)
    table = pa.table({
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "sea_water_temperature": pa.array(np.tile([10.0, 20.0], n // 2), pa.float32()),
        "station_id": pa.array(np.tile(["a", "b"], n // 2)),
    })
    columns = [ColumnInfo("time", "coordinate"), ColumnInfo("sea_water_temperature", "variable"),
               ColumnInfo("station_id", "id")]
    result = apply_qc(table, plan_qc(columns, QCConfig(tests=["spike", "rate_of_change"])))
    spike = col(result.table, "sea_water_temperature_qc_spike")
    assert set(spike[2:-2].tolist()) == {fl.GOOD}
    assert set(col(result.table, "sea_water_temperature_qc_rate_of_change")[2:]) == {fl.GOOD}


def test_windowed_chunk_equals_whole_chunk(ooi):
    table, columns, _ = ooi
    whole = apply_qc(table, plan_qc(columns, QCConfig()))
    small = apply_qc(table, plan_qc(columns, QCConfig(window=16)))
    assert small.table.equals(whole.table) and small.stats == whole.stats


def test_grid_cells_sharing_a_time_are_not_duplicates():
    """A grid time step: every cell has the same time; that is not a duplicated sample."""
    from expectations.qc import qartod as qc

    time = np.array(["2025-07-01T00:00"] * 4, dtype="datetime64[us]")
    assert qc.time_check(time, series=False).tolist() == [1, 1, 1, 1]
    assert qc.time_check(time).tolist() == [3, 3, 3, 3]


def test_histogram_matches_numpy_away_from_edges_and_counts_the_rest():
    from expectations.qc.stats import histogram

    rng = np.random.default_rng(7)
    edges = np.linspace(-2.5, 40.0, 51)
    x = rng.uniform(-10, 50, 20_000)
    x = x[np.abs(((x + 2.5) / 0.85) - np.round((x + 2.5) / 0.85)) > 1e-9]  # no value on an edge
    special = np.array([40.0, -2.5, np.nan, np.inf, -np.inf, 40.0 + 1e-9, -2.5 - 1e-9])
    found = histogram(np.concatenate([x, special]), edges.tolist())
    finite = np.concatenate([x, special[np.isfinite(special)]])
    expected, _ = np.histogram(finite, bins=edges)  # includes the top edge in the last bin
    assert found["counts"] == expected.tolist()
    # an infinity is a (bad) value: -inf is under the range, +inf over it; NaN is not counted
    assert found["under"] == int((finite < -2.5).sum()) + 1
    assert found["over"] == int((finite > 40.0).sum()) + 1
    assert sum(found["counts"]) + found["under"] + found["over"] == finite.size + 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_histogram_fast_path_for_values_inside_the_edges_matches_numpy(dtype):
    """The common chunk (all finite, all within the edges) skips clipping and masks."""
    from expectations.qc.stats import histogram

    rng = np.random.default_rng(3)
    edges = np.linspace(-2.0, 38.0, 41)  # width 1.0: integers and edges are exact
    x = rng.uniform(-2.0, 38.0, 10_000).astype(dtype)
    x = np.concatenate([x, np.array([-2.0, 38.0, 0.0, 17.0], dtype=dtype)])  # both outer edges
    found = histogram(x, edges.tolist())
    expected, _ = np.histogram(x.astype(np.float64), bins=edges)
    assert found == {"counts": expected.tolist(), "under": 0, "over": 0}
    assert sum(found["counts"]) == x.size


def _grid_chunk(values: np.ndarray) -> tuple[pa.Table, tuple[ColumnInfo, ...]]:
    n = len(values)
    columns = (ColumnInfo("time", "coordinate"), ColumnInfo("latitude", "coordinate"),
               ColumnInfo("longitude", "coordinate"),
               ColumnInfo("sea_water_temperature", "variable", units="degC",
                          standard_name="sea_water_temperature"))
    table = pa.table({
        "time": pa.array(np.full(n, 1_700_000_000_000_000), pa.int64()).cast(
            pa.timestamp("us", tz="UTC")),
        "latitude": np.linspace(30, 31, n), "longitude": np.linspace(120, 121, n),
        "sea_water_temperature": pa.array(values)})
    return table, columns


@pytest.mark.parametrize("values", [
    np.linspace(0.0, 30.0, 500, dtype=np.float32),                      # clean: fast path
    np.array([-2.5, 40.0, 12.0], dtype=np.float32),                      # on the fail bounds
    np.array([12.0, np.float32(40.0) + np.float32(1e-5), 5.0], np.float32),  # just over: FAIL
    np.array([12.0, np.nan, 5.0], dtype=np.float32),                      # missing
    np.array([12.0, 35.5, 5.0], dtype=np.float64),                        # suspect only
])
def test_gross_range_shortcut_gives_the_flags_of_the_full_test(values, monkeypatch):
    """Chunks decided from their min and max get exactly what the row-wise test gives."""
    from expectations.qc import arrays

    table, columns = _grid_chunk(values)
    plan = plan_qc(columns, QCConfig())
    fast = apply_qc(table, plan)
    # every min/max shortcut off (gross range, location, histogram): the row-wise paths
    monkeypatch.setattr(arrays, "all_within", lambda *args, **kwargs: False)
    slow = apply_qc(table, plan)
    flags = [name for name in fast.table.column_names if name not in table.column_names]
    assert fast.table.select(flags).equals(slow.table.select(flags))  # NaN data != NaN: flags only
    assert fast.stats == slow.stats


# ------------------------------------------------------------------ profiles, positions, rows


@pytest.fixture(scope="module")
def argo_chunks(shared_data):
    """1901462_prof.nc as the pipeline reads it: 21 delayed-mode profiles in chunks of 10."""
    recipe = recipe_mod.load(RECIPES / "argo_1901462_prof.yaml")
    source = recipe.sources[0]
    connector = connectors.get(source.kind)
    uri = str((RECIPES / source.uris()[0]).resolve())
    plan = connector.plan(source, uri, "0" * 64, Path(uri).stat().st_size)
    return [connector.read(source, chunk, plan.schema).table for chunk in plan.chunks], \
        plan.columns


def test_argo_profiles_are_not_compared_with_the_next_profile(argo_chunks):
    """The file's own flags are all good (delayed mode). Comparing one profile's deepest level
    with the next profile's surface made 36 spike FAILs (temperature) and 36 SUSPECTs
    (salinity); per platform and profile, along depth, there are none."""
    tables, columns = argo_chunks
    plan = plan_qc(columns, QCConfig())
    assert plan.profile_column == "profile_index"
    for table in tables:
        result = apply_qc(table, plan)
        for var in ("sea_water_temperature", "sea_water_salinity"):
            assert set(col(result.table, f"{var}_qc_source_flag").tolist()) == {fl.GOOD}
            spike = col(result.table, f"{var}_qc_spike")
            assert not np.isin(spike, (fl.SUSPECT, fl.FAIL)).any(), var
            # the first and last level of every profile have one neighbour: not evaluated
            profiles = len(set(col(table, "profile_index").tolist()))
            assert (spike == fl.NOT_EVALUATED).sum() == 2 * profiles
            # levels of a profile share a time: no rate of change along depth
            assert set(col(result.table, f"{var}_qc_rate_of_change").tolist()
                       if f"{var}_qc_rate_of_change" in result.table.column_names
                       else [fl.NOT_EVALUATED]) == {fl.NOT_EVALUATED}
        assert set(col(result.table, "sea_water_temperature_qc").tolist()) == {fl.GOOD}


def _series_table(values, lat=None, lon=None, platform=None, step=600, extra=None):
    n = len(values)
    table = {"time": pa.array(np.arange(n) * step * 1_000_000, pa.int64()).cast(
                 pa.timestamp("us", tz="UTC")),
             "latitude": np.full(n, 44.0) if lat is None else np.asarray(lat, float),
             "longitude": np.full(n, -124.0) if lon is None else np.asarray(lon, float),
             "station_id": np.full(n, "a") if platform is None else np.asarray(platform),
             "sea_water_temperature": np.asarray(values, float),
             **(extra or {}),
             "source_file": np.full(n, "file.csv")}
    columns = (ColumnInfo("time", "coordinate"), ColumnInfo("latitude", "coordinate"),
               ColumnInfo("longitude", "coordinate"), ColumnInfo("station_id", "id"),
               ColumnInfo("sea_water_temperature", "variable"),
               *(ColumnInfo(k, "id") for k in (extra or {})), ColumnInfo("source_file", "source"))
    return pa.table(table), columns


def test_ordered_tests_run_per_profile_column_of_the_recipe():
    # one station, two casts told apart only by a "cast" column: each cast is its own series
    values = [10.0, 10.0, 10.0, 20.0, 20.0, 20.0]
    table, columns = _series_table(values, extra={"cast": ["c1"] * 3 + ["c2"] * 3})
    config = QCConfig(tests=["spike"], profile_column="cast")
    spike = col(apply_qc(table, plan_qc(columns, config)).table, "sea_water_temperature_qc_spike")
    assert spike.tolist() == [2, 1, 2, 2, 1, 2]
    whole = col(apply_qc(table, plan_qc(columns, QCConfig(tests=["spike"]))).table,
                "sea_water_temperature_qc_spike")
    assert whole.tolist() == [2, 1, 3, 3, 1, 2]  # one series: the step looks like two spikes
    with pytest.raises(QCConfigError) as err:
        plan_qc(columns, QCConfig(profile_column="profile"))
    assert err.value.where == "quality.qc.profile_column"


def test_impossible_fix_is_left_out_of_speed_and_region_is_its_own_test():
    lat = [44.0, 44.001, 95.0, 44.002, 44.003, 50.0]
    table, columns = _series_table([10.0] * 6, lat=lat)
    config = QCConfig.model_validate({
        "tests": ["gross_range", "location", "region", "speed", "distance"],
        "location": {"bbox": [-130, 40, -120, 48], "outside": "suspect"},
        "speed": {"suspect": 1.0, "fail": 3.0}, "distance": {"suspect": 5000}})
    result = apply_qc(table, plan_qc(columns, config))
    assert col(result.table, "qc_location").tolist() == [1, 1, 4, 1, 1, 1]
    assert col(result.table, "qc_region").tolist() == [1, 1, 2, 1, 1, 3]
    # the fix after latitude 95 is judged against the last possible fix: GOOD, not FAIL
    assert col(result.table, "qc_speed").tolist() == [2, 1, 2, 1, 1, 4]
    assert col(result.table, "qc_distance").tolist() == [2, 1, 2, 1, 1, 3]
    assert col(result.table, "sea_water_temperature_qc").tolist() == [1, 1, 4, 1, 1, 4]


def test_infinite_values_fail_gross_range_and_stats_stay_finite():
    values = [10.0, np.inf, 11.0, -np.inf, np.nan, 12.0]
    table, columns = _series_table(values)
    result = apply_qc(table, plan_qc(columns, QCConfig()))
    assert col(result.table, "sea_water_temperature_qc_gross_range").tolist() == \
        [1, 4, 1, 4, 9, 1]
    assert col(result.table, "sea_water_temperature_qc").tolist()[:5] == [1, 4, 1, 4, 9]
    hist = result.stats["hist"]["sea_water_temperature"]
    assert (hist["under"], hist["over"], sum(hist["counts"])) == (1, 1, 3)
    series = result.stats["series"]["sea_water_temperature"]
    assert all(v is None or np.isfinite(v) for entry in series["bins"].values()
               for v in entry)
    json.dumps(result.stats, allow_nan=False)  # strict JSON: no NaN, no Infinity
    values_seen = {row["value"] for row in result.stats["samples"]["sea_water_temperature"]}
    assert values_seen == {"inf", "-inf"}


def test_hard_failed_rows_keep_their_content_in_quarantine():
    from expectations.qc.apply import quarantine_rows

    table, columns = _series_table([10.0, 99.0, 11.0, 12.0])
    table = table.set_column(table.schema.get_field_index("station_id"), "station_id",
                             pa.array(['a "quoted"\\nname'] * 4))
    result = apply_qc(table, plan_qc(columns, QCConfig(hard_tests=["gross_range"])))
    hard = result.hard_fail
    assert hard.to_pylist() == [False, True, False, False]
    rows = quarantine_rows(result.table.filter(hard), pc.filter(result.reasons, hard))
    record = rows.to_pylist()[0]
    assert record["reason"] == "qc_fail:sea_water_temperature:gross_range"
    assert record["detail"] == "sea_water_temperature=99 failed the gross_range test"
    assert record["source_file"] == "file.csv"
    content = json.loads(record["raw"])
    assert content["time"] == "1970-01-01T00:10:00.000000Z"
    assert content["sea_water_temperature"] == 99.0
    assert (content["latitude"], content["longitude"]) == (44.0, -124.0)
    assert content["station_id"] == 'a "quoted"\\nname'
    assert content["sea_water_temperature_qc_gross_range"] == 4


def test_row_tests_can_be_hard_tests():
    table, columns = _series_table([10.0, 10.0, 10.0], lat=[44.0, 95.0, 44.0])
    result = apply_qc(table, plan_qc(columns, QCConfig(hard_tests=["location"])))
    assert result.hard_fail.to_pylist() == [False, True, False]
    assert result.reasons.to_pylist() == [None, "qc_fail:position:location", None]


def test_defaults_plan_the_attenuated_signal_test():
    columns = [ColumnInfo("time", "coordinate"), ColumnInfo("station_id", "id"),
               ColumnInfo("sea_water_practical_salinity", "variable")]
    tests = plan_qc(columns, QCConfig()).variables[0].tests
    assert tests["attenuated_signal"] == {"suspect": 0.001, "fail": 0.0002, "period": 86400.0,
                                          "check": "std", "min_obs": 12}
    estuary = plan_qc(columns, QCConfig(region="estuary")).variables[0].tests
    assert estuary["attenuated_signal"]["check"] == "range"
    with pytest.raises(ValueError, match="must not exceed suspect"):
        QCConfig.model_validate({"variables": {"x": {"attenuated_signal": {
            "suspect": 0.1, "fail": 0.2, "period": 3600}}}})


def test_distance_runs_without_a_time_column():
    # a table of fixes in row order (e.g. a survey's stations): distance needs no time
    table = pa.table({"latitude": [44.0, 44.0, 44.5, 44.5], "longitude": [-124.0] * 4,
                      "platform_id": ["p"] * 4, "sea_water_temperature": [10.0] * 4})
    columns = (ColumnInfo("latitude", "coordinate"), ColumnInfo("longitude", "coordinate"),
               ColumnInfo("platform_id", "id"), ColumnInfo("sea_water_temperature", "variable"))
    config = QCConfig.model_validate({"tests": ["gross_range", "distance"],
                                      "distance": {"suspect": 10_000}})
    result = apply_qc(table, plan_qc(columns, config))
    assert col(result.table, "qc_distance").tolist() == [2, 1, 3, 1]  # 55.6 km, then still
