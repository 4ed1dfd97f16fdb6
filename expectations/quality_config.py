"""Typed, frozen quality settings of a recipe: the whole ``quality:`` section (the gate, range
overrides, extra suites, the metrics engine), which holds the QC settings of ``quality.qc``
(:mod:`expectations.qc.config`)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from expectations.qc.config import QCConfig

#: a share of rows, from none (0) to all (1)
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class RangeOverride(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    min: float | None = None
    max: float | None = None


class FlagGate(BaseModel):
    """Largest fractions of a variable's rows whose aggregate QC flag may be FAIL / SUSPECT-or-worse.

    The defaults (1.0) only report; lower them to let QC flags stop a run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_fail_fraction: float = Field(default=1.0, ge=0.0, le=1.0)
    max_suspect_fraction: float = Field(default=1.0, ge=0.0, le=1.0)


class QualityConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: the gate: the run fails when any expectation's unexpected fraction exceeds this
    max_failing_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    #: per-expectation-type or per-column overrides of the gate, e.g. {"sea_water_temperature": 0.01}
    max_failing_fraction_by_column: dict[str, Fraction] = Field(default_factory=dict)
    #: where chunk metrics are computed: "arrow" (exact, pyarrow.compute) or "great_expectations"
    #: (GE's own pandas engine on every chunk: the reference, much slower)
    engine: Literal["arrow", "great_expectations"] = "arrow"
    #: physical-range overrides per output column, replacing the suite's bounds
    ranges: dict[str, RangeOverride] = Field(default_factory=dict)
    #: extra suite files (GE ExpectationSuite JSON), relative to the recipe
    suites: list[str] = Field(default_factory=list)
    #: turn validation off entirely (not recommended; recorded in the run)
    enabled: bool = True
    #: QARTOD quality-control flags (see docs/qc.md)
    qc: QCConfig = QCConfig()
    #: how many rows may carry FAIL or SUSPECT aggregate flags, for every variable...
    qc_gate: FlagGate = FlagGate()
    #: ...or per variable (output column name)
    qc_gate_by_variable: dict[str, FlagGate] = Field(default_factory=dict)
    #: columns whose combination is unique across the run (GE expect_compound_columns_to_be_unique):
    #: None takes the data kind's key (expectations/suites/kinds/*.json), [] checks none
    unique_key: list[str] | None = None

    @field_validator("unique_key")
    @classmethod
    def _two_or_more(cls, value: list[str] | None) -> list[str] | None:
        if value and (len(value) < 2 or len(set(value)) != len(value)):
            raise ValueError("list two or more distinct columns (GE's compound uniqueness "
                             "needs two), or [] to check no key")
        return value
