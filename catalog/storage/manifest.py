"""``manifest.json``: makes a version folder self-describing without the catalog database.

The manifest is canonical JSON (sorted keys, UTF-8, two-space indent, trailing newline), so the
same version always serialises to the same bytes and its SHA-256, stored in the catalog's version
row, identifies it. It cannot contain its own checksum: ``version.manifest_sha256`` is left out.

:class:`Manifest` is the one reader: :meth:`Manifest.read` (a version folder) or
:meth:`Manifest.from_json` (parsed JSON) give frozen, typed sections — dataset, version, run,
row counts, schema columns, files, sources — checked once here, so that readers use attributes
instead of string keys and ``.get`` defaults. :meth:`Manifest.to_json` gives back exactly the
JSON it was read from: every record keeps the keys it does not know (``extras``) and remembers
the known keys an older manifest lacked (``absent``), so an old warehouse re-serialises to its
own bytes and its checksum still holds. ``extra`` (row accounting, validation, attributions,
incremental, splits) stays open JSON, written by the pipeline; typed accessors read it.
"""
from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow as pa

from catalog.exceptions import ManifestError
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.store import DatasetRecord, FileRecord, RunRecord, SourceRecord, VersionRecord

MANIFEST_NAME = "manifest.json"
#: bumped when the manifest's layout changes incompatibly
MANIFEST_FORMAT = 1
#: partition of quarantined rows: listed with the version's files, never part of its data
QUARANTINE_PARTITION = "quarantine"

T = TypeVar("T")
_JSON = Mapping[str, Any]


# --- reading one JSON object into typed fields ------------------------------------------------
class _Fields:
    """The keys of one JSON object, read with their types checked; remembers what was missing.

    ``get`` of a missing key returns its default and records the key as absent; a present key
    of the wrong type is a :class:`ManifestError` naming the key path, the value and the fix.
    """

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise ManifestError(f"{where} is {data!r}, not a JSON object", where=MANIFEST_NAME,
                                fix="restore the manifest, or re-run the recipe")
        self.data, self.where = data, where
        self.known: set[str] = set()
        self.absent: set[str] = set()

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = None, *,
            required: bool = False) -> Any:
        self.known.add(key)
        if key not in self.data:
            if required:
                raise ManifestError(f"{self.where} has no {key!r}", where=MANIFEST_NAME,
                                    fix="restore the manifest, or re-run the recipe")
            self.absent.add(key)
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if value is not None and (wrong_bool or not isinstance(value, kinds)):
            names = " or ".join(k.__name__ for k in kinds)
            raise ManifestError(f"{self.where}.{key} is {value!r}, not {names}",
                                where=MANIFEST_NAME, fix="restore the manifest, or re-run "
                                "the recipe")
        return value

    def extras(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in self.known}


def _emit(values: Mapping[str, Any], extras: Mapping[str, Any],
          absent: Iterable[str]) -> dict[str, Any]:
    """A record's JSON: its known keys (less those the manifest it came from lacked), plus the
    keys it did not know."""
    skipped = set(absent)
    return {**extras, **{k: v for k, v in values.items() if k not in skipped}}


def _extras() -> Any:
    return dataclasses.field(default_factory=dict, compare=False, repr=False)


def _absent() -> Any:
    return dataclasses.field(default=frozenset(), compare=False, repr=False)


def _relative(path: str, where: str) -> str:
    """A file's path, which must stay inside the version folder (see catalog.storage.uri)."""
    try:
        uri_mod.join("", path)
    except uri_mod.UnsafePathError as err:
        raise ManifestError(f"{where} {err.reason}", where=MANIFEST_NAME,
                            fix="list files by their path relative to the version folder; "
                                "restore the manifest, or re-run the recipe") from err
    return path


# --- sections -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Owner:
    name: str | None = None
    email: str | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def from_json(cls, data: Any, where: str = "dataset.owner") -> Owner:
        f = _Fields(data, where)
        return cls(f.get("name", str), f.get("email", str), f.extras(), frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"name": self.name, "email": self.email}, self.extras, self.absent)


