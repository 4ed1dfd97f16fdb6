"""Haina's catalog: versions, lineage and storage of the datasets a pipeline writes.

- :mod:`catalog.store` the contract (records, ids, :class:`Catalog`, :func:`open_catalog`);
- :mod:`catalog.sql` the SQLAlchemy backend (SQLite, PostgreSQL);
- :mod:`catalog.warehouse` the folder layout, publishing and garbage collection;
- :mod:`catalog.writer` Parquet writing with streaming checksums, partitioning, ordering;
- :mod:`catalog.manifest` the self-describing ``manifest.json`` of a version folder.

Only the contract is imported here: the writer and warehouse import Beam's filesystems and
pyarrow, which a caller that only reads the catalog should not pay for.
"""
from catalog.exceptions import (
    CatalogError,
    DatasetLockedError,
    DatasetNotFoundError,
    RunNotFoundError,
    VersionNotFoundError,
)
from catalog.store import (
    Catalog,
    DatasetRecord,
    FileRecord,
    RunRecord,
    SourceRecord,
    VersionRecord,
    new_run_id,
    new_version_id,
    open_catalog,
    register_backend,
)

__all__ = [
    "Catalog", "CatalogError", "DatasetLockedError", "DatasetNotFoundError", "DatasetRecord",
    "FileRecord", "RunNotFoundError", "RunRecord", "SourceRecord", "VersionNotFoundError",
    "VersionRecord", "new_run_id", "new_version_id", "open_catalog", "register_backend",
]
