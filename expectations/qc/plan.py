"""QC planning, in the driver: a recipe's ``quality.qc`` and the dataset's columns in, a small
picklable :class:`QCPlan` out (pure; reads only the packaged ``qc_defaults.yaml``).

Thresholds are resolved per variable and test: defaults from ``qc_defaults.yaml``, then the
region's, then the recipe's. Workers apply the plan with :func:`expectations.qc.apply.apply_qc`.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel

from connectors.base import ColumnInfo
from expectations.exceptions import QCConfigError
from expectations.qc import config as models
from expectations.qc import flags as fl
from expectations.qc.config import ROW_TESTS, QCConfig, VariableQC

PLATFORM_COLUMNS = ("platform_id", "station_id", "mmsi")
#: profile, cast or segment ids: ordered tests run per platform and profile
PROFILE_COLUMNS = ("profile_index", "profile_id", "cycle_number")
#: tests that need samples of one series in order (not planned without a platform column)
SERIES_TESTS = ("spike", "rate_of_change", "flat_line", "attenuated_signal", "speed",
                "distance")
TEMPERATURE = "sea_water_temperature"
SALINITY = ("sea_water_practical_salinity", "sea_water_salinity")


@dataclasses.dataclass(frozen=True)
class VariablePlan:
    name: str
    #: test -> resolved parameters (plain dicts of floats/lists: picklable, JSON-able)
    tests: dict[str, dict]
    source_column: str | None = None
    source_scale: str | None = None
    hist_edges: tuple[float, ...] | None = None


@dataclasses.dataclass(frozen=True)
class QCPlan:
    variables: tuple[VariablePlan, ...] = ()
    row_tests: dict[str, dict] = dataclasses.field(default_factory=dict)
    hard_tests: tuple[str, ...] = ()
    platform_column: str | None = None
    profile_column: str | None = None
    density: dict | None = None
    coops_columns: tuple[str, ...] = ()
    window: int = 500_000

    @property
    def enabled(self) -> bool:
        return bool(self.variables or self.row_tests)


# --------------------------------------------------------------------------- planning


@functools.cache
def qc_defaults() -> dict:
    text = resources.files("expectations").joinpath("qc_defaults.yaml").read_text()
    return yaml.safe_load(text)


def plan_qc(columns: Sequence[ColumnInfo], qc_config: QCConfig, region: str | None = None
            ) -> QCPlan:
    """Resolve the thresholds of every test for the dataset's columns (driver side, once)."""
    if not qc_config.enabled:
        return QCPlan()
    names = {c.name for c in columns}
    region_defaults = _region(region or qc_config.region)
    _check_variables(qc_config, columns)
    coops = tuple(c for c in fl.COOPS_VERDICT_COLUMNS if c in names)
    variables = tuple(
        plan for info in columns if info.role == "variable"
        if (plan := _variable_plan(info.name, names, qc_config, region_defaults, coops)) is not None)
    platform = qc_config.platform_column or next((c for c in PLATFORM_COLUMNS if c in names), None)
    profile = _profile_column(names, qc_config)
    row_tests = _row_tests(names, qc_config)
    if platform is None:
        # Ordered tests compare a sample with its neighbours in the same series. Without a
        # platform, station or vessel id (a grid), consecutive rows are different cells, so
        # those tests would compare unrelated values: they are not run (see docs/qc.md).
        variables = tuple(dataclasses.replace(v, tests={t: p for t, p in v.tests.items()
                                                         if t not in SERIES_TESTS})
                          for v in variables)
        row_tests = {t: p for t, p in row_tests.items() if t not in SERIES_TESTS}
    return QCPlan(
        variables=variables, row_tests=row_tests,
        hard_tests=tuple(qc_config.hard_tests),
        platform_column=platform, profile_column=profile,
        density=_density_plan(names, qc_config, profile), coops_columns=coops,
        window=qc_config.window)


def _profile_column(names: set[str], qc_config: QCConfig) -> str | None:
    chosen = qc_config.profile_column
    if chosen is None:
        return next((c for c in PROFILE_COLUMNS if c in names), None)
    if chosen not in names:
        raise QCConfigError(
            f"profile column {chosen!r} is not a column of the dataset",
            where="quality.qc.profile_column",
            fix=f"use one of {sorted(names)}, or remove the key to use the first of "
                f"{list(PROFILE_COLUMNS)} present")
    return chosen


def _region(region: str | None) -> dict:
    if region is None:
        return {}
    regions = qc_defaults().get("regions", {})
    if region not in regions:
        raise QCConfigError(
            f"unknown QC region {region!r}", where="quality.qc.region",
            fix=f"use one of {sorted(regions)} or add thresholds under quality.qc.variables")
    return regions[region]


def _check_variables(qc_config: QCConfig, columns: Sequence[ColumnInfo]) -> None:
    variables = sorted(c.name for c in columns if c.role == "variable")
    for name in qc_config.variables:
        if name not in variables:
            raise QCConfigError(
                f"column {name!r} is not a variable of the dataset",
                where=f"quality.qc.variables.{name}",
                fix=f"use one of the output variable columns: {variables}")