@dataclasses.dataclass(frozen=True)
class DatasetSection:
    """Who publishes the dataset and under which terms (the recipe's dataset keys)."""

    name: str
    title: str | None = None
    description: str | None = None
    licence: str | None = None
    attribution: str | None = None
    classification: str | None = None
    owner: Owner | None = None
    #: the recipe's ``coverage`` (time, bbox, depth), as JSON
    coverage: Mapping[str, Any] | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def from_json(cls, data: Any, where: str = "dataset") -> DatasetSection:
        f = _Fields(data, where)
        owner = f.get("owner", Mapping)
        return cls(f.get("name", str, required=True), f.get("title", str),
                   f.get("description", str), f.get("licence", str), f.get("attribution", str),
                   f.get("classification", str),
                   Owner.from_json(owner) if owner is not None else None,
                   f.get("coverage", Mapping), f.extras(), frozenset(f.absent))

    @classmethod
    def of(cls, info: Mapping[str, Any] | DatasetRecord) -> DatasetSection:
        """From the recipe's dataset mapping, or from the catalog's dataset record."""
        if isinstance(info, DatasetRecord):
            # the catalog's record has no coverage: the manifest has never carried the key
            return cls(info.name, info.title, info.description, info.licence, info.attribution,
                       info.classification, Owner(info.owner_name, info.owner_email),
                       absent=frozenset({"coverage"}))
        return cls.from_json(info)

    def to_json(self) -> dict[str, Any]:
        return _emit({"name": self.name, "title": self.title, "description": self.description,
                      "licence": self.licence, "attribution": self.attribution,
                      "classification": self.classification,
                      "owner": self.owner.to_json() if self.owner is not None else None,
                      "coverage": self.coverage}, self.extras, self.absent)


@dataclasses.dataclass(frozen=True)
class VersionSection:
    id: str
    created_at: str | None = None
    state: str | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def from_json(cls, data: Any, where: str = "version") -> VersionSection:
        f = _Fields(data, where)
        return cls(f.get("id", str, required=True), f.get("created_at", str),
                   f.get("state", str), f.extras(), frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"id": self.id, "created_at": self.created_at, "state": self.state},
                     self.extras, self.absent)


@dataclasses.dataclass(frozen=True)
class RunSection:
    id: str | None = None
    recipe_path: str | None = None
    recipe_sha256: str | None = None
    code_version: str | None = None
    runner: str | None = None
    #: the run's parameters (recipe settings, Beam arguments), as JSON
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    started_at: str | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def from_json(cls, data: Any, where: str = "run") -> RunSection:
        f = _Fields(data, where)
        return cls(f.get("id", str), f.get("recipe_path", str), f.get("recipe_sha256", str),
                   f.get("code_version", str), f.get("runner", str),
                   f.get("parameters", Mapping, {}) or {}, f.get("started_at", str),
                   f.extras(), frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"id": self.id, "recipe_path": self.recipe_path,
                      "recipe_sha256": self.recipe_sha256, "code_version": self.code_version,
                      "runner": self.runner, "parameters": dict(self.parameters),
                      "started_at": self.started_at}, self.extras, self.absent)


@dataclasses.dataclass(frozen=True)
class RowCounts:
    """The run's row accounting; ``written`` counts the data files' rows (not quarantine)."""

    read: int | None = None  # JSON "in"
    out: int | None = None
    dropped: int | None = None
    rejected: int | None = None
    written: int | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def from_json(cls, data: Any, where: str = "rows") -> RowCounts:
        f = _Fields(data, where)
        return cls(f.get("in", int), f.get("out", int), f.get("dropped", int),
                   f.get("rejected", int), f.get("written", int), f.extras(),
                   frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"in": self.read, "out": self.out, "dropped": self.dropped,
                      "rejected": self.rejected, "written": self.written},
                     self.extras, self.absent)


