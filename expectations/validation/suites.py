"""Which GE suites validate a dataset: coordinates, per-variable physical ranges, recipe extras.

Suites are plain dicts in GE's ExpectationSuite JSON format, so a user can write, read and diff
them with GE's own tools. Variable suites live in ``expectations/suites/<column>.json``.

Choices, documented here because they decide what fails a run:

- ``depth`` may be slightly negative: down to -5 m, mirroring Argo's real-time rule that pressure
  above -5 dbar is acceptable (surface and tidal sensors, pressure offsets); deeper than 11000 m is
  below the deepest ocean. ``depth`` is nullable (null when absent), so it has no not-null check.
- ``longitude`` is checked in [-180, 180) (strict max), the canonical convention of the schema.
- A ``coverage.bbox`` that crosses the antimeridian (west > east) cannot be one "between"
  expectation; its longitude part is skipped and the suite's meta says so.
- ``quality.ranges`` replaces the bounds it sets (an explicit ``null`` removes a bound; a bound it
  does not mention is kept) on every range expectation of that column; a column without one gets
  a new expectation in suite ``haina.ranges``.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol

from connectors.base import ColumnInfo
from expectations.exceptions import RangeOverrideError, SuiteError
from expectations.quality_config import QualityConfig
from expectations.validation.checks import row_condition


class TimeSpan(Protocol):
    """A closed time interval (``pipelines.recipe.TimeCoverage`` is one)."""

    @property
    def start(self) -> dt.datetime: ...

    @property
    def end(self) -> dt.datetime: ...


class DeclaredCoverage(Protocol):
    """What a dataset declares it covers, as the coordinates suite reads it.

    A recipe's ``coverage:`` (``pipelines.recipe.Coverage``) is one; validation names only what
    it reads, so this lower layer does not import the recipe, not even for its types.
    """

    @property
    def time(self) -> TimeSpan | None: ...

    #: [west, south, east, north] in degrees, longitudes in [-180, 180]
    @property
    def bbox(self) -> tuple[float, float, float, float] | None: ...

    @property
    def depth(self) -> tuple[float, float] | None: ...


BETWEEN = "expect_column_values_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
TYPE = "expect_column_type_to_be"
UNIQUE = "expect_compound_columns_to_be_unique"
IN_SET = "expect_column_values_to_be_in_set"
EXISTS = "expect_column_to_exist"
COORDINATES_SUITE = "haina.coordinates"
RANGES_SUITE = "haina.ranges"
DEPTH_RANGE = (-5.0, 11000.0)


def load_suite(path) -> dict:
    """Read one GE ExpectationSuite JSON file; check it has a name and typed expectations."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise SuiteError("suite file not found", where=str(path),
                         fix="check the path in quality.suites (relative to the recipe)") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SuiteError(f"cannot read suite as JSON: {err}", where=str(path),
                         fix="write the suite in GE's ExpectationSuite JSON format") from err
    return validate_suite(raw, str(path))


