"""The canonical vessel-position schema shared by the AIS connectors, and its vectorised clean-up.

Both AIS kinds (raw NMEA and decoded CSV) end in the same table: one row per AIS record, with the
ITU-R M.1371 "not available" codes turned into nulls (other values, even impossible ones, kept for
QC) and the static/voyage fields (name, call sign,
IMO, type, dimensions, draught, destination) carried on every row. Everything here works on whole
Arrow columns; nothing loops over rows.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors import geo
from connectors.base import ColumnInfo

#: (name, Arrow type, role, units, long name)
_COLUMNS: tuple[tuple[str, pa.DataType, str, str | None, str], ...] = (
    ("time", pa.timestamp("us", tz="UTC"), "coordinate", None, "time of the report (UTC)"),
    ("latitude", pa.float64(), "coordinate", "degrees_north", "latitude"),
    ("longitude", pa.float64(), "coordinate", "degrees_east",
     "longitude; valid ones in [-180, 180)"),
    ("mmsi", pa.int64(), "id", None, "Maritime Mobile Service Identity"),
    ("msg_type", pa.int16(), "flag", None, "AIS message type (1-27); null for decoded CSV"),
    ("sog", pa.float32(), "variable", "knot", "speed over ground"),
    ("cog", pa.float32(), "variable", "degree", "course over ground, clockwise from true north"),
    ("heading", pa.float32(), "variable", "degree", "true heading"),
    ("nav_status", pa.int16(), "variable", None, "navigational status code (ITU-R M.1371)"),
    ("vessel_type", pa.int16(), "variable", None, "ship and cargo type code (ITU-R M.1371)"),
    ("vessel_name", pa.string(), "id", None, "vessel name"),
    ("callsign", pa.string(), "id", None, "radio call sign"),
    ("imo", pa.int64(), "id", None, "IMO ship number"),
    ("length", pa.float32(), "variable", "m", "overall length (bow + stern)"),
    ("width", pa.float32(), "variable", "m", "overall beam (port + starboard)"),
    ("draught", pa.float32(), "variable", "m", "maximum present static draught"),
    ("destination", pa.string(), "variable", None, "destination as entered by the crew"),
    ("source_file", pa.string(), "source", None, "URI of the source file"),
)
COLUMN_NAMES = tuple(name for name, *_ in _COLUMNS)

#: decoded fields a recipe may add with ``fields:`` (same layout as ``_COLUMNS``), in output order
EXTRA_COLUMNS: tuple[tuple[str, pa.DataType, str, str | None, str], ...] = (
    ("rot", pa.float32(), "variable", "degree/min",
     "rate of turn in degrees per minute as pyais decodes the ROT_AIS indicator "
     "(sign(ROT_AIS) * round((ROT_AIS / 4.733)^2)); positive turning right (starboard); null "
     "when not available (ROT_AIS -128) or when only the direction is known (+-127, see rot_raw)"),
    ("rot_raw", pa.int16(), "flag", None,
     "ROT_AIS indicator as transmitted (-128..127, ITU-R M.1371): +-127 turning right/left "
     "faster than 5 degrees per 30 s without a turn indicator, -128 not available"),
    ("position_accuracy", pa.bool_(), "flag", None,
     "position accuracy flag: true high (<= 10 m, e.g. DGNSS), false low (> 10 m)"),
    ("raim", pa.bool_(), "flag", None, "RAIM (receiver autonomous integrity monitoring) in use"),
    ("maneuver", pa.int16(), "flag", None,
     "special manoeuvre indicator (types 1-3): 1 not engaged, 2 engaged in a special "
     "manoeuvre; 0 (not available) is null"),
    ("second", pa.int16(), "flag", None,
     "UTC second of the position fix (0-59); 60 (not available) is null; 61 manual input, 62 "
     "dead reckoning, 63 positioning system inoperative"),
    ("epfd", pa.int16(), "flag", None,
     "type of electronic position fixing device (1 GPS, 2 GLONASS, 3 combined, ...; "
     "0 undefined is null)"),
    ("to_bow", pa.int16(), "variable", "m", "distance from the position reference to the bow"),
    ("to_stern", pa.int16(), "variable", "m",
     "distance from the position reference to the stern"),
    ("to_port", pa.int16(), "variable", "m", "distance from the position reference to port"),
    ("to_starboard", pa.int16(), "variable", "m",
     "distance from the position reference to starboard"),
    ("eta_month", pa.int16(), "variable", None,
     "estimated time of arrival: month 1-12 (UTC; 0 not available is null)"),
    ("eta_day", pa.int16(), "variable", None,
     "estimated time of arrival: day of month 1-31 (0 not available is null)"),
    ("eta_hour", pa.int16(), "variable", None,
     "estimated time of arrival: hour 0-23 UTC (24 not available is null)"),
    ("eta_minute", pa.int16(), "variable", None,
     "estimated time of arrival: minute 0-59 (60 not available is null)"),
    ("ais_version", pa.int16(), "flag", None,
     "AIS version indicator of the transponder (type 5): 0 ITU-R M.1371-1, 1 -3, 2 -5"),
    ("dte", pa.bool_(), "flag", None,
     "data terminal equipment not ready (type 5): false means the DTE is available"),
)
EXTRA_NAMES = tuple(name for name, *_ in EXTRA_COLUMNS)
#: what ``fields:`` keeps when a recipe does not say: the per-report navigation fields
DEFAULT_FIELDS = ("rot", "rot_raw", "position_accuracy", "raim", "maneuver")
_TYPES = {name: dtype for name, dtype, *_ in (*_COLUMNS, *EXTRA_COLUMNS)}

#: fields that describe the vessel rather than one report; joined onto position rows by MMSI
STATIC_COLUMNS = ("vessel_name", "callsign", "imo", "vessel_type", "length", "width", "draught",
                  "destination", "to_bow", "to_stern", "to_port", "to_starboard", "eta_month",
                  "eta_day", "eta_hour", "eta_minute", "epfd", "ais_version", "dte")


def check_fields(fields) -> tuple[str, ...]:
    """``fields:`` checked against :data:`EXTRA_NAMES` (order kept, repeats dropped)."""
    fields = tuple(dict.fromkeys(fields))
    unknown = [f for f in fields if f not in EXTRA_NAMES]
    if unknown:
        always = [f for f in unknown if f in COLUMN_NAMES]
        note = f" ({', '.join(always)} always kept)" if always else ""
        raise ValueError(f"unknown AIS field(s) {unknown}{note}; known fields: "
                         f"{', '.join(EXTRA_NAMES)}")
    return fields

_STANDARD_NAMES = {"time": "time", "latitude": "latitude", "longitude": "longitude",
                   "sog": "platform_speed_wrt_ground", "cog": "platform_course",
                   "heading": "platform_orientation"}


def column_infos(source_names: dict[str, str], source_units: dict[str, str] | None = None,
                 fields: tuple[str, ...] = ()) -> tuple[ColumnInfo, ...]:
    """Column metadata; ``source_names`` maps output column -> field name in the source;
    ``fields`` are the extra decoded columns kept (:data:`EXTRA_COLUMNS`), placed before
    ``source_file`` in their canonical order."""
    source_units = source_units or {}
    infos = []
    extras = tuple(c for c in EXTRA_COLUMNS if c[0] in fields)
    for name, _dtype, role, units, long_name in (*_COLUMNS[:-1], *extras, _COLUMNS[-1]):
        src_units = source_units.get(name, units)
        infos.append(ColumnInfo(
            name=name, role=role, units=units, standard_name=_STANDARD_NAMES.get(name),
            long_name=long_name, source_name=source_names.get(name), source_units=src_units,
            conversion=None if units is None else f"none ({src_units} is {units})",
        ))
    return tuple(infos)


def schema(infos: tuple[ColumnInfo, ...]) -> pa.Schema:
    return pa.schema([pa.field(i.name, _TYPES[i.name], metadata=i.metadata()) for i in infos])


# --- decoded CSV layouts ------------------------------------------------------------------------

#: aisdk writes navigational status as text; codes from ITU-R M.1371 table 45
AISDK_STATUS = {
    "Under way using engine": 0, "At anchor": 1, "Not under command": 2,
    "Restricted manoeuverability": 3, "Restricted maneuverability": 3,
    "Constrained by her draught": 4, "Moored": 5, "Aground": 6, "Engaged in fishing": 7,
    "Under way sailing": 8, "Reserved for future amendment [HSC]": 9,
    "Reserved for future amendment [WIG]": 10, "Power-driven vessel towing astern": 11,
    "Power-driven vessel pushing ahead or towing alongside": 12, "Reserved for future use": 13,
    "AIS-SART is active": 14, "Unknown value": 15,
}
#: aisdk writes ship type as a category; each maps to the first ITU code of that category
AISDK_SHIP_TYPE = {
    "WIG": 20, "Fishing": 30, "Towing": 31, "Towing long/wide": 32, "Dredging": 33, "Diving": 34,
    "Military": 35, "Sailing": 36, "Pleasure": 37, "Reserved": 38, "HSC": 40, "Pilot": 50,
    "SAR": 51, "Tug": 52, "Port tender": 53, "Anti-pollution": 54, "Law enforcement": 55,
    "Spare 1": 56, "Spare 2": 57, "Medical": 58, "Not party to conflict": 59, "Passenger": 60,
    "Cargo": 70, "Tanker": 80, "Other": 90,
}


class CsvLayout:
    """Where each canonical column is in one CSV layout, and how its text is read."""

    def __init__(self, name: str, marker: str, time_format: str, columns: dict[str, str],
                 codes: dict[str, dict[str, int]] | None = None):
        self.name, self.marker, self.time_format = name, marker, time_format
        self.columns, self.codes = columns, codes or {}


LAYOUTS = {
    "marinecadastre": CsvLayout("marinecadastre", "BaseDateTime", "%Y-%m-%dT%H:%M:%S", {
        "time": "BaseDateTime", "mmsi": "MMSI", "latitude": "LAT", "longitude": "LON",
        "sog": "SOG", "cog": "COG", "heading": "Heading", "vessel_name": "VesselName",
        "imo": "IMO", "callsign": "CallSign", "vessel_type": "VesselType",
        "nav_status": "Status", "length": "Length", "width": "Width", "draught": "Draft"}),
    "aisdk": CsvLayout("aisdk", "# Timestamp", "%d/%m/%Y %H:%M:%S", {
        "time": "# Timestamp", "mmsi": "MMSI", "latitude": "Latitude", "longitude": "Longitude",
        "nav_status": "Navigational status", "sog": "SOG", "cog": "COG", "heading": "Heading",
        "imo": "IMO", "callsign": "Callsign", "vessel_name": "Name",
        "vessel_type": "Ship type", "width": "Width", "length": "Length",
        "draught": "Draught", "destination": "Destination"},
        codes={"nav_status": AISDK_STATUS, "vessel_type": AISDK_SHIP_TYPE}),
}


# --- "not available" codes -------------------------------------------------------------------
# ITU-R M.1371-5 gives each field one "not available" code, which becomes null. Any other value a
# receiver or a CSV export delivers is kept as it is, even when it is impossible (latitude -101.5,
# longitude 200.2, heading 472): QC flags it, as for every other kind; deleting it would hide a
# broken transponder or a bad export behind a missing value.

#: the codes, in the units pyais and the CSV exports deliver (degrees, knots)
LATITUDE_NA = 91.0
LONGITUDE_NA = 181.0
SOG_NA = 102.3            # 1023 tenths of a knot (types 1-3, 18, 19)
SOG_NA_SAR = 1023.0       # type 9 (SAR aircraft): whole knots
SOG_NA_LONG_RANGE = 63.0  # type 27: whole knots
COG_NA = 360.0            # 3600 tenths of a degree
COG_NA_LONG_RANGE = 511.0  # type 27: whole degrees
HEADING_NA = 511.0
#: codes are exact in the source; the tolerance only absorbs the float of tenths (102.3)
_TOLERANCE = 1e-6


def null_where(values: pa.Array, mask: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(mask, False), pa.nulls(len(values), values.type), values)


def _is_code(values: pa.Array, code) -> pa.Array:
    return pc.less(pc.abs(pc.subtract(pc.cast(values, pa.float64()), code)), _TOLERANCE)


def _code_for(msg_type: pa.Array | None, n: int, default: float,
              by_type: dict[int, float]) -> pa.Array:
    codes = pa.array(np.full(n, default), pa.float64())
    if msg_type is None:
        return codes
    for mtype, code in by_type.items():
        codes = pc.if_else(pc.fill_null(pc.equal(msg_type, mtype), False), code, codes)
    return codes


def clean_latitude(lat: pa.Array) -> pa.Array:
    """91 means not available; any other value is kept (beyond +-90 QC FAILs it)."""
    return null_where(lat, _is_code(lat, LATITUDE_NA))


def clean_longitude(lon: pa.Array) -> pa.Array:
    """181 means not available; 180 is written -180; any other value is kept as it is
    (AIS has no 0-360 convention, so 200.2 is corrupt and QC FAILs it: :mod:`connectors.geo`)."""
    lon = null_where(lon, _is_code(lon, LONGITUDE_NA))
    return geo.longitude_arrow(lon, east_convention=False).cast(lon.type)


def clean_sog(sog: pa.Array, msg_type: pa.Array | None = None) -> pa.Array:
    """102.3 kn is "not available" for vessels; SAR aircraft (type 9) use 1023 and long-range
    broadcasts (type 27) use 63, in whole knots. 102.2 means "102.2 kn or more" and is kept."""
    code = _code_for(msg_type, len(sog), SOG_NA, {9: SOG_NA_SAR, 27: SOG_NA_LONG_RANGE})
    return null_where(sog, _is_code(sog, code))


def clean_cog(cog: pa.Array, msg_type: pa.Array | None = None) -> pa.Array:
    """COG 360 (3600 tenths) means not available, 511 for type 27; other values are kept."""
    code = _code_for(msg_type, len(cog), COG_NA, {27: COG_NA_LONG_RANGE})
    return null_where(cog, _is_code(cog, code))


def clean_heading(heading: pa.Array) -> pa.Array:
    """Heading 511 means not available; other values (even 360-510, "not used") are kept."""
    return null_where(heading, _is_code(heading, HEADING_NA))


def zero_is_null(values: pa.Array) -> pa.Array:
    """IMO 0, ship type 0, draught 0 and a 0 m dimension all mean "not available"."""
    return null_where(values, pc.equal(values, 0))


def clean_text(values: pa.Array) -> pa.Array:
    """AIS six-bit text pads with '@' and spaces; an empty result is a missing value."""
    values = pc.utf8_trim(pc.cast(values, pa.string()), characters="@ ")
    return null_where(values, pc.equal(values, ""))


# --- assembling the final table ----------------------------------------------------------------

def fill_static_by_mmsi(columns: dict[str, pa.Array]) -> dict[str, pa.Array]:
    """Fill each row's missing static fields with the last non-null value seen for its MMSI.

    The last message in file order wins (pyarrow's ordered "last" skips nulls), so a type 24B after
    a type 5 updates the call sign while the name from the type 5 stays. A row's own value always
    wins over the joined one. The join is within one chunk: a vessel whose static report sits in
    another chunk keeps nulls (joining across chunks would need a shuffle of every row).
    """
    n = len(columns["mmsi"])
    if n == 0:
        return columns
    statics = [name for name in STATIC_COLUMNS if name in columns]
    static = pa.table({name: columns[name] for name in ("mmsi", *statics)})
    last = static.group_by("mmsi", use_threads=False).aggregate(
        [(name, "last") for name in statics])
    keyed = pa.table({"mmsi": columns["mmsi"], "_row": pa.array(np.arange(n))})
    # A hash join does not keep row order; the row index restores it.
    joined = keyed.join(last, "mmsi", join_type="left outer", use_threads=False).sort_by("_row")
    out = dict(columns)
    for name in statics:
        out[name] = pc.coalesce(columns[name], joined[f"{name}_last"].combine_chunks())
    return out


def finish(columns: dict[str, pa.Array], source_file: str, plan_schema: pa.Schema) -> pa.Table:
    """Cast cleaned columns to the plan schema (missing columns become nulls)."""
    n = len(columns["mmsi"])
    arrays = []
    for field in plan_schema:
        if field.name == "source_file":
            arrays.append(pa.array(np.full(n, source_file, dtype=object), pa.string()))
        elif field.name in columns:
            arrays.append(pc.cast(columns[field.name], field.type))
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=plan_schema)
