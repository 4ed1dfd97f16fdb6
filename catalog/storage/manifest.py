"""``manifest.json``: makes a version folder self-describing without the catalog database.

The manifest is canonical JSON (sorted keys, UTF-8, two-space indent, trailing newline), so the
same version always serialises to the same bytes and its SHA-256, stored in the catalog's version
row, identifies it. It cannot contain its own checksum: ``version.manifest_sha256`` is left out.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from catalog.exceptions import ManifestError
from catalog.store import DatasetRecord, FileRecord, RunRecord, SourceRecord, VersionRecord

MANIFEST_NAME = "manifest.json"
#: bumped when the manifest's layout changes incompatibly
MANIFEST_FORMAT = 1


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _dataset_section(dataset_info: Mapping[str, Any] | DatasetRecord) -> dict[str, Any]:
    if isinstance(dataset_info, DatasetRecord):
        d = dataclasses.asdict(dataset_info)
        return {"name": d["name"], "title": d["title"], "description": d["description"],
                "licence": d["licence"], "attribution": d["attribution"],
                "classification": d["classification"],
                "owner": {"name": d["owner_name"], "email": d["owner_email"]}}
    return dict(dataset_info)


def schema_section(schema: pa.Schema) -> list[dict[str, Any]]:
    """Columns in order, with their Arrow type, nullability and field metadata."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable,
             "metadata": {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}}
            for f in schema]


def _file_entry(f: FileRecord) -> dict[str, Any]:
    return {"path": f.path, "sha256": f.sha256, "rows": f.rows, "bytes": f.bytes,
            "partition": f.partition, "source_sha256": f.source_sha256,
            "time_min": _iso(f.time_min), "time_max": _iso(f.time_max),
            "content_sha256": f.content_sha256}


def build_manifest(dataset_info: Mapping[str, Any] | DatasetRecord, version: VersionRecord,
                   run: RunRecord, files: Sequence[FileRecord], sources: Sequence[SourceRecord],
                   schema: pa.Schema, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest of one version, as a JSON-ready dict (files by path, sources by URI)."""
    dataset = _dataset_section(dataset_info)
    if dataset.get("name") != version.dataset:
        raise ManifestError(
            f"dataset_info names {dataset.get('name')!r} but the version belongs to "
            f"{version.dataset!r}", where=f"version {version.version_id}",
            fix="pass the dataset section of the recipe the run executed")
    return {
        "manifest_format": MANIFEST_FORMAT,
        "dataset": dataset,
        "version": {"id": version.version_id, "created_at": _iso(version.created_at),
                    "state": version.state},
        "run": {"id": run.run_id, "recipe_path": run.recipe_path,
                "recipe_sha256": run.recipe_sha256, "code_version": run.code_version,
                "runner": run.runner, "parameters": dict(run.parameters),
                "started_at": _iso(run.started_at)},
        "rows": {"in": run.rows_in, "out": run.rows_out, "dropped": run.rows_dropped,
                 "rejected": run.rows_rejected,
                 "written": sum(f.rows for f in files if f.partition != "quarantine")},
        "bytes": sum(f.bytes for f in files if f.partition != "quarantine"),
        "schema": schema_section(schema),
        "files": [_file_entry(f) for f in sorted(files, key=lambda f: f.path)],
        "sources": [{"uri": s.uri, "sha256": s.sha256, "size": s.size, "kind": s.kind,
                     "run_id": s.run_id, "source_index": s.source_index}
                    for s in sorted(sources, key=lambda s: (s.uri, s.source_index))],
        "extra": dict(extra),
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON serialisable")


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=2,
                          allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as err:
        raise ManifestError(f"manifest is not serialisable as JSON ({err})", where=MANIFEST_NAME,
                            fix="keep 'extra' to str/int/float/bool/list/dict values, without "
                                "NaN or infinity") from err
    return (text + "\n").encode("utf-8")


def _join(folder: str, name: str) -> str:
    return FileSystems.join(folder, name)


def write_manifest(manifest: Mapping[str, Any], version_dir: str) -> tuple[str, str]:
    """Write ``manifest.json`` into ``version_dir``; return its URI and SHA-256."""
    data = canonical_bytes(manifest)
    uri = _join(version_dir, MANIFEST_NAME)
    try:
        with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(data)
    except OSError as err:
        raise ManifestError(f"could not write the manifest ({err})", where=uri,
                            fix="check that the folder is writable") from err
    return uri, hashlib.sha256(data).hexdigest()


def read_manifest(version_dir: str, *, expected_sha256: str | None = None) -> dict[str, Any]:
    """Read a version's manifest; with ``expected_sha256`` (from the catalog) also verify it."""
    uri = _join(version_dir, MANIFEST_NAME)
    try:
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as src:
            data = src.read()
    except OSError as err:
        raise ManifestError(f"no readable manifest ({err})", where=uri,
                            fix="check the version folder path; a version folder without "
                                "a manifest is an unfinished publish that gc removes") from err
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ManifestError(
            f"manifest sha256 {hashlib.sha256(data).hexdigest()} differs from the catalog's "
            f"{expected_sha256}", where=uri,
            fix="the folder was modified after publishing; restore it or re-run the recipe")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ManifestError(f"manifest is not UTF-8 JSON ({err})", where=uri,
                            fix="restore the file, or re-run the recipe") from err
