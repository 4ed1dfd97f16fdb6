"""The consumer API: open a dataset version as a ``pyarrow.dataset.Dataset``.

::

    from catalog import open_dataset
    train = open_dataset("argo_profiles", "1.2.0", split="train")
    for batch in train.to_batches(columns=["time", "sea_water_temperature"]):
        ...

A version is read from *exactly* the data files the catalog lists for it (never a folder glob:
a crashed run's leftovers or a later version's files can sit next to them), with the hive
``date=`` (or ``month=``, ``year=``) partition as a string column. Only pyarrow and the
catalog's database are touched: this module does not import Beam, so a training job pays for
neither.

Version references: ``latest`` (the latest release; the latest draft, with an
:class:`UnreleasedVersionWarning`, while the dataset has no release), ``latest-draft``, a version
id (``v20261126T194650Z-3f9a1c``), or a semantic version (``1.2.0``): read by
:mod:`catalog.releases.resolve`, the one resolver every ``haina`` command uses too, with the
lifecycle rules of :func:`catalog.releases.lifecycle.resolve`: deprecated versions warn
(:class:`DeprecatedVersionWarning`), yanked versions raise :class:`VersionYankedError` unless
``allow_yanked=True``.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from catalog.exceptions import CatalogConnectionError, CatalogError, ManifestError
from catalog.releases import lifecycle
from catalog.releases import resolve as resolve_mod
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.storage.manifest import Manifest
from catalog.store import Catalog, FileRecord, VersionRecord, open_catalog

#: partition of quarantined rows: recorded with the version, never part of its data
QUARANTINE_PARTITION = "quarantine"
#: the hive partition column, kept as text (``__HIVE_DEFAULT_PARTITION__`` reads as null)
PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
SPLIT_COLUMN = "split"
DEFAULT_WAREHOUSE = "warehouse"


# --- errors and warnings --------------------------------------------------------------------
#: one name per condition: what the lifecycle raises and warns is what callers catch
VersionYankedError = lifecycle.YankedVersionError
DeprecatedVersionWarning = lifecycle.DeprecatedVersionWarning
UnreleasedVersionWarning = resolve_mod.UnreleasedVersionWarning


class IntegrityError(CatalogError):
    """A data file of a version is missing, or its bytes differ from the catalog's checksum."""

    exit_code = 6

    def __init__(self, message: str, *, path: str, expected: str | None = None,
                 actual: str | None = None, where: str | None = None, fix: str | None = None):
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(message, where=where, fix=fix)


class NoSplitsError(CatalogError):
    """``split=`` was asked of a version without a split column, or names an unknown split."""


class QueryError(CatalogError):
    """``columns``, ``filter`` or ``batch_size`` do not fit the version."""


class YankedVersionWarning(UserWarning):
    """A yanked version is being read because ``allow_yanked=True`` was passed."""


# --- catalog and warehouse -------------------------------------------------------------------
def _warehouse_root(warehouse: str | os.PathLike | None) -> str:
    root = os.fspath(warehouse) if warehouse is not None else None
    root = root or os.environ.get("HAINA_WAREHOUSE") or DEFAULT_WAREHOUSE
    return root if uri_mod.scheme(root) is not None else str(Path(root).resolve())


def _catalog_url(root: str) -> str:
    if uri_mod.is_remote(root):
        raise CatalogConnectionError(
            f"a warehouse at {root!r} has no local SQLite catalog", where="open_dataset",
            fix="pass catalog='postgresql://...' or set $HAINA_CATALOG_URL")
    path = Path(uri_mod.local_path(root)) / "catalog.db"
    if not path.exists():
        # opening would create an empty catalog (and folders): a reader must never do that
        raise CatalogConnectionError(
            f"no catalog at {path}", where="open_dataset",
            fix="pass warehouse= (or set $HAINA_WAREHOUSE) to the folder a `haina run` wrote, "
                "or pass catalog= (or $HAINA_CATALOG_URL)")
    return f"sqlite:///{path}"


def connect(warehouse: str | os.PathLike | None = None,
            catalog: Catalog | str | None = None) -> tuple[Catalog, str, bool]:
    """``(catalog, warehouse root, owned)``: arguments first, then $HAINA_CATALOG_URL /
    $HAINA_WAREHOUSE, then ``./warehouse``. ``owned`` says the caller must close the catalog."""
    root = _warehouse_root(warehouse)
    if isinstance(catalog, Catalog):
        return catalog, root, False
    url = catalog or os.environ.get("HAINA_CATALOG_URL") or _catalog_url(root)
    return open_catalog(url, create=False), root, True  # a reader creates nothing


