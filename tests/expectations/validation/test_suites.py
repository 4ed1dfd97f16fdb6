"""suites_for and the packaged physical-range suites."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from connectors.base import ColumnInfo
from connectors.units import canonical_units
from expectations.exceptions import RangeOverrideError, SuiteError
from expectations.quality_config import QualityConfig
from expectations.validation.checks import compile_checks
from expectations.validation.suites import builtin_suite_path, load_suite, suites_for
from pipelines.recipe import Coverage

COLUMNS = [
    ColumnInfo("time", "coordinate", source_name="TIME"),
    ColumnInfo("depth", "coordinate", units="m"),
    ColumnInfo("latitude", "coordinate", source_name="LATITUDE"),
    ColumnInfo("longitude", "coordinate", source_name="LONGITUDE"),
    ColumnInfo("sea_water_temperature", "variable", units="degC"),
    ColumnInfo("temp_adj", "variable", units="degC", standard_name="sea_water_temperature"),
    ColumnInfo("mystery", "variable"), ColumnInfo("source_file", "source"),
]
PACKAGED = ["sea_water_temperature", "sea_water_potential_temperature", "sea_surface_temperature",
            "sea_water_salinity", "sea_water_practical_salinity", "eastward_sea_water_velocity",
            "northward_sea_water_velocity", "surface_eastward_sea_water_velocity",
            "surface_northward_sea_water_velocity", "sea_surface_height_above_geoid",
            "height_above_reference_ellipsoid", "sea_water_pressure",
            "moles_of_oxygen_per_unit_mass_in_sea_water",
            "mole_concentration_of_dissolved_molecular_oxygen_in_sea_water",
            "partial_pressure_of_carbon_dioxide_in_sea_water",
            "sea_surface_wave_significant_height", "wind_speed", "air_pressure_at_mean_sea_level",
            "air_temperature", "water_surface_height_above_reference_datum"]


def by_name(suites):
    return {s["name"]: s for s in suites}


def betweens(suite, column):
    return [e["kwargs"] for e in suite["expectations"]
            if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == column]


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_suite_is_valid_cited_and_in_canonical_units(name):
    suite = load_suite(builtin_suite_path(name))
    assert suite["meta"]["source"] and suite["meta"]["units"] == canonical_units(name)
    assert compile_checks([suite])


def test_packaged_ranges_literal():
    ranges = {n: betweens(load_suite(builtin_suite_path(n)), n)[0] for n in PACKAGED}
    assert (ranges["sea_water_temperature"]["min_value"],
            ranges["sea_water_temperature"]["max_value"]) == (-2.5, 40.0)
    assert (ranges["sea_water_pressure"]["min_value"],
            ranges["sea_water_pressure"]["max_value"]) == (-5.0, 12000.0)
    assert (ranges["air_pressure_at_mean_sea_level"]["min_value"],
            ranges["air_pressure_at_mean_sea_level"]["max_value"]) == (850.0, 1100.0)


def test_default_suites_without_coverage(tmp_path):
    suites = by_name(suites_for(COLUMNS, QualityConfig(), None, tmp_path))
    assert set(suites) == {"haina.kind.grid", "haina.coordinates", "sea_water_temperature",
                           "temp_adj"}
    coords = suites["haina.coordinates"]
    assert betweens(coords, "latitude") == [{"column": "latitude", "min_value": -90.0,
                                             "max_value": 90.0}]
    assert betweens(coords, "longitude")[0]["strict_max"] is True
    assert betweens(coords, "depth") == [{"column": "depth", "min_value": -5.0,
                                          "max_value": 11000.0}]
    not_null = {e["kwargs"]["column"] for e in coords["expectations"]
                if e["type"] == "expect_column_values_to_not_be_null"}
    assert not_null == {"time", "latitude", "longitude"}  # depth may be null
    # found by standard name, retargeted at the actual column
    assert betweens(suites["temp_adj"], "temp_adj")[0]["max_value"] == 40.0
    assert compile_checks(list(suites.values()))


def test_coordinates_the_source_lacks_may_be_null(tmp_path):
    """A grid without a time axis, a station file without its position: null by design."""
    columns = [ColumnInfo("time", "coordinate"), *COLUMNS[1:]]
    coords = by_name(suites_for(columns, QualityConfig(), None, tmp_path))["haina.coordinates"]
    not_null = {e["kwargs"]["column"] for e in coords["expectations"]
                if e["type"] == "expect_column_values_to_not_be_null"}
    assert not_null == {"latitude", "longitude"}


def test_coverage_adds_time_bbox_and_depth_bounds(tmp_path):
    coverage = Coverage(time={"start": "2020-01-01T00:00:00", "end": "2020-12-31T00:00:00"},
                        bbox=(-20.0, 0.0, -16.0, 1.0), depth=(0.0, 2000.0))
    coords = by_name(suites_for(COLUMNS, QualityConfig(), coverage, tmp_path))["haina.coordinates"]
    time_bounds = betweens(coords, "time")[0]
    assert time_bounds["min_value"] == "2020-01-01T00:00:00+00:00"
    assert dt.datetime.fromisoformat(time_bounds["max_value"]).year == 2020
    assert {"column": "latitude", "min_value": 0.0, "max_value": 1.0} in [
        {k: v for k, v in b.items() if k != "notes"} for b in betweens(coords, "latitude")]
    assert any(b["min_value"] == -20.0 and b["max_value"] == -16.0
               for b in betweens(coords, "longitude"))
    assert any(b["max_value"] == 2000.0 for b in betweens(coords, "depth"))


def test_antimeridian_bbox_skips_longitude_and_says_so(tmp_path):
    coverage = Coverage(bbox=(170.0, -10.0, -170.0, 10.0))
    coords = by_name(suites_for(COLUMNS, QualityConfig(), coverage, tmp_path))["haina.coordinates"]
    assert len(betweens(coords, "longitude")) == 1  # only the global [-180, 180) check
    assert "antimeridian" in coords["meta"]["skipped"]


def test_range_overrides_replace_only_given_bounds(tmp_path):
    quality = QualityConfig(ranges={"sea_water_temperature": {"max": 32.0},
                                    "latitude": {"min": None, "max": 60.0},
                                    "mystery": {"min": 0.0, "max": 1.0}})
    suites = by_name(suites_for(COLUMNS, quality, None, tmp_path))
    assert betweens(suites["sea_water_temperature"], "sea_water_temperature")[0] == {
        "column": "sea_water_temperature", "min_value": -2.5, "max_value": 32.0}
    assert betweens(suites["haina.coordinates"], "latitude")[0] == {
        "column": "latitude", "min_value": None, "max_value": 60.0}
    assert betweens(suites["haina.ranges"], "mystery") == [
        {"column": "mystery", "min_value": 0.0, "max_value": 1.0}]
    # the packaged file is untouched
    assert betweens(load_suite(builtin_suite_path("sea_water_temperature")),
                    "sea_water_temperature")[0]["max_value"] == 40.0


def test_override_of_unknown_column_is_named(tmp_path):
    with pytest.raises(RangeOverrideError, match="'salinity'"):
        suites_for(COLUMNS, QualityConfig(ranges={"salinity": {"max": 1}}), None, tmp_path)


def test_extra_suite_files_relative_to_base_dir(tmp_path):
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "mine.json").write_text(json.dumps({
        "name": "mine", "expectations": [{"type": "expect_column_values_to_not_be_null",
                                          "kwargs": {"column": "mystery"}}]}))
    quality = QualityConfig(suites=["extra/mine.json"])
    suites = by_name(suites_for(COLUMNS, quality, None, tmp_path))
    assert suites["mine"]["expectations"][0]["kwargs"] == {"column": "mystery"}
    with pytest.raises(SuiteError, match="not found"):
        suites_for(COLUMNS, QualityConfig(suites=["nope.json"]), None, tmp_path)


@pytest.mark.parametrize("text, words", [
    ("{", "not JSON|as JSON"),
    ('{"expectation_suite_name": "old", "expectations": []}', "GE 0.x"),
    ('{"name": "x", "expectations": [{"type": "nope", "kwargs": {}}]}', "expectations\\[0\\]"),
])
def test_load_suite_errors(tmp_path, text, words):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SuiteError, match=words):
        load_suite(path)


def test_qc_suite_turns_flag_fractions_into_expectations(tmp_path):
    from expectations.quality_config import FlagGate

    columns = [*COLUMNS, ColumnInfo("sea_water_temperature_qc", "flag")]
    quality = QualityConfig(qc_gate=FlagGate(max_fail_fraction=0.01),
                            qc_gate_by_variable={"sea_water_temperature": FlagGate(
                                max_fail_fraction=0.0, max_suspect_fraction=0.25)})
    qc = by_name(suites_for(columns, quality, None, tmp_path))["haina.qc"]
    kwargs = [e["kwargs"] for e in qc["expectations"]]
    assert kwargs == [
        {"column": "sea_water_temperature_qc", "value_set": [1, 2, 3, 9], "mostly": 1.0},
        {"column": "sea_water_temperature_qc", "value_set": [1, 2, 9], "mostly": 0.75},
    ]
    assert compile_checks([qc])


@pytest.mark.parametrize("names, kind, keys", [
    ({"time", "latitude", "longitude", "depth", "source_file"}, "grid", set()),
    ({"time", "latitude", "longitude", "station_id", "source_file"}, "timeseries", {"station_id"}),
    ({"time", "latitude", "longitude", "depth", "platform_id", "cycle_number", "source_file"},
     "profile", {"platform_id", "cycle_number"}),
    ({"time", "latitude", "longitude", "mmsi", "source_file"}, "trajectory", {"mmsi"}),
    ({"port_name", "source_file"}, "table", set()),
])
def test_kind_suite_structure_and_keys(names, kind, keys):
    from connectors.base import ColumnInfo
    from expectations.validation.suites import data_kind, kind_suite

    assert data_kind(names) == kind
    suite = kind_suite([ColumnInfo(n, "coordinate") for n in sorted(names)])
    assert suite["name"] == f"haina.kind.{kind}"
    structure, *rest = suite["expectations"]
    assert structure["type"] == "expect_table_columns_to_match_set"
    assert set(structure["kwargs"]["column_set"]) <= names
    assert {e["kwargs"]["column"] for e in rest
            if e["type"] == "expect_column_values_to_not_be_null"} == keys


def test_a_dataset_missing_a_kinds_column_fails_the_structure_check():
    import pyarrow as pa

    from connectors.base import ColumnInfo
    from expectations.validation.arrow_metrics import chunk_metrics
    from expectations.validation.checks import compile_checks
    from expectations.validation.judgement import suite_results
    from expectations.validation.suites import kind_suite

    suite = kind_suite([ColumnInfo(n, "coordinate") for n in ("time", "latitude", "mmsi")])
    table = pa.table({"time": pa.array([1, 2]), "latitude": [1.0, 2.0], "mmsi": [1, None]})
    (result,) = suite_results([suite], chunk_metrics(table, compile_checks([suite])))
    structure, key, *types = result.results
    assert not structure.success and key.result["unexpected_count"] == 1
    # time is int64 here, not a UTC timestamp; mmsi with a null is float64 to pandas
    observed = {r.expectation_config.kwargs["column"]: (r.success, r.result["observed_value"])
                for r in types}
    assert observed == {"time": (False, "int64"), "latitude": (True, "float64"),
                        "mmsi": (False, "float64")}


def test_kind_suites_key_types_and_uniqueness_follow_the_columns_present():
    from connectors.base import ColumnInfo
    from expectations.validation.suites import kind_suite, unique_key

    names = ("time", "latitude", "longitude", "depth", "source_file", "station_id", "sea_water_temperature")
    suite = kind_suite([ColumnInfo(n, "coordinate") for n in names])
    by_type = {}
    for e in suite["expectations"]:
        by_type.setdefault(e["type"], []).append(e["kwargs"])
    assert {k["column"]: k["type_"] for k in by_type["expect_column_type_to_be"]} == {
        "time": "datetime64[us, UTC]", "latitude": "float64", "longitude": "float64",
        "depth": "float64", "source_file": "str", "station_id": "str"}
    assert by_type["expect_compound_columns_to_be_unique"] == [
        {"column_list": ["source_file", "station_id", "time", "depth"]}]
    spec = ["source_file", "station_id|platform_id", "time", "depth?"]
    assert unique_key(spec, {"source_file", "platform_id", "time"}) == [
        "source_file", "platform_id", "time"]
    assert unique_key(spec, {"source_file", "time"}) == []  # no station: no key
