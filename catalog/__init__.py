"""Haina's catalog: versions, lineage and storage of the datasets a pipeline writes.

- :mod:`catalog.store` the contract (records, ids, :class:`Catalog`, :func:`open_catalog`);
- :mod:`catalog.sql.backend` the SQLAlchemy backend (SQLite, PostgreSQL);
- :mod:`catalog.storage.warehouse` the folder layout, publishing and garbage collection;
- :mod:`catalog.storage.writer` Parquet writing with streaming checksums, partitioning, ordering;
- :mod:`catalog.storage.manifest` the self-describing ``manifest.json`` of a version folder.

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

#: names served lazily from catalog.read (it imports pyarrow.dataset)
_API = ("open_dataset", "to_pandas", "iter_batches", "resolve_version", "data_files")


def __getattr__(name: str):
    if name in _API:
        from catalog import read as api

        return getattr(api, name)
    raise AttributeError(f"module 'catalog' has no attribute {name!r}")


__all__ = [
    "Catalog", "CatalogError", "DatasetLockedError", "DatasetNotFoundError", "DatasetRecord",
    "FileRecord", "RunNotFoundError", "RunRecord", "SourceRecord", "VersionNotFoundError",
    "VersionRecord", "data_files", "iter_batches", "new_run_id", "new_version_id", "open_catalog",
    "open_dataset", "register_backend", "resolve_version", "to_pandas",
]