# --- version resolution ----------------------------------------------------------------------
def resolve_version(catalog: Catalog, dataset: str, ref: str = "latest", *,
                    allow_yanked: bool = False) -> VersionRecord:
    """The version ``ref`` names (see the module docstring), after the state checks: a
    deprecated version warns, a yanked one raises unless ``allow_yanked``; ``latest`` of a
    dataset without a release is its latest draft, with an :class:`UnreleasedVersionWarning`."""
    record = lifecycle.resolve(catalog, dataset, ref, allow_yanked=allow_yanked,
                               draft_fallback=True)
    if record.state == "yanked":
        warnings.warn(YankedVersionWarning(
            f"reading yanked version {dataset}@{record.version_id} (allow_yanked=True)"),
            stacklevel=3)
    return record


# --- files -----------------------------------------------------------------------------------
def _version_root(version: VersionRecord, warehouse_root: str) -> str:
    """The version folder: the catalog's path, or its place in ``warehouse_root`` when the
    warehouse was moved (the catalog stores absolute paths)."""
    if uri_mod.scheme(version.path) is not None or os.path.isdir(version.path):
        return version.path.rstrip("/")
    moved = os.path.join(warehouse_root, "datasets", version.dataset, "versions",
                         version.version_id)
    return moved if os.path.isdir(moved) else version.path.rstrip("/")


def _filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    if uri_mod.scheme(root) is not None:
        return pafs.FileSystem.from_uri(root)
    return pafs.LocalFileSystem(), root


def data_records(catalog: Catalog, version: VersionRecord) -> list[FileRecord]:
    """The version's data files (quarantine files excluded), sorted by path."""
    return [f for f in catalog.files(version.version_id) if f.partition != QUARANTINE_PARTITION]


def data_files(catalog: Catalog, version: VersionRecord,
               warehouse: str | os.PathLike | None = None) -> list[str]:
    """Paths of the version's data files, for readers other than pyarrow (pandas, polars,
    DuckDB, Spark)."""
    root = _version_root(version, _warehouse_root(warehouse))
    return [uri_mod.join(root, f.path) for f in data_records(catalog, version)]


def verify_files(version_uri: str, records: Sequence[FileRecord], where: str) -> None:
    """Recompute each file's SHA-256 (streamed, under the version folder ``version_uri``);
    raise :class:`IntegrityError` at the first difference."""
    for record in records:
        path = uri_mod.join(version_uri, record.path)
        try:
            actual = files_mod.sha256(path)
        except OSError as err:
            raise IntegrityError(f"data file {record.path} is missing or unreadable ({err})",
                                 path=path, expected=record.sha256, where=where,
                                 fix="restore the version folder from a backup, or re-run the "
                                     "recipe to make a new version") from err
        if actual != record.sha256:
            raise IntegrityError(
                f"data file {record.path} has sha256 {actual}, but the catalog recorded "
                f"{record.sha256}", path=path, expected=record.sha256, actual=actual, where=where,
                fix="the file was modified after the version was committed: restore it from a "
                    "backup, or re-run the recipe to make a new version")


def _dataset(fs: pafs.FileSystem, root: str, records: Sequence[FileRecord],
             where: str) -> ds.Dataset:
    if not records:  # a version whose every row was quarantined
        return ds.dataset(pa.table({}))
    paths = [uri_mod.join(root, r.path) for r in records]
    # the hive key the version was written with (recipe output.partition_by): date, month, year
    keys = sorted({r.partition.split("=", 1)[0] for r in records if "=" in r.partition})
    hive = len(keys) == 1 and keys[0] in ("date", "month", "year")
    partitioning = None
    if hive:
        partitioning = PARTITIONING if keys == ["date"] else ds.partitioning(
            pa.schema([(keys[0], pa.string())]), flavor="hive")
    try:
        return ds.dataset(paths, format="parquet", filesystem=fs,
                          partitioning=partitioning,
                          partition_base_dir=uri_mod.join(root, "data") if hive else None)
    except (OSError, pa.ArrowInvalid) as err:
        raise IntegrityError(f"cannot open the version's data files ({err})", path=root,
                             where=where, fix="check that the version folder is complete; "
                             "open_dataset(..., verify=True) names the first bad file") from err


# --- splits, columns, filter -----------------------------------------------------------------
def _split_names(dataset: ds.Dataset, version_uri: str) -> list[str]:
    """The split names the manifest declares, else those found in the data."""
    try:
        declared = Manifest.read(version_uri).split_fractions
    except ManifestError:
        declared = {}  # no readable manifest: the split names are read from the data
    if declared:
        return sorted(declared)
    # no manifest entry: one pass over the (dictionary-encoded, int8) split column
    column = dataset.to_table(columns=[SPLIT_COLUMN]).column(SPLIT_COLUMN)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return sorted(v for v in column.unique().to_pylist() if v is not None)