@dataclasses.dataclass(frozen=True)
class ColumnEntry:
    """One column of the dataset: Arrow type as ``str(pa.DataType)``, field metadata."""

    name: str
    type: str | None = None
    nullable: bool | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def of_field(cls, field: pa.Field) -> ColumnEntry:
        return cls(field.name, str(field.type), field.nullable,
                   {k.decode(): v.decode() for k, v in (field.metadata or {}).items()})

    @classmethod
    def from_json(cls, data: Any, where: str = "schema[]") -> ColumnEntry:
        f = _Fields(data, where)
        return cls(f.get("name", str, required=True), f.get("type", str),
                   f.get("nullable", bool), f.get("metadata", Mapping, {}) or {}, f.extras(),
                   frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"name": self.name, "type": self.type, "nullable": self.nullable,
                      "metadata": dict(self.metadata)}, self.extras, self.absent)

    @property
    def role(self) -> str | None:
        """``haina.role`` of the column (coordinate, variable, qc, id, ...), if recorded."""
        return self.metadata.get("haina.role")

    @property
    def units(self) -> str | None:
        return self.metadata.get("haina.units")


@dataclasses.dataclass(frozen=True)
class FileEntry:
    """One data or quarantine file, by its path relative to the version folder."""

    path: str
    sha256: str | None = None
    rows: int | None = None
    bytes: int | None = None
    partition: str | None = None
    source_sha256: str | None = None
    time_min: str | None = None
    time_max: str | None = None
    #: sha256 of the row groups only (absent from manifests written before it existed)
    content_sha256: str | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def of(cls, f: FileRecord) -> FileEntry:
        return cls(f.path, f.sha256, f.rows, f.bytes, f.partition, f.source_sha256,
                   _iso(f.time_min), _iso(f.time_max), f.content_sha256)

    @classmethod
    def from_json(cls, data: Any, where: str = "files[]") -> FileEntry:
        f = _Fields(data, where)
        return cls(_relative(f.get("path", str, required=True), f"{where}.path"),
                   f.get("sha256", str), f.get("rows", int),
                   f.get("bytes", int), f.get("partition", str), f.get("source_sha256", str),
                   f.get("time_min", str), f.get("time_max", str),
                   f.get("content_sha256", str), f.extras(), frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"path": self.path, "sha256": self.sha256, "rows": self.rows,
                      "bytes": self.bytes, "partition": self.partition,
                      "source_sha256": self.source_sha256, "time_min": self.time_min,
                      "time_max": self.time_max, "content_sha256": self.content_sha256},
                     self.extras, self.absent)

    @property
    def is_quarantine(self) -> bool:
        return self.partition == QUARANTINE_PARTITION


@dataclasses.dataclass(frozen=True)
class SourceEntry:
    """One source file a run read: ``run_id`` names the run (an incremental version lists the
    sources of the runs it carried files from), ``source_index`` the recipe's ``sources[]``."""

    uri: str
    sha256: str | None = None
    size: int | None = None
    kind: str | None = None
    run_id: str | None = None
    #: absent from manifests written before sources were keyed by entry (read as 0)
    source_index: int | None = None
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    @classmethod
    def of(cls, s: SourceRecord) -> SourceEntry:
        return cls(s.uri, s.sha256, s.size, s.kind, s.run_id, s.source_index)

    @classmethod
    def from_json(cls, data: Any, where: str = "sources[]") -> SourceEntry:
        f = _Fields(data, where)
        return cls(f.get("uri", str, required=True), f.get("sha256", str), f.get("size", int),
                   f.get("kind", str), f.get("run_id", str), f.get("source_index", int),
                   f.extras(), frozenset(f.absent))

    def to_json(self) -> dict[str, Any]:
        return _emit({"uri": self.uri, "sha256": self.sha256, "size": self.size,
                      "kind": self.kind, "run_id": self.run_id,
                      "source_index": self.source_index}, self.extras, self.absent)

    @property
    def index(self) -> int:
        """The recipe entry that read the file (0 for manifests written before entries)."""
        return self.source_index or 0


