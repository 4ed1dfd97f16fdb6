"""Tests of the port_table connector on the real USACE, NAIS and WPI files and on synthetic CSV.

Expected values come from pandas reading the same files independently, or are literal values
checked by hand against the files.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import connectors
from connectors.base import QUARANTINE_SCHEMA
from connectors.exceptions import (
    ConnectorError,
    MissingVariableError,
    SourceNotFoundError,
)
from connectors.text.port_records import split_lines, well_formed
from connectors.text.port_values import normalise_unlocode, parse_wkt, snake_case
from connectors.text.ports import PortTable, PortTableConfig
from pipelines import recipe as recipes

REPO = Path(__file__).resolve().parents[3]
RECIPES = REPO / "examples" / "recipes"

USACE = {"kind": "port_table", "uri": "x", "id_column": "PORT", "name_column": "PORT_NAME",
             "latitude_column": "LATITUDE1", "longitude_column": "LONGITUDE1"}
VISITS = {"kind": "port_table", "uri": "x", "id_column": "PORT_NAME", "name_column": "PORT_NAME",
              "wkt_column": "port_geography", "time_column": "Month"}
WPI = {"kind": "port_table", "uri": "x", "id_column": "World Port Index Number",
           "name_column": "Main Port Name", "unlocode_column": "UN/LOCODE",
           "country_column": "Country Code", "latitude_column": "Latitude",
           "longitude_column": "Longitude"}


def _port_file(shared_data: Path, name: str) -> Path:
    """A file under ``<shared_data>/ports`` (the fixture fails in CI when the folder is absent)."""
    path = shared_data / "ports" / name
    if not path.is_file():
        pytest.fail(f"real data file missing: {path}")
    return path


def _run(config: dict, path: Path):
    """Plan and read every chunk; return (plan, concatenated table, quarantine, results)."""
    conf = PortTableConfig.model_validate(config)
    connector = connectors.get("port_table")
    plan = connector.plan(conf, str(path), "0" * 64, path.stat().st_size)
    results = [connector.read(conf, chunk, plan.schema) for chunk in plan.chunks]
    for result in results:
        assert result.table.schema.equals(plan.schema, check_metadata=True)
        assert result.quarantine.schema.equals(QUARANTINE_SCHEMA)
        assert result.rows_dropped == 0
        assert result.rows_in == (result.table.num_rows + result.rows_dropped
                                  + result.quarantine.num_rows)
    table = pa.concat_tables(r.table for r in results)
    quarantine = pa.concat_tables(r.quarantine for r in results)
    return plan, table, quarantine, results


def _meta(schema: pa.Schema, name: str, key: str) -> str | None:
    value = (schema.field(name).metadata or {}).get(f"haina.{key}".encode())
    return None if value is None else value.decode()


LEADING = ["port_id", "port_name", "unlocode", "latitude", "longitude", "time", "country"]


# --------------------------------------------------------------------------- real files

@pytest.mark.realdata
def test_usace_principal_ports_bom_and_values(shared_data):
    path = _port_file(shared_data, "usace_Principal_Ports.csv")
    plan, table, quarantine, results = _run(USACE, path)
    ref = pd.read_csv(path, encoding="utf-8-sig", dtype={"PORT": str})

    assert table.num_rows == 150 == len(ref) and quarantine.num_rows == 0
    assert sum(r.rows_in for r in results) == 150
    assert table.column_names[:7] == LEADING and table.column_names[-2:] == ["id_duplicated",
                                                                             "source_file"]
    # BOM: the first header cell is "X", not "\ufeffX"
    assert "x" in table.column_names and not any("\ufeff" in n for n in table.column_names)
    assert _meta(plan.schema, "x", "source_name") == "X"
    assert table["port_id"].to_pylist() == ref["PORT"].tolist()
    assert table["port_id"].to_pylist()[:2] == ["4410", "4405"]
    np.testing.assert_array_equal(table["latitude"].to_numpy(), ref["LATITUDE1"].to_numpy())
    np.testing.assert_array_equal(table["longitude"].to_numpy(), ref["LONGITUDE1"].to_numpy())
    assert table.schema.field("total").type == pa.int64()
    assert pc.sum(table["total"]).as_py() == int(ref["TOTAL"].sum())
    assert table["se_anno_cad_data"].null_count == 150  # the all-empty column
    assert table["time"].null_count == 150 and table["unlocode"].null_count == 150
    assert not pc.any(table["id_duplicated"]).as_py()
    assert _meta(plan.schema, "latitude", "units") == "degrees_north"


@pytest.mark.realdata
def test_usace_bom_column_used_as_coordinate(shared_data):
    # X/Y duplicate LONGITUDE1/LATITUDE1; X carries the BOM, so this only works if it is stripped
    path = _port_file(shared_data, "usace_Principal_Ports.csv")
    config = {**USACE, "latitude_column": "Y", "longitude_column": "X"}
    _, table, quarantine, _ = _run(config, path)
    assert table.num_rows == 150 and quarantine.num_rows == 0
    ref = pd.read_csv(path, encoding="utf-8-sig")
    np.testing.assert_allclose(table["longitude"].to_numpy(), ref["LONGITUDE1"], atol=1e-5)


@pytest.mark.realdata
def test_monthly_visits_wkt_and_months(shared_data):
    path = _port_file(shared_data, "nais_usace_principal_ports_monthly_visits.csv")
    plan, table, quarantine, _ = _run(VISITS, path)
    ref = pd.read_csv(path)
    lonlat = ref["port_geography"].str.extract(r"POINT\((\S+) (\S+)\)").astype(float)

    assert table.num_rows == 1162 == len(ref) and quarantine.num_rows == 0
    assert pc.count_distinct(table["port_id"]).as_py() == 109
    np.testing.assert_array_equal(table["longitude"].to_numpy(), lonlat[0].to_numpy())
    np.testing.assert_array_equal(table["latitude"].to_numpy(), lonlat[1].to_numpy())
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    expected = pd.to_datetime(ref["Month"] + "-01", utc=True)
    assert table["time"].to_pandas().tolist() == expected.tolist()
    assert str(pc.min(table["time"]).as_py()) == "2022-01-01 00:00:00+00:00"
    assert str(pc.max(table["time"]).as_py()) == "2022-12-01 00:00:00+00:00"
    assert table.schema.field("visit_count").type == pa.int64()
    assert pc.sum(table["visit_count"]).as_py() == int(ref["Visit_Count"].sum())
    # one record per (port, month): nothing is a duplicate key although every id repeats
    assert not pc.any(table["id_duplicated"]).as_py()
    assert table.slice(0, 1).to_pylist()[0]["port_name"] == "Albany Port District, NY"
    assert _meta(plan.schema, "latitude", "source_name") == "port_geography"


@pytest.fixture(scope="module")
def wpi(shared_data):
    path = _port_file(shared_data, "nga_wpi_UpdatedPub150.csv")
    plan, table, quarantine, _ = _run(WPI, path)
    ref = pd.read_csv(path, dtype=str, keep_default_na=False)
    return plan, table, quarantine, ref


@pytest.mark.realdata
def test_wpi_rows_ids_coordinates(wpi):
    _, table, quarantine, ref = wpi
    assert table.num_rows == 3768 == len(ref) and quarantine.num_rows == 0
    assert table.num_columns == 107 - 6 + len(LEADING) + 2  # 6 source columns take roles
    ids = table["port_id"].to_pylist()
    assert ids[:2] == ["7950", "52235"]
    assert "49454.5" in ids  # the one fractional WPI number stays as it is
    assert not any(i.endswith(".0") for i in ids)
    flagged = table.filter(table["id_duplicated"])
    assert sorted(flagged["port_id"].to_pylist()) == ["400", "400", "49460", "49460"]
    assert sorted(flagged["port_name"].to_pylist()) == [
        "Machilipatnam", "Machilipatnam", "Seydhisfjordhur", "Seydisfjordur"]
    lat, lon = table["latitude"].to_numpy(), table["longitude"].to_numpy()
    assert ((-90 <= lat) & (lat <= 90)).all() and ((-180 <= lon) & (lon < 180)).all()
    np.testing.assert_array_equal(lat, ref["Latitude"].astype(float).to_numpy())
    np.testing.assert_array_equal(lon, ref["Longitude"].astype(float).to_numpy())


@pytest.mark.realdata
def test_wpi_unlocode_normalised(wpi):
    _, table, _, ref = wpi
    raw = ref["UN/LOCODE"]
    assert (raw == " ").sum() == 430
    got = table["unlocode"].to_pylist()
    blank = np.flatnonzero((raw == " ").to_numpy())
    assert all(got[i] is None for i in blank)  # the 430 single-space LOCODEs
    assert got[0] is None and got[1] is None
    # independent normalisation: drop spaces, upper-case, keep 2 letters + 3 letters/digits
    squeezed = raw.str.replace(" ", "", regex=False).str.upper()
    expected = squeezed.where(squeezed.str.fullmatch(r"[A-Z]{2}[A-Z2-9]{3}"), None)
    assert got == [v if isinstance(v, str) else None for v in expected.tolist()]
    assert table["unlocode"].null_count == 431  # 430 blanks + 'GB ME""'
    assert got[raw.tolist().index(" VG RAD")] == "VGRAD"
    assert got[raw.tolist().index("JP IWK")] == "JPIWK"


@pytest.mark.realdata
def test_wpi_placeholders_types_and_units(wpi):
    plan, table, _, ref = wpi
    assert table["harbor_use"].null_count == (ref["Harbor Use"] == "Unknown").sum() == 3641
    assert table["country"].null_count == (ref["Country Code"] == " ").sum() == 4
    assert table["alternate_port_name"].null_count == (ref["Alternate Port Name"] == " ").sum()
    assert table.schema.field("tidal_range_m").type == pa.float64()
    assert _meta(plan.schema, "tidal_range_m", "units") == "m"
    assert _meta(plan.schema, "tidal_range_m", "source_name") == "Tidal Range (m)"
    np.testing.assert_array_equal(table["tidal_range_m"].to_numpy(),
                                  ref["Tidal Range (m)"].astype(float).to_numpy())
    # Yes/No/Unknown becomes a nullable boolean
    assert table.schema.field("facilities_wharves").type == pa.bool_()
    col = ref["Facilities - Wharves"]
    assert pc.sum(table["facilities_wharves"]).as_py() == (col == "Yes").sum()
    assert table["facilities_wharves"].null_count == (col == "Unknown").sum() == 1001
    assert table.schema.field("harbor_size").type == pa.string()
    assert table["source_file"].unique().to_pylist() == [str(plan.uri)]


@pytest.mark.realdata
def test_wpi_declared_columns_only(shared_data):
    path = _port_file(shared_data, "nga_wpi_UpdatedPub150.csv")
    config = {**WPI, "columns": {"Harbor Size": {"name": "harbor_size", "type": "string"},
                                 "Tidal Range (m)": {"type": "float64"},
                                 "Railway": "railway"}}
    plan, table, quarantine, _ = _run(config, path)
    assert table.column_names == LEADING + ["harbor_size", "tidal_range_m", "railway",
                                            "id_duplicated", "source_file"]
    assert table.num_rows == 3768 and quarantine.num_rows == 0
    assert table.schema.field("railway").type == pa.string()  # "auto" on Small/Medium/...
    assert len(plan.chunks) == 1 and plan.chunks[0].dim is None


@pytest.mark.realdata
@pytest.mark.parametrize("name, rows", [("ports_usace_principal", 150),
                                        ("ports_nais_monthly_visits", 1162),
                                        ("ports_nga_wpi", 3768)])
def test_example_recipes_plan_and_read(shared_data, name, rows):
    loaded = recipes.load(RECIPES / f"{name}.yaml")
    (source,) = loaded.sources
    path = (loaded.base_dir / source.uri).resolve()
    assert path == _port_file(shared_data, path.name).resolve()
    plan, table, quarantine, _ = _run(source.model_dump(), path)
    assert table.num_rows == rows and quarantine.num_rows == 0
    assert not {"x", "y", "se_anno_cad_data"} & set(table.column_names)


# --------------------------------------------------------------------------- synthetic files

def _write(tmp_path: Path, text: str, name: str = "ports.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


SYNTH = {"kind": "port_table", "uri": "x", "id_column": "id", "name_column": "name",
             "latitude_column": "lat", "longitude_column": "lon", "time_column": "month"}


def test_quarantine_reasons_positions_and_raw(tmp_path):
    text = (
        "\ufeffid,name,lat,lon,month,depth\n"        # 1
        "A1,Alpha,10.5,20.25,2022-01,3.5\n"         # 2 good
        "A2,Beta,95,20,2022-01,1\n"                 # 3 kept: lat 95 raw, for location QC
        "\n"                                        # 4 empty: not a record
        "A3,Gamma,10,abc,2022-02,1\n"               # 5 bad_coordinates (lon text)
        "A4,Delta,10,20,2022-13,1\n"                # 6 bad_time
        ",Eps,10,20,2022-03,1\n"                    # 7 missing_id
        "A6,Zeta,10,20,2022-03\n"                   # 8 wrong_field_count
        'A7,"Eta,10,20,2022-03,1\n'                 # 9 bad_quoting
        "A8,Theta,10,180,2022-03,x\n"               # 10 bad_value (depth declared float64)
        "A9,Iota,-10,180,2022-04,\n"                # 11 good; lon 180 -> -180, depth null
        "Unknown,Kappa,1,1,2022-04,2\r\n"           # 12 missing_id (placeholder)
        "A1,Alpha2,1,1,2022-01,2"                   # 13 good; same (id, time) as line 2
    )
    path = _write(tmp_path, text)
    config = {**SYNTH, "columns": {"depth": {"name": "depth_m", "type": "float64"}}}
    _, table, quarantine, results = _run(config, path)
    assert results[0].rows_in == 11  # 12 lines after the header, one of them empty
    assert table["port_id"].to_pylist() == ["A1", "A2", "A9", "A1"]
    assert table["latitude"].to_pylist() == [10.5, 95.0, -10.0, 1.0]
    assert table["longitude"].to_pylist() == [20.25, 20.0, -180.0, 1.0]
    assert table["depth_m"].to_pylist() == [3.5, 1.0, None, 2.0]
    assert table["id_duplicated"].to_pylist() == [True, False, False, True]
    assert table["time"].cast(pa.string()).to_pylist()[2] == "2022-04-01 00:00:00.000000Z"
    got = list(zip(quarantine["position"].to_pylist(), quarantine["reason"].to_pylist(), strict=True))
    assert got == [(5, "bad_coordinates"), (6, "bad_time"),
                   (7, "missing_id"), (8, "wrong_field_count"), (9, "bad_quoting"),
                   (10, "bad_value"), (12, "missing_id")]
    raws = dict(zip(quarantine["position"].to_pylist(), quarantine["raw"].to_pylist(), strict=True))
    assert raws[5] == "A3,Gamma,10,abc,2022-02,1" and raws[12] == "Unknown,Kappa,1,1,2022-04,2"
    details = dict(zip(quarantine["position"].to_pylist(), quarantine["detail"].to_pylist(), strict=True))
    assert "'abc'" in details[5] and "'2022-13'" in details[6]
    assert "'x'" in details[10] and "'depth'" in details[10]
    assert set(quarantine["source_file"].to_pylist()) == {str(path)}


def test_bad_wkt_is_quarantined(tmp_path):
    text = ("name,when,geom\n"
            "P1,2022-05,POINT(-73.5 42.25)\n"
            "P2,2022-05,POINT (10 -20)\n"
            "P3,2022-05,\"LINESTRING(1 2, 3 4)\"\n"
            "P4,2022-05,\n"
            "P5,2022-05,POINT(200 10)\n"            # 0-360 longitude: -160
            "P6,2022-05,POINT(x 10)\n")
    config = {"kind": "port_table", "uri": "x", "id_column": "name", "wkt_column": "geom",
                  "time_column": "when"}
    _, table, quarantine, _ = _run(config, _write(tmp_path, text))
    assert table["port_id"].to_pylist() == ["P1", "P2", "P5"]
    assert table["latitude"].to_pylist() == [42.25, -20.0, 10.0]
    assert table["longitude"].to_pylist() == [-73.5, 10.0, -160.0]
    assert list(zip(quarantine["position"].to_pylist(), quarantine["reason"].to_pylist(), strict=True)) == [
        (4, "bad_wkt"), (5, "bad_wkt"), (7, "bad_coordinates")]


def test_registry_without_time_flags_duplicate_ids(tmp_path):
    text = "code,lat,lon\n7950.0,1,2\n7950,3,4\n12,5,6\n"
    config = {"kind": "port_table", "uri": "x", "id_column": "code", "latitude_column": "lat",
                  "longitude_column": "lon"}
    _, table, quarantine, _ = _run(config, _write(tmp_path, text))
    assert table["port_id"].to_pylist() == ["7950", "7950", "12"]
    assert table["id_duplicated"].to_pylist() == [True, True, False]
    assert table["time"].null_count == 3 and quarantine.num_rows == 0


def test_bare_carriage_returns_end_lines(tmp_path):
    # classic-Mac line ends, and a bare CR inside an otherwise CRLF file, both end a line
    text = "id,lat,lon\rA,1,2\rB,3\r\nC,5,6\r\n"
    config = {"kind": "port_table", "uri": "x", "id_column": "id", "latitude_column": "lat",
                  "longitude_column": "lon"}
    _, table, quarantine, results = _run(config, _write(tmp_path, text))
    assert results[0].rows_in == 3 and table["port_id"].to_pylist() == ["A", "C"]
    assert quarantine.to_pylist()[0] | {"source_file": None} == {
        "reason": "wrong_field_count", "detail": "expected 3 fields as in the header",
        "source_file": None, "position": 3, "raw": "B,3"}


def test_header_only_file(tmp_path):
    _, table, quarantine, results = _run(SYNTH, _write(tmp_path, "id,name,lat,lon,month\n"))
    assert table.num_rows == 0 and quarantine.num_rows == 0 and results[0].rows_in == 0


def test_declared_types_and_inference(tmp_path):
    text = ("id,lat,lon,big,flag,count,ratio\n"
            "a,1,1,1234567890123456789012,Yes,3,0.5\n"
            "b,1,1,7,no,x,1e3\n"
            "c,1,1,8,maybe,4,\n")
    config = {"kind": "port_table", "uri": "x", "id_column": "id", "latitude_column": "lat",
                  "longitude_column": "lon"}
    plan, table, quarantine, _ = _run(config, _write(tmp_path, text))
    types = {f.name: str(f.type) for f in plan.schema}
    assert (types["big"], types["flag"], types["count"], types["ratio"]) == (
        "double", "string", "string", "double")  # 22 digits do not fit int64
    assert table["ratio"].to_pylist() == [0.5, 1000.0, None] and quarantine.num_rows == 0

    declared = {**config, "columns": {"flag": {"type": "bool"}, "count": {"type": "int64"}}}
    _, table, quarantine, _ = _run(declared, _write(tmp_path, text))
    assert table.column_names[7:9] == ["flag", "count"]
    assert table["flag"].to_pylist() == [True] and table["count"].to_pylist() == [3]
    assert quarantine["reason"].to_pylist() == ["bad_value", "bad_value"]
    assert quarantine["position"].to_pylist() == [3, 4]
    assert "'x' in column 'count' is not a int64 value" in quarantine["detail"][0].as_py()
    assert "'maybe' in column 'flag' is not a bool value" in quarantine["detail"][1].as_py()


def test_latin1_encoding_and_undecodable_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name,lat,lon\nX1,Sète,43.4,3.7\nX2,Agde,43.3,3.5\n".encode("latin-1"))
    config = {"kind": "port_table", "uri": "x", "id_column": "id", "name_column": "name",
                  "latitude_column": "lat", "longitude_column": "lon"}
    _, table, _, _ = _run({**config, "encoding": "latin-1"}, path)
    assert table["port_name"].to_pylist() == ["Sète", "Agde"]
    # read as UTF-8 (the default), the Latin-1 line is quarantined; the file is not rejected
    _, table, quarantine, results = _run(config, path)
    assert table["port_name"].to_pylist() == ["Agde"]
    assert quarantine.select(["reason", "position", "raw"]).to_pylist() == [
        {"reason": "encoding", "position": 2, "raw": "X1,S\\xe8te,43.4,3.7"}]
    assert sum(r.rows_in for r in results) == 2


# --------------------------------------------------------------------------- config errors

@pytest.mark.parametrize("change, message", [
    ({"wkt_column": "geom"}, "either latitude_column and longitude_column, or wkt_column"),
    ({"longitude_column": None}, "either latitude_column and longitude_column, or wkt_column"),
    ({"variables": {"lat": "sea_water_temperature"}}, "`columns:`"),
    ({"drop": ["x"], "columns": {"y": "y"}}, "`drop` only applies"),
    ({"surprise": 1}, "Extra inputs are not permitted"),
    ({"columns": {"depth": {"name": "Bad Name"}}}, "should match pattern"),
])
def test_config_rejects(change, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        PortTableConfig.model_validate({**SYNTH, **change})


def test_missing_column_names_close_match(tmp_path):
    path = _write(tmp_path, "id,name,latitude,lon,month\n")
    conf = PortTableConfig.model_validate(SYNTH)
    with pytest.raises(MissingVariableError, match=r"'lat'.*latitude_column.*latitude"):
        PortTable().plan(conf, str(path), "0" * 64, 1)


def test_output_name_collision(tmp_path):
    path = _write(tmp_path, "id,name,lat,lon,month,Port ID\n")
    conf = PortTableConfig.model_validate(SYNTH)
    with pytest.raises(ConnectorError, match=r"'Port ID'.*'port_id'.*Fix: map it"):
        PortTable().plan(conf, str(path), "0" * 64, 1)


def test_missing_file(tmp_path):
    conf = PortTableConfig.model_validate(SYNTH)
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        PortTable().plan(conf, str(tmp_path / "nope.csv"), "0" * 64, 1)


# --------------------------------------------------------------------------- pure functions

@pytest.mark.parametrize("raw, expected", [
    ("US NYC", "USNYC"), ("usnyc", "USNYC"), (" VG RAD", "VGRAD"), (" ", None), ("", None),
    ('GB ME""', None), ("US NY", None), ("USNYC1", None), ("US 1YC", None), (None, None),
])
def test_normalise_unlocode(raw, expected):
    assert normalise_unlocode(pa.chunked_array([[raw]], pa.string())).to_pylist() == [expected]


@pytest.mark.parametrize("raw, expected", [
    ("Tidal Range (m)", "tidal_range_m"), ("Visit_Count", "visit_count"),
    ("Lifts - 100+ Tons", "lifts_100_tons"), ("FOREIGN_", "foreign"), ("UN/LOCODE", "un_locode"),
    ("MainPortName", "main_port_name"), ("100 m", "c_100_m"), ("***", "column"),
])
def test_snake_case(raw, expected):
    assert snake_case(raw) == expected


def test_split_lines_offsets():
    lines = split_lines(b'a,b\r\n\n"x\n1,2\r\r3')
    assert lines.starts.tolist() == [0, 5, 6, 9, 13, 14]
    assert lines.spans.tolist() == [5, 1, 3, 4, 1, 1]
    assert lines.empty.tolist() == [False, True, False, False, True, False]


@pytest.mark.parametrize("line, ok", [
    ("a,b", True), ("", True), ('"a,b",c', True), ('"a ""q"" b",c', True), ('0",1', True),
    ('"x"y,1', True), ('"a,b', False), ('0","', False), ('a,"b"c"', False), ('"""",x', True),
])
def test_well_formed_lines(line, ok):
    assert well_formed(pa.array([line]), ",").tolist() == [ok]