def _select_split(dataset: ds.Dataset, split: str, names: Sequence[str], where: str) -> ds.Dataset:
    if SPLIT_COLUMN not in dataset.schema.names:
        raise NoSplitsError(f"the version has no {SPLIT_COLUMN!r} column, so split={split!r} "
                            f"cannot be selected", where=where,
                            fix="add a `splits:` section to the recipe and run it again, or "
                                "call open_dataset without split=")
    if split not in names:
        raise NoSplitsError(f"unknown split {split!r}; this version has {', '.join(names)}",
                            where=where, fix=f"pass one of {', '.join(names)}")
    return dataset.filter(ds.field(SPLIT_COLUMN) == split)


def _project(dataset: ds.Dataset, columns: Sequence[str], keep: Sequence[str],
             where: str) -> ds.Dataset:
    """Restrict the dataset's schema to ``columns`` (plus ``keep``, which filters need)."""
    missing = [c for c in columns if c not in dataset.schema.names]
    if missing:
        raise QueryError(f"columns {missing} are not in the version (columns: "
                           f"{', '.join(dataset.schema.names)})", where=where,
                           fix="pass column names from the version's schema")
    wanted = set(columns) | set(keep)
    return dataset.replace_schema(pa.schema([f for f in dataset.schema if f.name in wanted]))


def _check_filter(dataset: ds.Dataset, where: str) -> ds.Dataset:
    try:
        dataset.scanner()  # binds the filter to the schema; reads no data
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as err:
        raise QueryError(f"the filter does not apply to the version's columns ({err})",
                           where=where, fix="refer only to columns of the version (and list "
                           "them in columns= when you pass columns=)") from err
    return dataset


# --- the API ---------------------------------------------------------------------------------
def open_dataset(name: str, version: str = "latest", *, split: str | None = None,
                 columns: Sequence[str] | None = None, filter: ds.Expression | None = None,
                 warehouse: str | os.PathLike | None = None, catalog: Catalog | str | None = None,
                 verify: bool = False, allow_yanked: bool = False) -> ds.Dataset:
    """A ``pyarrow.dataset.Dataset`` over exactly the data files of ``name@version``.

    ``split`` keeps the rows of one split; ``filter`` (a ``pyarrow.dataset`` expression, e.g.
    ``ds.field("date") >= "2025-07-02"``, which prunes partitions) keeps matching rows; both
    are applied lazily with ``Dataset.filter``, and ``to_table(columns=..., filter=...)`` on
    the result narrows further. ``columns`` restricts the dataset's schema; the ``split``
    column stays in it when ``split`` is given. ``verify`` recomputes every file's SHA-256
    first (a full read). Versions resolve as described in the module docstring.

    pyarrow refuses ``get_fragments()`` on a filtered or projected dataset: to shard by file
    (one fragment per worker), open without ``split``/``columns``/``filter`` and pass the
    expression to each fragment's scanner, e.g. ``ds.field("split") == "train"``.
    """
    cat, root, owned = connect(warehouse, catalog)
    try:
        record = resolve_version(cat, name, version, allow_yanked=allow_yanked)
        records = data_records(cat, record)
    finally:
        if owned:
            cat.close()
    where = f"{name}@{record.version_id}"
    version_uri = _version_root(record, root)
    fs, version_root = _filesystem(version_uri)
    if verify:
        verify_files(version_uri, records, where)
    dataset = _dataset(fs, version_root, records, where)
    if split is not None:
        names = _split_names(dataset, version_uri) \
            if SPLIT_COLUMN in dataset.schema.names else []
        dataset = _select_split(dataset, split, names, where)
    if columns is not None:
        dataset = _project(dataset, columns, [SPLIT_COLUMN] if split is not None else [], where)
    if filter is not None:
        dataset = _check_filter(dataset.filter(filter), where)
    return dataset


def to_pandas(name: str, version: str = "latest", **kwargs: Any):
    """``open_dataset(...).to_table().to_pandas()`` (same keyword arguments)."""
    return open_dataset(name, version, **kwargs).to_table().to_pandas()


def iter_batches(name: str, version: str = "latest", batch_size: int = 65_536,
                 **kwargs: Any) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``batch_size`` rows, streamed (for training loops)."""
    if batch_size <= 0:
        raise QueryError(f"batch_size must be positive, got {batch_size}",
                           where="iter_batches", fix="pass e.g. batch_size=65536")
    # opened here, not in the generator, so a bad name or version fails at the call
    return _batches(open_dataset(name, version, **kwargs), batch_size)


def _batches(dataset: ds.Dataset, batch_size: int) -> Iterator[pa.RecordBatch]:
    for batch in dataset.to_batches(batch_size=batch_size):
        if batch.num_rows:  # the scanner yields empty batches for fully filtered row groups
            yield batch


__all__ = [
    "DeprecatedVersionWarning", "IntegrityError", "NoSplitsError", "QueryError",
    "UnreleasedVersionWarning",
    "VersionYankedError", "YankedVersionWarning", "connect", "data_files",
    "data_records", "iter_batches", "open_dataset", "resolve_version", "to_pandas",
    "verify_files",
]