def validate_suite(raw, where: str) -> dict:
    """A suite dict in GE 1.x form; the 0.x keys (expectation_type) are normalised to 1.x."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        old = raw.get("expectation_suite_name") if isinstance(raw, dict) else None
        hint = " (GE 0.x's expectation_suite_name is now name)" if old else ""
        raise SuiteError(f"a suite needs a non-empty string 'name'{hint}", where=where,
                         fix='start the file with {"name": "<suite name>", "expectations": [...]}')
    expectations = raw.get("expectations")
    if not isinstance(expectations, list):
        raise SuiteError(f"'expectations' must be a list (got {expectations!r})", where=where)
    suite = {"name": raw["name"], "expectations": [], "meta": dict(raw.get("meta") or {})}
    for i, item in enumerate(expectations):
        suite["expectations"].append(_validate_expectation(item, f"{where}: expectations[{i}]"))
    return suite


def _validate_expectation(item, where: str) -> dict:
    if not isinstance(item, dict):
        raise SuiteError(f"expected a mapping with 'type' and 'kwargs' (got {item!r})", where=where)
    kind = item.get("type", item.get("expectation_type"))
    kwargs = item.get("kwargs", {})
    if not isinstance(kind, str) or not kind.startswith("expect_"):
        raise SuiteError(f"'type' must name a GE expectation such as {BETWEEN!r} (got {kind!r})",
                         where=where)
    if not isinstance(kwargs, dict):
        raise SuiteError(f"'kwargs' must be a mapping (got {kwargs!r})", where=where)
    return {"type": kind, "kwargs": dict(kwargs), "meta": dict(item.get("meta") or {})}


def builtin_suite_path(column: str) -> Path | None:
    """The packaged physical-range suite of a canonical variable, if there is one."""
    candidate = resources.files("expectations").joinpath("suites", f"{column}.json")
    return Path(str(candidate)) if candidate.is_file() else None


def suites_for(columns: Sequence[ColumnInfo], quality: QualityConfig,
               coverage: DeclaredCoverage | None, base_dir: Path) -> list[dict]:
    """The suites that validate a dataset with these output ``columns``."""
    suites = [kind_suite(columns, quality.unique_key), coordinates_suite(columns, coverage)]
    suites += [s for s in (variable_suite(c) for c in columns if c.role == "variable") if s]
    suites = apply_ranges(suites, quality, {c.name for c in columns})
    suites.append(qc_suite(columns, quality))
    suites += [load_suite(Path(base_dir) / extra) for extra in quality.suites]
    return [s for s in suites if s["expectations"]]


#: identity columns, in the order a dataset's kind is recognised by
ID_COLUMNS = {"trajectory": ("mmsi",), "profile": ("profile_index", "profile_id", "cycle_number"),
              "timeseries": ("station_id", "platform_id")}


def data_kind(names: set[str]) -> str:
    """The kind of dataset its columns describe: trajectory, profile, timeseries, grid or table."""
    for kind in ("trajectory", "profile", "timeseries"):
        if any(c in names for c in ID_COLUMNS[kind]):
            return kind
    return "grid" if {"time", "latitude", "longitude"} <= names else "table"


def kind_suite(columns: Sequence[ColumnInfo], unique: Sequence[str] | None = None) -> dict:
    """Structure and keys of the dataset's kind (``expectations/suites/kinds/<kind>.json``).

    The file lists the columns every dataset of the kind has; the identity columns it has
    (station or platform, profile) must never be null; its meta gives the pandas dtype of each
    canonical and key column (``column_types``) and, where a key is unique, which columns form
    it (``unique_key``), checked across the whole run. ``unique`` (the recipe's
    ``quality.unique_key``) replaces that key; ``[]`` checks none.
    """
    names = {c.name for c in columns}
    kind = data_kind(names)
    path = resources.files("expectations").joinpath("suites", "kinds", f"{kind}.json")
    suite = validate_suite(json.loads(path.read_text(encoding="utf-8")), str(path))
    keys = [c for group in ID_COLUMNS.values() for c in group if c in names]
    if kind == "profile" and "platform_id" in names:
        keys = ["platform_id", *[k for k in keys if k != "platform_id"]]
    present = {e["kwargs"].get("column") for e in suite["expectations"]}
    for key in dict.fromkeys(keys):
        if key not in present:
            suite["expectations"].append(_noted(_expect(NOT_NULL, key),
                                                f"key: every row names its {key}"))
    meta = suite.get("meta") or {}
    for column, dtype in (meta.get("column_types") or {}).items():
        if column in names:
            suite["expectations"].append(_noted(_expect(TYPE, column, type_=dtype),
                                                f"type: {column} is {dtype}"))
    if unique is None:
        unique, why = unique_key(meta.get("unique_key") or [], names), meta.get("uniqueness")
    else:
        absent = [c for c in unique if c not in names]
        if absent:
            raise SuiteError(f"names columns the dataset does not have: "
                             f"{absent}", where="quality.unique_key",
                             fix=f"use output column names: {', '.join(sorted(names))}")
        why = "the recipe's quality.unique_key"
    if unique:
        suite["expectations"].append({"type": UNIQUE, "kwargs": {"column_list": list(unique)},
                                      "meta": {"notes": f"uniqueness: {why}"}})
    return suite


def unique_key(spec: Sequence[str], names: set[str]) -> list[str]:
    """The key columns a kind's ``unique_key`` names for these columns; [] if one is absent.

    ``a|b`` takes the first of the alternatives present; ``c?`` is used only when present.
    """
    key = []
    for item in spec:
        optional = item.endswith("?")
        found = [c for c in item.rstrip("?").split("|") if c in names]
        if found:
            key.append(found[0])
        elif not optional:
            return []
    return key if len(key) >= 2 else []


QC_SUITE = "haina.qc"
#: QARTOD flags: 1 good, 2 not evaluated, 3 suspect, 4 fail, 9 missing
NOT_FAIL, NOT_SUSPECT = [1, 2, 3, 9], [1, 2, 9]


def qc_suite(columns: Sequence[ColumnInfo], quality: QualityConfig) -> dict:
    """Flag fractions as GE expectations on each variable's aggregate QC flag column.

    "Values in {1, 2, 3, 9}" counts FAIL rows as unexpected, "in {1, 2, 9}" SUSPECT and FAIL;
    ``mostly`` is one minus the recipe's allowed fraction, so GE's own success decides the gate.
    """
    names = {c.name for c in columns}
    variables = [c.name for c in columns if c.role == "variable" and f"{c.name}_qc" in names]
    expectations = []
    for name in variables:
        gate = quality.qc_gate_by_variable.get(name, quality.qc_gate)
        expectations.append(_flag_fraction(name, NOT_FAIL, gate.max_fail_fraction, "FAIL"))
        expectations.append(_flag_fraction(name, NOT_SUSPECT, gate.max_suspect_fraction,
                                           "SUSPECT or FAIL"))
    return {"name": QC_SUITE, "expectations": expectations,
            "meta": {"source": "QARTOD aggregate flags computed by expectations/qc/apply.py"}}


def _flag_fraction(variable: str, allowed: list[int], max_fraction: float, what: str) -> dict:
    expectation = _expect(IN_SET, f"{variable}_qc", value_set=allowed,
                          mostly=round(1.0 - max_fraction, 12))
    expectation["meta"]["notes"] = (f"at most {max_fraction:.4%} of {variable}'s rows flagged "
                                    f"{what} by QC")
    expectation["meta"]["gate"] = "ge"  # judged by `mostly`, not by max_failing_fraction
    return expectation


def coordinates_suite(columns: Sequence[ColumnInfo], coverage: DeclaredCoverage | None) -> dict:
    names = {c.name for c in columns}
    # A coordinate the source does not have at all (a grid with no time axis, a station file
    # without its position) is null by construction; requiring it non-null would fail every run.
    sourced = {c.name for c in columns if c.source_name}
    expectations: list[dict] = []
    meta: dict = {"source": "Haina canonical observation schema (connectors/base.py)"}
    condition = position_rows(names, sourced)
    for name in ("time", "latitude", "longitude"):
        if name in names:
            expectations.append(_expect(EXISTS, name))
            if name in sourced and name != "time" and condition:
                expectations.append(_noted(_expect(NOT_NULL, name, **condition),
                                           "only rows of message types that carry a position"))
            elif name in sourced:
                expectations.append(_expect(NOT_NULL, name))
    if "latitude" in names:
        expectations.append(_between("latitude", -90.0, 90.0))
    if "longitude" in names:
        expectations.append(_between("longitude", -180.0, 180.0, strict_max=True))
    if "depth" in names:
        expectations.append(_between("depth", *DEPTH_RANGE, notes=(
            "positive down; -5 m tolerance as Argo's -5 dbar for surface/tidal sensors")))
    if coverage is not None:
        expectations += _coverage_expectations(coverage, names, meta)
    return {"name": COORDINATES_SUITE, "expectations": expectations, "meta": meta}


def position_rows(names: set[str], sourced: set[str]) -> dict:
    """The ``row_condition`` kwargs selecting the rows that must carry a position, or {}.

    A kind's suite meta may name them (``position_rows``: AIS trajectories, where static and
    voyage messages have no position by design); the condition applies only when its column
    comes from the source (raw NMEA has ``msg_type``; decoded CSV rows are all positions).
    """
    kind = data_kind(names)
    path = resources.files("expectations").joinpath("suites", "kinds", f"{kind}.json")
    spec = (json.loads(path.read_text(encoding="utf-8")).get("meta") or {}).get("position_rows")
    if not spec or spec["column"] not in sourced:
        return {}
    return row_condition(spec["column"], spec["values"])


def _coverage_expectations(coverage: DeclaredCoverage, names: set, meta: dict) -> list[dict]:
    out = []
    note = "inside the coverage the recipe declares"
    if coverage.time is not None and "time" in names:
        out.append(_between("time", coverage.time.start.isoformat(),
                            coverage.time.end.isoformat(), notes=note))
    if coverage.depth is not None and "depth" in names:
        out.append(_between("depth", float(coverage.depth[0]), float(coverage.depth[1]),
                            notes=note))
    if coverage.bbox is not None:
        west, south, east, north = coverage.bbox
        if "latitude" in names:
            out.append(_between("latitude", float(south), float(north), notes=note))
        if "longitude" in names and west <= east:
            out.append(_between("longitude", float(west), float(east), notes=note))
        elif "longitude" in names:
            meta["skipped"] = (f"bbox longitude [{west}, {east}] crosses the antimeridian; one "
                               "between-expectation cannot express it, so it is not checked")
    return out


def variable_suite(column: ColumnInfo) -> dict | None:
    """The packaged suite for a variable column (by name, else by standard name), retargeted."""
    for key in (column.name, column.standard_name):
        path = builtin_suite_path(key) if key else None
        if path is not None:
            suite = load_suite(path)
            for expectation in suite["expectations"]:
                if "column" in expectation["kwargs"]:
                    expectation["kwargs"]["column"] = column.name
            suite["name"] = column.name
            return suite
    return None


def apply_ranges(suites: list[dict], quality: QualityConfig, names: set[str]) -> list[dict]:
    """Replace range bounds with ``quality.ranges``; returns new suites (inputs untouched)."""
    unknown = sorted(set(quality.ranges) - names)
    if unknown:
        raise RangeOverrideError(f"quality.ranges names columns {unknown} that the dataset does "
                                 f"not have; its columns are {sorted(names)}",
                                 where="quality.ranges", fix="use output column names")
    suites = copy.deepcopy(suites)
    extra = []
    for column, override in quality.ranges.items():
        bounds = {f"{k}_value": getattr(override, k) for k in override.model_fields_set}
        targets = [e for s in suites for e in s["expectations"]
                   if e["type"] == BETWEEN and e["kwargs"].get("column") == column]
        for expectation in targets:
            expectation["kwargs"].update(bounds)
            expectation["meta"]["notes"] = f"bounds overridden by quality.ranges.{column}"
        if not targets:
            extra.append(_between(column, override.min, override.max,
                                  notes=f"from quality.ranges.{column}"))
    if extra:
        suites.append({"name": RANGES_SUITE, "expectations": extra,
                       "meta": {"source": "recipe quality.ranges"}})
    return suites


def _noted(expectation: dict, notes: str) -> dict:
    expectation["meta"]["notes"] = notes
    return expectation


def _expect(kind: str, column: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": {"column": column, **kwargs}, "meta": {}}


def _between(column: str, low, high, *, strict_max: bool = False, notes: str = "") -> dict:
    kwargs = {"min_value": low, "max_value": high}
    if strict_max:
        kwargs["strict_max"] = True
    expectation = _expect(BETWEEN, column, **kwargs)
    if notes:
        expectation["meta"]["notes"] = notes
    return expectation
