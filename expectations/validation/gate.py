"""The quality gate: decide from GE results whether a run may publish its dataset.

Rules (``quality:`` section of the recipe):

- an expectation with ``mostly`` in its kwargs passes or fails by GE's own ``success``;
- a map expectation (one with ``unexpected_count``) fails when ``unexpected_count /
  element_count`` exceeds the allowed fraction: ``max_failing_fraction_by_column[<column>]``,
  else ``max_failing_fraction_by_column[<expectation type>]``, else ``max_failing_fraction``.
  Note the denominator is every row (GE's ``unexpected_percent`` divides by non-missing rows);
- any other expectation (column exists, min/max, row count) fails when GE says it failed;
- an expectation that raised (e.g. its column is absent) always fails.
"""
from __future__ import annotations

import dataclasses

from expectations.quality_config import QualityConfig


@dataclasses.dataclass(frozen=True)
class GateDecision:
    passed: bool
    failures: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": list(self.failures)}


def as_json(result) -> dict:
    """A GE suite (or expectation) result as GE's JSON dict; dicts pass through unchanged."""
    return result.to_json_dict() if hasattr(result, "to_json_dict") else result


def evaluate_gate(results, quality: QualityConfig) -> GateDecision:
    """Judge every expectation result of every suite result against the recipe's gate.

    ``results`` are GE ``ExpectationSuiteValidationResult`` objects or their JSON dicts.
    """
    if not quality.enabled:
        return GateDecision(passed=True)
    suites = [as_json(suite) for suite in results]
    failures = tuple(
        failure
        for suite in suites
        for result in suite["results"]
        if (failure := _failure(suite["suite_name"], result, quality)) is not None
    )
    return GateDecision(passed=not failures, failures=failures)


def allowed_fraction(column: str | None, kind: str, quality: QualityConfig) -> float:
    by = quality.max_failing_fraction_by_column
    if column is not None and column in by:
        return by[column]
    return by.get(kind, quality.max_failing_fraction)


def _failure(suite: str, result: dict, quality: QualityConfig) -> str | None:
    config = result["expectation_config"]
    kwargs = config.get("kwargs") or {}
    column = kwargs.get("column")
    label = f"{suite}: {config['type']}" + (f" on column {column!r}" if column else "")
    info = result.get("exception_info") or {}
    if info.get("raised_exception"):
        return f"{label}: could not be evaluated: {info.get('exception_message')}"
    observed = result.get("result") or {}
    # GE drops mostly=1.0 (its default) from the kwargs, so suites that must be judged by GE's
    # own success say so in their meta
    own_success = kwargs.get("mostly") is not None or (config.get("meta") or {}).get("gate") == "ge"
    if own_success or "unexpected_count" not in observed:
        return None if result["success"] else f"{label}: failed ({_observed(observed, kwargs)})"
    return _fraction_failure(label, observed, allowed_fraction(column, config["type"], quality))


def _fraction_failure(label: str, observed: dict, allowed: float) -> str | None:
    unexpected = observed.get("unexpected_count") or 0
    total = observed.get("element_count") or 0
    fraction = unexpected / total if total else 0.0
    if fraction <= allowed:
        return None
    return (f"{label}: {unexpected} of {total} rows unexpected ({fraction:.4%}) > allowed "
            f"{allowed:.4%}; sample {_plain(observed.get('partial_unexpected_list', [])[:5])}")


def _plain(values: list) -> str:
    """Sample values as a user would write them (45.0, not np.float32(45.0))."""
    return "[" + ", ".join(str(v.item() if hasattr(v, "item") else v) for v in values) + "]"


def _observed(observed: dict, kwargs: dict) -> str:
    if "observed_value" in observed:
        bounds = {k: kwargs[k] for k in ("min_value", "max_value") if k in kwargs}
        return f"observed {observed['observed_value']!r}, expected {bounds}"
    if "unexpected_count" in observed:
        return (f"{observed['unexpected_count']} of {observed.get('element_count')} rows "
                f"unexpected, mostly={kwargs.get('mostly')}")
    return "expectation not met"
