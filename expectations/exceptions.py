"""Named errors of the validation layer (suites, checks, metrics, results).

Every message says what went wrong, where (suite file, expectation, column), the offending value
and the fix, so that the CLI can print it as is instead of a traceback.
"""
from __future__ import annotations


class ExpectationsError(Exception):
    """Base class: a suite could not be loaded, compiled or evaluated."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where = where
        self.fix = fix
        self.reason = message
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text} Fix: {fix}" if fix else text)


class SuiteError(ExpectationsError):
    """A suite file is missing, not JSON, or not a GE ExpectationSuite (name, expectations)."""


class UnsupportedExpectationError(ExpectationsError):
    """A suite uses an expectation type (or kwarg) the arrow metrics engine cannot compute."""


class RangeOverrideError(ExpectationsError):
    """``quality.ranges`` names a column the dataset does not have."""


class MetricTypeError(ExpectationsError):
    """A column's Arrow type cannot be compared with an expectation's bounds or value set."""


class ReferenceEngineError(ExpectationsError):
    """Great Expectations' own engine failed on a chunk for a reason other than the data."""


class QCConfigError(ExpectationsError):
    """``quality.qc`` names an unknown region or column, or a threshold table is invalid."""