def _enabled(test: str, qc_config: QCConfig) -> bool:
    return qc_config.tests is None or test in qc_config.tests


def _variable_tests(name: str, qc_config: QCConfig, region_defaults: dict) -> dict[str, dict]:
    tests = dict(qc_defaults()["variables"].get(name) or {})
    tests.update(region_defaults.get(name) or {})
    override = qc_config.variables.get(name, VariableQC())
    for test in override.model_fields_set - {"source_scale"}:
        value = getattr(override, test)
        tests[test] = (None if value is None else
                       [row.model_dump() for row in value] if test == "climatology"
                       else value.model_dump())
    return {t: _normalise(t, p) for t, p in tests.items()
            if p is not None and _enabled(t, qc_config)}


#: the pydantic model that validates each test's thresholds (climatology: one per row)
_TEST_MODELS: dict[str, type[BaseModel]] = {
    "gross_range": models.GrossRange, "spike": models.Spike, "rate_of_change": models.RateOfChange,
    "flat_line": models.FlatLine, "attenuated_signal": models.AttenuatedSignal}


def _normalise(test: str, params: Any) -> dict:
    """Defaults come from YAML with the same keys as the pydantic models: validate them too."""
    model = _TEST_MODELS.get(test)
    if test == "climatology":
        return {"rows": [models.ClimatologyRow.model_validate(r).model_dump() for r in params]}
    if model is None:
        raise QCConfigError(f"unknown QC test {test!r}", where="qc_defaults.yaml",
                            fix="use gross_range, climatology, spike, rate_of_change, flat_line, "
                                "attenuated_signal")
    return model.model_validate(params).model_dump()


def _variable_plan(name, names, qc_config, region_defaults, coops) -> VariablePlan | None:
    tests = _variable_tests(name, qc_config, region_defaults)
    override = qc_config.variables.get(name, VariableQC())
    scale = override.source_scale or qc_config.source_scale
    source = f"{name}_qc_source" if f"{name}_qc_source" in names else None
    if source is None and coops and not name.endswith("_sigma"):
        scale = "coops"
    elif source is None:
        scale = None
    if scale == "none" or not _enabled("source_flag", qc_config):
        source, scale = None, None
    if not tests and scale is None:
        return None
    return VariablePlan(name, tests, source, scale,
                        _hist_edges(tests.get("gross_range"), qc_config.hist_bins))


def _hist_edges(gross: dict | None, bins: int) -> tuple[float, ...] | None:
    if gross is None or None in gross["fail"]:
        return None
    low, high = sorted(gross["fail"])
    return tuple(float(e) for e in np.linspace(low, high, bins + 1))


def _row_tests(names: set[str], qc_config: QCConfig) -> dict[str, dict]:
    tests: dict[str, dict] = {}
    position = {"latitude", "longitude"} <= names
    if position and _enabled("location", qc_config):
        tests["location"] = {}
    where = qc_config.location
    # a recipe listing only "location" (written before the region was a test of its own)
    # still gets its region checked
    if (position and (where.bbox is not None or where.polygon is not None)
            and (_enabled("region", qc_config) or _enabled("location", qc_config))):
        tests["region"] = {"bbox": where.bbox, "polygon": where.polygon,
                           "outside": fl.FAIL if where.outside == "fail" else fl.SUSPECT}
    for test, limits in (("speed", qc_config.speed), ("distance", qc_config.distance)):
        if (position and (test != "speed" or "time" in names) and _enabled(test, qc_config)
                and (limits.suspect is not None or limits.fail is not None)):
            tests[test] = limits.model_dump()
    if "time" in names and _enabled("time", qc_config):
        tests["time"] = qc_config.time.model_dump()
    return tests


def _density_plan(names: set[str], qc_config: QCConfig, profile: str | None) -> dict | None:
    salinity = next((s for s in SALINITY if s in names), None)
    if (TEMPERATURE not in names or salinity is None or profile is None or "depth" not in names
            or not _enabled("density_inversion", qc_config)):
        return None
    return {"temperature": TEMPERATURE, "salinity": salinity,
            **qc_config.density_inversion.model_dump()}


def planned_columns(plan: QCPlan) -> list[tuple[str, str, str]]:
    """``(column, derived_from, test)`` of every flag column, in output order."""
    cols = [(f"qc_{t}", "time" if t == "time" else "latitude,longitude", t)
            for t in ROW_TESTS if t in plan.row_tests]
    for var in plan.variables:
        tests = list(var.tests)
        if var.source_scale is not None:
            tests.append("source_flag")
        if plan.density is not None and var.name in (plan.density["temperature"],
                                                     plan.density["salinity"]):
            tests.append("density_inversion")
        cols += [(f"{var.name}_qc_{t}", var.name, t) for t in tests]
        cols.append((f"{var.name}_qc", var.name, "aggregate"))
    return cols


