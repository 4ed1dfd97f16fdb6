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


class NotAFileError(UnreadableSourceError):
    """A URI names a directory, a named pipe, a device or a socket instead of a regular file."""


class TruncatedSourceError(UnreadableSourceError):
    """A file is shorter than its own header says: part of it is missing."""


class CorruptSourceError(UnreadableSourceError):
    """A file's bytes are damaged: its library failed to decode a header, a chunk or a name."""


class EncodingError(UnreadableSourceError):
    """A text file is not in the encoding the recipe names (e.g. UTF-16 read as UTF-8)."""


class DuplicateKeyError(ConnectorError):
    """The same key (e.g. a grid time step) occurs twice, in one file or in two."""


class MissingVariableError(ConnectorError):
    """A variable named in the recipe is absent from the file."""


class UnitConversionError(ConnectorError):
    """A variable's units cannot be converted to the canonical units."""


class UnknownKindError(ConnectorError):
    """A recipe names a source kind that no connector is registered for."""


class IncompatibleSourceError(ConnectorError):
    """The recipe entry cannot be applied to this file's structure."""


class ColumnNameClashError(IncompatibleSourceError):
    """Two output columns would have one name (a variable mapped to ``depth``, or two variables
    mapped to one column): refused at plan time, naming the recipe key."""
