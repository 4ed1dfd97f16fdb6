"""Named errors raised by connectors.

Every message says what went wrong, where (file, variable or field), the offending value, and the
fix, so that the CLI can print it as is instead of a traceback.
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Base class: a source could not be opened, planned or read."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        self.source = source
        self.fix = fix
        parts = []
        if source:
            parts.append(f"{source}: ")
        parts.append(message)
        if fix:
            parts.append(f" Fix: {fix}")
        super().__init__("".join(parts))
        self.reason = message


class SourceNotFoundError(ConnectorError):
    """A URI glob matched nothing, or a file vanished between planning and reading."""


class UnreadableSourceError(ConnectorError):
    """The file is not of the declared format, or is truncated or corrupt."""


class MissingVariableError(ConnectorError):
    """A variable named in the recipe is absent from the file."""


class UnitConversionError(ConnectorError):
    """A variable's units cannot be converted to the canonical units."""


class UnknownKindError(ConnectorError):
    """A recipe names a source kind that no connector is registered for."""


class IncompatibleSourceError(ConnectorError):
    """The recipe entry cannot be applied to this file's structure."""