# --- the manifest -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Manifest:
    """A version's ``manifest.json``, typed. Build with :meth:`build`, read with :meth:`read`."""

    dataset: DatasetSection
    version: VersionSection
    run: RunSection
    rows: RowCounts | None = None
    #: total bytes of the data files (quarantine excluded)
    bytes: int | None = None
    schema: tuple[ColumnEntry, ...] = ()
    files: tuple[FileEntry, ...] = ()
    sources: tuple[SourceEntry, ...] = ()
    #: what the pipeline adds (row_accounting, validation, attributions, incremental, splits)
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    manifest_format: int | None = MANIFEST_FORMAT
    extras: Mapping[str, Any] = _extras()
    absent: frozenset[str] = _absent()

    # -- building and writing ----------------------------------------------------------------
    @classmethod
    def build(cls, dataset_info: Mapping[str, Any] | DatasetRecord, version: VersionRecord,
              run: RunRecord, files: Sequence[FileRecord], sources: Sequence[SourceRecord],
              schema: pa.Schema, extra: Mapping[str, Any]) -> Manifest:
        """The manifest of one version (files sorted by path, sources by URI and entry)."""
        dataset = DatasetSection.of(dataset_info)
        if dataset.name != version.dataset:
            raise ManifestError(
                f"dataset_info names {dataset.name!r} but the version belongs to "
                f"{version.dataset!r}", where=f"version {version.version_id}",
                fix="pass the dataset section of the recipe the run executed")
        data = [f for f in files if f.partition != QUARANTINE_PARTITION]
        return cls(
            dataset=dataset,
            version=VersionSection(version.version_id, _iso(version.created_at), version.state),
            run=RunSection(run.run_id, run.recipe_path, run.recipe_sha256, run.code_version,
                           run.runner, dict(run.parameters), _iso(run.started_at)),
            rows=RowCounts(run.rows_in, run.rows_out, run.rows_dropped, run.rows_rejected,
                           sum(f.rows for f in data)),
            bytes=sum(f.bytes for f in data),
            schema=schema_columns(schema),
            files=tuple(FileEntry.of(f) for f in sorted(files, key=lambda f: f.path)),
            sources=tuple(SourceEntry.of(s) for s in sorted(
                sources, key=lambda s: (s.uri, s.source_index))),
            extra=dict(extra))

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict: what :meth:`from_json` was given, or what a build writes."""
        return _emit({
            "manifest_format": self.manifest_format,
            "dataset": self.dataset.to_json(),
            "version": self.version.to_json(),
            "run": self.run.to_json(),
            "rows": self.rows.to_json() if self.rows is not None else None,
            "bytes": self.bytes,
            "schema": [c.to_json() for c in self.schema],
            "files": [f.to_json() for f in self.files],
            "sources": [s.to_json() for s in self.sources],
            "extra": dict(self.extra),
        }, self.extras, self.absent)

    def canonical_bytes(self) -> builtins.bytes:  # the field ``bytes`` shadows the type
        """The bytes written to ``manifest.json`` (see the module docstring)."""
        return canonical_bytes(self.to_json())

    def write(self, version_dir: str) -> tuple[str, str]:
        """Write ``manifest.json`` into ``version_dir``; return its URI and SHA-256."""
        return write_manifest(self.to_json(), version_dir)

    # -- reading -------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Check and type a parsed manifest; a wrong type or missing key is a ManifestError."""
        f = _Fields(data, "manifest")
        rows = f.get("rows", Mapping)
        return cls(
            manifest_format=f.get("manifest_format", int),
            dataset=DatasetSection.from_json(f.get("dataset", Mapping, required=True)),
            version=VersionSection.from_json(f.get("version", Mapping, required=True)),
            run=RunSection.from_json(f.get("run", Mapping, {}) or {}),
            rows=RowCounts.from_json(rows) if rows is not None else None,
            bytes=f.get("bytes", int),
            schema=tuple(ColumnEntry.from_json(c, f"schema[{i}]")
                         for i, c in enumerate(f.get("schema", list, []) or [])),
            files=tuple(FileEntry.from_json(e, f"files[{i}]")
                        for i, e in enumerate(f.get("files", list, []) or [])),
            sources=tuple(SourceEntry.from_json(s, f"sources[{i}]")
                          for i, s in enumerate(f.get("sources", list, []) or [])),
            extra=f.get("extra", Mapping, {}) or {},
            extras=f.extras(), absent=frozenset(f.absent))

    @classmethod
    def from_bytes(cls, data: builtins.bytes, *, where: str = MANIFEST_NAME) -> Manifest:
        """Parse the bytes of a ``manifest.json``."""
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ManifestError(f"manifest is not UTF-8 JSON ({err})", where=where,
                                fix="restore the file, or re-run the recipe") from err
        return cls.from_json(parsed)

    @classmethod
    def read(cls, version_dir: str, *, expected_sha256: str | None = None) -> Manifest:
        """Read a version's manifest; with ``expected_sha256`` (from the catalog) verify it."""
        return cls.from_bytes(read_bytes(version_dir, expected_sha256=expected_sha256),
                              where=uri_mod.join(version_dir, MANIFEST_NAME))

    # -- what readers ask ----------------------------------------------------------------------
    @property
    def data_files(self) -> tuple[FileEntry, ...]:
        """The data files (quarantined rows are not part of the dataset)."""
        return tuple(f for f in self.files if not f.is_quarantine)

    @property
    def quarantine_files(self) -> tuple[FileEntry, ...]:
        return tuple(f for f in self.files if f.is_quarantine)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)

    @property
    def carried_files(self) -> dict[str, str]:
        """Paths of files an incremental run linked from an earlier version -> that version
        (``extra.incremental.carried_files``, or ``extra.carried_files`` of older manifests)."""
        incremental = self.extra.get("incremental") or {}
        return dict(incremental.get("carried_files") or self.extra.get("carried_files") or {})

    @property
    def attributions(self) -> list[str]:
        return list(self.extra.get("attributions") or [])

    @property
    def row_accounting(self) -> dict[str, Any]:
        return dict(self.extra.get("row_accounting") or {})

    @property
    def validation(self) -> list[Any]:
        """The suites' digests (``extra.validation``) as the pipeline recorded them."""
        found = self.extra.get("validation") or []
        return list(found) if isinstance(found, list) else [found]

    @property
    def split_fractions(self) -> dict[str, float]:
        """Split name -> requested fraction (``extra.splits.fractions``); {} without splits."""
        return dict((self.extra.get("splits") or {}).get("fractions") or {})


