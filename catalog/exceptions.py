"""Named errors of the catalog, the warehouse layout and the Parquet writer.

Every message says what went wrong, where (catalog URL, dataset, version, path), the offending
value, and the fix, so that the CLI can print it as is. ``exit_code`` mirrors the convention of
``pipelines.exceptions`` (the catalog does not import the pipeline layer).
"""
from __future__ import annotations


class CatalogError(Exception):
    """Base class of every error raised by the ``catalog`` package."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where = where
        self.fix = fix
        self.reason = message
        text = f"{where}: {message}" if where else message
        super().__init__(f"{text} Fix: {fix}" if fix else text)


# --- opening a catalog -----------------------------------------------------------------------
class UnknownCatalogSchemeError(CatalogError):
    """A catalog URL uses a scheme no backend is registered for."""


class MissingDependencyError(CatalogError):
    """A backend needs an optional package that is not installed."""


class CatalogConnectionError(CatalogError):
    """The catalog database could not be reached or its tables could not be created."""


class CatalogNotFoundError(CatalogConnectionError):
    """A reader found no catalog where it looked (no database file, no tables); nothing was
    created."""


class CatalogUnavailableError(CatalogConnectionError):
    """The catalog database failed an operation: the connection was lost mid-operation (server
    restart, connection killed, network cut), the server did not answer, or SQLite stayed
    locked. ``disconnect`` says the connection was lost (the operation may be retried on a new
    one)."""

    exit_code = 3

    def __init__(self, message: str, *, disconnect: bool = False, where: str | None = None,
                 fix: str | None = None):
        self.disconnect = disconnect
        super().__init__(message, where=where, fix=fix)


# --- lookups ---------------------------------------------------------------------------------
class NotFoundError(CatalogError):
    """Base class of lookups that found nothing."""


class DatasetNotFoundError(NotFoundError):
    """A dataset name is not in the catalog."""


class VersionNotFoundError(NotFoundError):
    """A version id (or ``latest``) does not resolve to a version of the dataset."""


class RunNotFoundError(NotFoundError):
    """A run id is not in the catalog."""


# --- writes ----------------------------------------------------------------------------------
class InvalidRecordError(CatalogError, ValueError):
    """A record handed to the catalog is malformed (naive timestamp, unknown status, bad count)."""


class DuplicateError(CatalogError):
    """A run or version id already exists."""


class RunStateError(CatalogError):
    """A run is not in the state the operation needs (e.g. finishing a run that is not running)."""


class DatasetLockedError(CatalogError):
    """Another live run of the same dataset holds the dataset lock."""

    exit_code = 4

    def __init__(self, message: str, *, holder_run_id: str, where: str | None = None,
                 fix: str | None = None):
        self.holder_run_id = holder_run_id
        super().__init__(message, where=where, fix=fix)


class LockNotHeldError(NotFoundError):
    """``haina unlock`` was asked to remove a lock that nobody holds."""


class LockHolderAliveError(CatalogError):
    """``haina unlock`` refused: the holder's process is alive on this very host."""

    exit_code = 4


# --- releases --------------------------------------------------------------------------------
# Raised by every backend's release methods as well as by the lifecycle, so they live here and
# ``catalog.releases.lifecycle`` re-exports them under the names callers already use.
class ReleaseError(CatalogError):
    """A release-lifecycle operation is not possible as asked."""


class TransitionError(ReleaseError):
    """The version is not in a state the action starts from, or a needed reason is missing."""


class ReleaseConflictError(ReleaseError):
    """Another process released the same draft or took the same semver first."""

    exit_code = 4


class YankedVersionError(ReleaseError):
    """A yanked version was asked for without ``allow_yanked``."""


# --- audit log -------------------------------------------------------------------------------
class AuditError(CatalogError):
    """The audit log cannot be appended to, or its head file cannot be written."""


class HeadFileMismatchError(AuditError):
    """The warehouse's head file mirrors another catalog than the one opened."""


# --- files -----------------------------------------------------------------------------------
class WarehouseError(CatalogError):
    """A warehouse path operation (publish, gc) failed."""


class PublishError(WarehouseError):
    """Staged files could not be moved into their version folder."""


class CatalogReadOnlyError(CatalogError):
    """A write through a catalog opened read-only (by a command that only reads)."""

    exit_code = 3


class WarehouseReadOnlyError(WarehouseError):
    """The warehouse folder cannot be written, so a run or a release could not change anything."""

    exit_code = 3


class UnsupportedURIError(CatalogError):
    """No Beam filesystem reads a URI's scheme (none exists, or its package is not installed)."""


class WriterError(CatalogError):
    """A Parquet file could not be written, or tables could not be combined."""


class ManifestError(CatalogError):
    """A manifest is missing, not valid JSON, not serialisable, or does not match its checksum."""
