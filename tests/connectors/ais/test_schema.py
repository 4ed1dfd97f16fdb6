"""AIS "not available" codes (connectors/ais/schema.py): only the ITU-R M.1371 codes become null;
any other value, even impossible, is kept for QC like in every other kind."""
from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest
from pyais import encode_dict

from connectors.ais import schema as S
from tests.connectors.reading import read_source

INF = math.inf


def _floats(values):
    return pa.array(values, pa.float64())


def _types(values):
    return pa.array(values, pa.int16())


@pytest.mark.parametrize("clean, values, expected", [
    # latitude: 91 is "not available"; -101.5 / 95 are impossible but kept (QC FAILs them)
    (S.clean_latitude, [91.0, -101.5, 95.0, 90.0, -45.5, None], [None, -101.5, 95.0, 90.0, -45.5,
                                                                  None]),
    # longitude: 181 is "not available"; 180 is -180; AIS has no 0-360 convention: 200.2 stays
    (S.clean_longitude, [181.0, 200.2, 180.0, -181.0, -73.5], [None, 200.2, -180.0, -181.0,
                                                               -73.5]),
    # speed over ground: 102.3 kn is "not available"; 102.2 means "102.2 kn or more"
    (S.clean_sog, [102.3, 102.2, 150.0, 0.0, INF], [None, 102.2, 150.0, 0.0, INF]),
    # course: 360.0 is "not available"; 3601-4095 tenths are "not used" but kept
    (S.clean_cog, [360.0, 400.0, -5.0, 359.9], [None, 400.0, -5.0, 359.9]),
    # heading: 511 is "not available"; 472 was deleted before
    (S.clean_heading, [511.0, 472.0, 360.0, 0.0], [None, 472.0, 360.0, 0.0]),
])
def test_only_not_available_codes_become_null(clean, values, expected):
    assert clean(_floats(values)).to_pylist() == pytest.approx(expected, nan_ok=True)


def test_codes_depend_on_the_message_type():
    # type 9 (SAR aircraft) speed is whole knots, 1023 = n/a; type 27 speed 63 and course 511
    sog = S.clean_sog(_floats([1023.0, 102.3, 63.0, 63.0]), _types([9, 9, 27, 1]))
    assert sog.to_pylist() == [None, 102.3, None, 63.0]
    cog = S.clean_cog(_floats([511.0, 511.0, 360.0]), _types([27, 1, 27]))
    assert cog.to_pylist() == [None, 511.0, 360.0]


def test_nmea_report_keeps_impossible_values(tmp_path):
    bad = encode_dict({"msg_type": 1, "mmsi": 211000001, "lat": -101.5, "lon": 200.2,
                       "speed": 12.3, "course": 45.6, "heading": 472, "status": 0},
                      sentence_type="VDM")[0]
    na = encode_dict({"msg_type": 1, "mmsi": 211000005, "lat": 91, "lon": 181, "speed": 102.3,
                      "course": 360, "heading": 511, "status": 0}, sentence_type="VDM")[0]
    path = tmp_path / "x.nmea"
    path.write_text(f"{bad}\n{na}\n")
    _, table, quarantine, _ = read_source("ais_nmea", path)
    assert quarantine.num_rows == 0
    got = table.select(["latitude", "longitude", "heading", "sog", "cog"]).to_pylist()
    assert got[0] == pytest.approx({"latitude": -101.5, "longitude": 200.2, "heading": 472.0,
                                    "sog": 12.3, "cog": 45.6})
    assert got[1] == {"latitude": None, "longitude": None, "heading": None, "sog": None,
                      "cog": None}


HEADER = ("MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,VesselName,IMO,CallSign,VesselType,Status,"
          "Length,Width,Draft,Cargo,TransceiverClass")


def _marinecadastre(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "mc.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def test_marinecadastre_keeps_impossible_values_and_infinite_speed(tmp_path):
    path = _marinecadastre(tmp_path, [
        "367000001,2023-01-11T00:00:00,-101.5,200.2,12.0,45.0,472.0,A,,C1,70,0.0,,,,,A",
        "367000002,2023-01-11T00:00:01,91.0,181.0,102.3,360.0,511.0,B,,C2,70,0.0,,,,,A",
        "367000003,2023-01-11T00:00:02,40.0,-70.0,inf,10.0,10.0,C,,C3,70,0.0,,,,,A",
    ])
    _, table, quarantine, _ = read_source("ais_csv", path)
    assert quarantine.num_rows == 0       # "inf" was quarantined as bad_value
    got = table.select(["latitude", "longitude", "sog", "cog", "heading"]).to_pylist()
    assert got[0] == {"latitude": -101.5, "longitude": pytest.approx(200.2), "sog": 12.0,
                      "cog": 45.0, "heading": 472.0}
    assert got[1] == dict.fromkeys(got[1], None)
    assert got[2]["sog"] == INF


def test_infinite_integer_code_is_a_bad_value(tmp_path):
    path = _marinecadastre(tmp_path, [
        "367000001,2023-01-11T00:00:00,40.0,-70.0,1.0,1.0,1.0,A,,C1,inf,0.0,,,,,A"])
    _, table, quarantine, _ = read_source("ais_csv", path)
    assert table.num_rows == 0 and quarantine["reason"].to_pylist() == ["bad_value"]