# --- building blocks (also used by lineage and the pipeline) -----------------------------------
def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def schema_columns(schema: pa.Schema) -> tuple[ColumnEntry, ...]:
    """Columns in order, with their Arrow type, nullability and field metadata."""
    return tuple(ColumnEntry.of_field(f) for f in schema)


def schema_section(schema: pa.Schema) -> list[dict[str, Any]]:
    """:func:`schema_columns` as JSON (the manifest's ``schema`` list)."""
    return [c.to_json() for c in schema_columns(schema)]


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON serialisable")


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Sorted keys, UTF-8 (no ``\\u`` escapes), two-space indent, strict JSON, final newline."""
    try:
        text = json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=2,
                          allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as err:
        raise ManifestError(f"manifest is not serialisable as JSON ({err})", where=MANIFEST_NAME,
                            fix="keep 'extra' to str/int/float/bool/list/dict values, without "
                                "NaN or infinity") from err
    return (text + "\n").encode("utf-8")


def write_manifest(manifest: Mapping[str, Any], version_dir: str) -> tuple[str, str]:
    """Write ``manifest.json`` (a JSON-ready dict) into ``version_dir``; return URI and SHA-256."""
    # Beam is imported here, not at the top: readers of manifests (open_dataset, the CLI's
    # read-only commands) must not pay the second Beam's import takes (see catalog.read)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    data = canonical_bytes(manifest)
    uri = uri_mod.join(version_dir, MANIFEST_NAME)
    try:
        with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(data)
    except OSError as err:
        raise ManifestError(f"could not write the manifest ({err})", where=uri,
                            fix="check that the folder is writable") from err
    return uri, hashlib.sha256(data).hexdigest()


def read_bytes(version_dir: str, *, expected_sha256: str | None = None) -> bytes:
    """The bytes of a version's manifest; with ``expected_sha256`` also verified."""
    uri = uri_mod.join(version_dir, MANIFEST_NAME)
    try:
        data = files_mod.read_bytes(uri)
    except OSError as err:
        raise ManifestError(f"no readable manifest ({err})", where=uri,
                            fix="check the version folder path; a version folder without "
                                "a manifest is an unfinished publish that gc removes") from err
    actual = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and actual != expected_sha256:
        raise ManifestError(
            f"manifest sha256 {actual} differs from the catalog's {expected_sha256}", where=uri,
            fix="the folder was modified after publishing; restore it or re-run the recipe")
    return data
