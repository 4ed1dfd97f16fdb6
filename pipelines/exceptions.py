"""Named errors of the pipeline layer (recipes, runs, the gate)."""
from __future__ import annotations


class HainaError(Exception):
    """Base class of errors the CLI prints as a message, without a traceback."""

    exit_code = 2


class RecipeError(HainaError):
    """A recipe file is missing, not YAML, or does not match the recipe model."""


class OptionsError(HainaError):
    """A command-line or Beam pipeline option cannot work (e.g. a runner Beam does not know)."""


class RunError(HainaError):
    """A run could not complete: a source failed, or row accounting did not balance."""

    exit_code = 3


class SourceReadError(RunError):
    """A worker could not read a source file (truncated, corrupt, wrong encoding): bad input,
    named by the connector's error, so it exits 2 like a bad file found while planning."""

    exit_code = 2


class GateFailedError(HainaError):
    """Validation ran and the recipe's quality gate refused the run."""

    exit_code = 1


class DiskFullError(RunError):
    """A volume the run writes to (warehouse, staging, catalog) ran out of space."""


class EmptySourceError(GateFailedError):
    """Source files with bytes in them yielded no rows: most likely the wrong kind of file, or
    a file of only headers, fill values or rejected records. A gate failure by default (exit 1,
    run ``gate_failed``); ``allow_empty: true`` in the recipe commits the empty version."""