@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=20))
def test_parse_wkt_never_crashes(values):
    lat, lon, bad = parse_wkt(pa.chunked_array([values], pa.string()))
    assert len(lat) == len(lon) == len(bad) == len(values)
    missing = [i for i, v in enumerate(values) if v is None]
    assert bad[missing].all()  # no geometry is not a point


# --------------------------------------------------------------------------- property test

_CELL = st.text(alphabet='abcXYZ019.,-+" \t;', max_size=12)


@st.composite
def _mutated_csv(draw):
    n = draw(st.integers(0, 12))
    lines = [f"P{i},Port {i},{(i * 7) % 90}.5,{(i * 13) % 180}.25,2022-{(i % 12) + 1:02d}"
             for i in range(n)]
    mutated = set()
    for i in range(n):
        kind = draw(st.sampled_from(["keep", "keep", "replace", "insert", "truncate"]))
        if kind == "replace":
            lines[i] = draw(_CELL)
        elif kind == "insert":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(_CELL) + lines[i][at:]
        elif kind == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        if kind != "keep":
            mutated.add(i)
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return ending.join(["id,name,lat,lon,month"] + lines) + draw(st.sampled_from(["", ending])), \
        lines, mutated


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_mutated_csv())
def test_mutated_lines_are_kept_or_quarantined(tmp_path, case):
    text, lines, mutated = case
    _, table, quarantine, results = _run(SYNTH, _write(tmp_path, text))
    records = [i for i, line in enumerate(lines) if line.strip("\r") != ""]
    assert results[0].rows_in == len(records)
    # every untouched line comes out as a row with its own id, in file order
    ids = table["port_id"].to_pylist()
    untouched = [f"P{i}" for i in records if i not in mutated]
    assert [x for x in ids if x in set(untouched)] == untouched
    # quarantine positions are distinct record lines (header is line 1)
    positions = quarantine["position"].to_pylist()
    assert len(set(positions)) == len(positions)
    assert set(positions) <= {i + 2 for i in records if i in mutated}
    assert all(quarantine["reason"].to_pylist())
    # 0-360 longitudes are shifted; impossible positions are kept raw for QC to fail, never
    # wrapped or clipped into plausible ones (connectors.geo)
    lon = table["longitude"].to_numpy()
    assert not ((180 <= lon) & (lon <= 360)).any()
    assert table["time"].null_count == 0 and table["port_id"].null_count == 0
