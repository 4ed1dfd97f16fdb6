"""Typed, frozen settings of a recipe's ``quality.qc`` section, the QC part of
:class:`expectations.quality_config.QualityConfig`.

Every key is optional: thresholds default to ``expectations/qc_defaults.yaml`` (per canonical
variable, then per region); a recipe entry under ``variables`` replaces the default of that test
only. Example::

    quality:
      qc:
        region: north_atlantic
        hard_tests: [gross_range]
        variables:
          sea_water_temperature:
            gross_range: {fail: [-2.5, 30], suspect: [-2, 25]}
            spike: {suspect: 1.0, fail: 3.0}
        location: {bbox: [-20, 40, 0, 50]}
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Span = tuple[float | None, float | None]

VARIABLE_TESTS = ("gross_range", "climatology", "spike", "rate_of_change", "flat_line",
                  "attenuated_signal", "density_inversion")
#: row-level tests (one flag per row, in every variable's aggregate), in column order
ROW_TESTS = ("location", "region", "speed", "distance", "time")
ALL_TESTS = VARIABLE_TESTS + ROW_TESTS + ("source_flag",)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GrossRange(_Frozen):
    fail: Span
    suspect: Span | None = None

    @model_validator(mode="after")
    def _suspect_inside_fail(self):
        if self.suspect is None:
            return self
        low = lambda v: -float("inf") if v is None else v
        high = lambda v: float("inf") if v is None else v
        if low(self.suspect[0]) < low(self.fail[0]) or high(self.suspect[1]) > high(self.fail[1]):
            raise ValueError(f"suspect span {list(self.suspect)} must lie within fail span "
                             f"{list(self.fail)}")
        return self


class ClimatologyRow(_Frozen):
    period: Literal["month", "dayofyear"] = "month"
    start: int = Field(ge=1, le=366)
    end: int = Field(ge=1, le=366)
    suspect: Span
    fail: Span | None = None
    depth_min: float | None = None
    depth_max: float | None = None


class Spike(_Frozen):
    suspect: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)
    method: Literal["average", "differential"] = "average"


class RateOfChange(_Frozen):
    #: units of the variable per second
    suspect: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)


class FlatLine(_Frozen):
    tolerance: float = Field(ge=0)
    suspect_seconds: float | None = Field(default=None, gt=0)
    fail_seconds: float | None = Field(default=None, gt=0)


class AttenuatedSignal(_Frozen):
    """A variation (population std or max - min) over ``period`` seconds below ``suspect`` /
    ``fail`` (variable's units) is SUSPECT / FAIL: a fouled or wrapped sensor."""

    suspect: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)
    #: window length, seconds (ioos_qc ``test_period``)
    period: float = Field(gt=0)
    check: Literal["std", "range"] = "std"
    #: values the window must hold to be judged (ioos_qc ``min_obs``); never fewer than 2
    min_obs: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _fail_below_suspect(self):
        if self.suspect is not None and self.fail is not None and self.fail > self.suspect:
            raise ValueError(f"fail {self.fail} must not exceed suspect {self.suspect}: a "
                             "smaller variation is worse")
        return self


class DensityInversion(_Frozen):
    #: kg m-3, negative: a density decrease with depth beyond this is flagged
    suspect: float | None = Field(default=-0.03, le=0)
    fail: float | None = Field(default=-0.06, le=0)


class VariableQC(_Frozen):
    """Tests of one output column; a key set here replaces that test's default. ``null``
    switches a default test off."""

    gross_range: GrossRange | None = None
    climatology: list[ClimatologyRow] | None = None
    spike: Spike | None = None
    rate_of_change: RateOfChange | None = None
    flat_line: FlatLine | None = None
    attenuated_signal: AttenuatedSignal | None = None
    #: where the column's source flags come from: argo, oceansites (Copernicus), coops, or none
    source_scale: Literal["argo", "oceansites", "copernicus", "coops", "none"] | None = None


class Location(_Frozen):
    """The data set's region (the ``region`` test, column ``qc_region``). Impossible coordinates
    are the ``location`` test's (``qc_location``) and always FAIL."""

    #: (lon_min, lat_min, lon_max, lat_max), inclusive
    bbox: tuple[float, float, float, float] | None = None
    #: (lon, lat) vertices
    polygon: list[tuple[float, float]] | None = None
    #: flag of a position outside the region
    outside: Literal["suspect", "fail"] = "fail"


class Speed(_Frozen):
    #: m s-1, for moving platforms (gliders, floats, ships)
    suspect: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)


class Distance(_Frozen):
    #: metres between consecutive fixes of a platform (a mooring's or buoy's jump)
    suspect: float | None = Field(default=None, ge=0)
    fail: float | None = Field(default=None, ge=0)


class TimeQC(_Frozen):
    not_before: str | None = "1900-01-01T00:00:00"


class QCConfig(_Frozen):
    enabled: bool = True
    #: a region of qc_defaults.yaml whose thresholds replace the global ones
    region: str | None = None
    #: test names run (of: gross_range, climatology, spike, rate_of_change, flat_line,
    #: attenuated_signal, density_inversion, location, region, speed, distance, time,
    #: source_flag); default: every configured test
    tests: list[Literal[ALL_TESTS]] | None = None  # type: ignore[valid-type]
    #: tests whose FAIL quarantines the row ("aggregate" = any FAIL of the variable's aggregate)
    hard_tests: list[Literal[ALL_TESTS + ("aggregate",)]] = Field(  # type: ignore[valid-type]
        default_factory=list)
    variables: dict[str, VariableQC] = Field(default_factory=dict)
    location: Location = Location()
    speed: Speed = Speed()
    distance: Distance = Distance()
    time: TimeQC = TimeQC()
    density_inversion: DensityInversion = DensityInversion()
    #: the column that names the platform/station; default: the first id column found
    platform_column: str | None = None
    #: the column that names the profile, cast or segment of a platform (ordered tests run per
    #: platform and profile, along the profile); default: the first profile column found
    profile_column: str | None = None
    #: source flag scale of ``<var>_qc_source`` columns when a variable does not say
    source_scale: Literal["argo", "oceansites", "copernicus", "none"] = "oceansites"
    #: histogram bins per variable (fixed edges over the fail span, so chunk merges are exact)
    hist_bins: int = Field(default=60, ge=1, le=1000)
    #: ordered tests on more samples than this run in overlapping windows (bounded memory)
    window: int = Field(default=500_000, ge=16)
