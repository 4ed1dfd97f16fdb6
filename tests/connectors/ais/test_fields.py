"""ais_nmea ``fields:``: rate of turn and the other decoded fields a recipe may keep."""
from __future__ import annotations

import functools
import math
from operator import xor
from pathlib import Path

import numpy as np
import pyais
import pyarrow as pa
import pytest
from pyais import encode_dict
from pydantic import ValidationError

from connectors.ais import schema as S
from connectors.ais.nmea import AisNmea, AisNmeaConfig, decode_lines, rot_indicators
from tests.conftest import require_shared_data


def _read(path: Path, **config) -> pa.Table:
    cfg = AisNmeaConfig(uri=str(path), **config)
    plan = AisNmea().plan(cfg, str(path), "0" * 64, path.stat().st_size)
    table = pa.concat_tables([AisNmea().read(cfg, c, plan.schema).table for c in plan.chunks])
    assert table.schema.equals(plan.schema, check_metadata=True)
    return table


def _pyais_rate(indicator: int) -> float | None:
    """pyais' own degrees/min for a ROT_AIS indicator; None for the codes that are no rate."""
    if abs(indicator) >= 127:
        return None
    return math.copysign(round((indicator / 4.733) ** 2), indicator) if indicator else 0.0


def test_default_fields_keep_rate_of_turn_with_units():
    path = require_shared_data("ais/pyais_nmea_data_sample.txt")
    table = _read(path)
    assert [n for n in table.column_names if n in S.EXTRA_NAMES] == list(S.DEFAULT_FIELDS)
    meta = table.schema.field("rot").metadata
    assert meta[b"haina.units"] == b"degree/min"
    assert b"4.733" in meta[b"haina.long_name"]
    raw = table["rot_raw"].to_pylist()
    rate = table["rot"].to_pylist()
    rated = [i for i, t in enumerate(table["msg_type"].to_pylist()) if t in (1, 2, 3)]
    # the sample: 100 reports say "not available" (-128), 44 turn faster than 5 deg/30 s
    assert sum(raw[i] == -128 for i in rated) == 100
    assert sum(abs(raw[i]) == 127 for i in rated) == 44
    assert all(rate[i] == _pyais_rate(raw[i]) for i in rated)
    assert all(rate[i] is None and raw[i] is None for i in range(len(raw)) if i not in rated)
    assert table["position_accuracy"].null_count < table.num_rows


def _armour(bits: str) -> str:
    chars = [int(bits[i:i + 6].ljust(6, "0"), 2) for i in range(0, len(bits), 6)]
    return "".join(chr(c + 48 + 8 * (c > 39)) for c in chars)


def _with_indicator(payload: str, indicator: int) -> str:
    bits = "".join(f"{(ord(c) - 48) - 8 * (ord(c) - 48 > 40):06b}" for c in payload)
    return _armour(bits[:42] + f"{indicator & 0xFF:08b}" + bits[50:])


def test_rate_of_turn_matches_the_transmitted_indicator():
    """Every indicator -128..127 is read back exactly; the rate is pyais' own decoding."""
    sentence, = encode_dict({"type": 1, "mmsi": 200000000, "lat": 10.0, "lon": 20.0})
    payload = sentence.split(",")[5]
    lines = []
    for ind in range(-128, 128):
        body = f"AIVDM,1,1,,A,{_with_indicator(payload, ind)},0"
        lines.append(f"!{body}*{functools.reduce(xor, body.encode(), 0):02X}".encode())
    schema = AisNmea().plan(AisNmeaConfig(uri="x.nmea"), "x.nmea", "0" * 64, 1).schema
    table = decode_lines(lines, 1, "x.nmea", schema).table
    assert table["rot_raw"].to_pylist() == list(range(-128, 128))
    by_pyais = [pyais.decode(line).turn for line in lines]
    assert table["rot"].to_pylist() == [None if abs(i) >= 127 else t
                                        for i, t in zip(range(-128, 128), by_pyais, strict=True)]
    assert max(table["rot"].to_pylist()[2:-1], key=abs) == -709.0  # indicator -126
    # pyais' rate is not invertible (indicators 4 and 5 are both 1 degree/min): hence rot_raw
    assert table["rot"][128 + 4].as_py() == table["rot"][128 + 5].as_py() == 1.0


def test_rot_indicators_vectorised_on_known_payloads():
    # libais typeexamples: type 1 with ROT -128 (not available), type 2 with indicator -31
    payloads = pa.array(["15N1u<PP1FJuvSRHOE6QIwwh0HQ6", "24SRG`h000OQ`:D8H>Q`8TVv00SE",
                         "403Ovl@000Htt<tSF0l4Q@100`Pq"])
    got = rot_indicators(payloads, pa.array([1, 2, 4], pa.int16())).to_pylist()
    assert got[2] is None  # a base station has no rate of turn
    assert got[:2] == [_indicator_by_bits(p) for p in payloads.to_pylist()[:2]]


def _indicator_by_bits(payload: str) -> int:
    bits = "".join(f"{(ord(c) - 48) - 8 * (ord(c) - 48 > 40):06b}" for c in payload)
    value = int(bits[42:50], 2)
    return value - 256 if value > 127 else value


def test_libais_static_fields_and_na_codes():
    path = require_shared_data("ais/libais_typeexamples.nmea")
    table = _read(path, fields=list(S.EXTRA_NAMES), join_static=False).to_pandas()
    by_type = table.set_index("msg_type")
    five = by_type.loc[5]
    # values as pyais decodes the type 5 sentence (line 3 of the file)
    assert (five.to_bow, five.to_stern, five.to_port, five.to_starboard) == (78, 23, 1, 17)
    assert five.length == 101 and five.width == 18
    assert (five.eta_month, five.eta_day, five.eta_hour, five.eta_minute) == (12, 30, 16, 30)
    assert five.ais_version == 0 and not five.dte and five.epfd == 1
    assert by_type.loc[2].maneuver == 2 and by_type.loc[2].rot == -43 and \
        by_type.loc[2].rot_raw == -31
    assert np.isnan(by_type.loc[1].rot) and by_type.loc[1].rot_raw == -128
    # a base station's month/day/hour/minute/second are its clock, not an ETA or a fix second
    assert all(np.isnan(by_type.loc[4][c]) for c in ("eta_month", "eta_hour", "second"))
    assert by_type.loc[2].second == 27


def test_fields_choose_the_columns():
    path = require_shared_data("ais/libais_typeexamples.nmea")
    table = _read(path, fields=["to_bow", "rot"])
    assert [n for n in table.column_names if n in S.EXTRA_NAMES] == ["rot", "to_bow"]
    assert table.column_names[-1] == "source_file"
    assert not set(S.EXTRA_NAMES) & set(_read(path, fields=[]).column_names)


@pytest.mark.parametrize("fields, words", [
    (["rot", "bogus"], ["'bogus'", "rot_raw", "eta_month"]),
    (["sog"], ["'sog'", "always kept"]),
])
def test_unknown_fields_are_refused_with_the_known_ones(fields, words):
    with pytest.raises(ValidationError) as err:
        AisNmeaConfig(uri="x.nmea", fields=fields)
    assert all(w in str(err.value) for w in words)
