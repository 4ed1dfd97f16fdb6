"""Croissant 1.1 JSON-LD of a version: how ML tools find, check and load a Haina dataset.

One ``cr:FileObject`` per data file carries its sha256 (Croissant's per-file checksum), and one
``cr:FileSet`` over ``data/`` feeds the ``records`` RecordSet, one ``cr:Field`` per column. A
Croissant field has a single source, and a version usually holds many Parquet files (one per
day), so the records must come from the FileSet, not from the FileObjects.

Paths are relative to the folder holding the JSON-LD: that is how ``mlcroissant`` resolves
local ``contentUrl`` values and FileSet ``includes`` (it walks the JSON-LD's folder), so the
document loads offline, and a copied version folder stays loadable. Write it inside the version
folder (``write_croissant``'s default); a FileSet cannot reach files outside its folder.

When a ``split`` column exists, a ``splits`` RecordSet of ``dataType: cr:Split`` lists its
values, mapped to ``cr:TrainingSplit``/``cr:ValidationSplit``/``cr:TestSplit`` where the name
says so, and the records' ``split`` field references it (spec 1.1, "ML-specific features >
Splits").
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from catalog.documents.card.stats import scan
from catalog.documents.exceptions import CroissantError
from catalog.documents.manifest_view import (
    attributions,
    data_files,
    licence_url,
    load_manifest,
    version_label,
)
from catalog.documents.output import ensure_dir, write_json
from catalog.storage import uri as uri_mod
from catalog.storage.manifest import ColumnEntry, Manifest, Owner

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
CROISSANT_NAME = "croissant.json"
PARQUET_MIME = "application/x-parquet"
RECORDS = "records"
SPLITS = "splits"
FILESET_ID = "parquet-files"
#: the JSON-LD context of the Croissant 1.1 specification (Appendix 1) with https://schema.org/,
#: as mlcroissant and the 1.1 example datasets use it (mlcroissant rejects http://schema.org/)
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "readLines": "cr:readLines",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}
#: split names -> the Croissant split class they mean
_SPLIT_CLASSES = (
    (re.compile(r"^(train|training)$", re.IGNORECASE), "cr:TrainingSplit"),
    (re.compile(r"^(val|valid|validation|dev)$", re.IGNORECASE), "cr:ValidationSplit"),
    (re.compile(r"^(test|testing|eval|evaluation)$", re.IGNORECASE), "cr:TestSplit"),
)



# --- small pure helpers ----------------------------------------------------------------------
def data_type(arrow_type: str) -> str:
    """Croissant dataType of an Arrow type as the manifest prints it (``str(pa.DataType)``).

    Sized numbers keep their width (``cr:Float32``, ``cr:Int8``...), as the 1.1 example
    datasets do, so a loader does not widen float32 measurements to float64.
    """
    t = arrow_type.strip()
    if t.startswith("dictionary<values="):
        t = t[len("dictionary<values="):].split(",", 1)[0]
    if t.startswith("timestamp"):
        return "sc:DateTime"
    if t.startswith("date"):
        return "sc:Date"
    if t.startswith("time"):
        return "sc:Time"
    if t in ("bool", "boolean"):
        return "sc:Boolean"
    sized = re.match(r"^(u?)int(8|16|32|64)$", t)
    if sized:
        return f"cr:{'UInt' if sized.group(1) else 'Int'}{sized.group(2)}"
    return {"halffloat": "cr:Float16", "float": "cr:Float32", "double": "cr:Float64"}.get(
        t, "sc:Float" if t.startswith("decimal") else "sc:Text")



def field_description(column: ColumnEntry) -> str:
    """What a column holds, in its canonical units, and where it came from."""
    meta = column.metadata
    name = meta.get("haina.long_name") or meta.get("haina.standard_name") or column.name
    parts = [name[:1].upper() + name[1:]]
    if meta.get("haina.units"):
        parts[0] += f" [{meta['haina.units']}]"
    if meta.get("haina.standard_name"):
        parts.append(f"CF standard_name {meta['haina.standard_name']}")
    if meta.get("haina.source_name"):
        src = meta["haina.source_name"]
        if meta.get("haina.source_units"):
            src += f" ({meta['haina.source_units']})"
        parts.append(f"from {src}")
    if meta.get("haina.conversion"):
        parts.append(f"conversion: {meta['haina.conversion']}")
    return "; ".join(parts) + "."


def split_class(name: str) -> str | None:
    for pattern, cls in _SPLIT_CLASSES:
        if pattern.match(str(name)):
            return cls
    return None


# --- document sections -----------------------------------------------------------------------
def _owner(manifest: Manifest) -> dict[str, Any]:
    owner = manifest.dataset.owner or Owner()
    node: dict[str, Any] = {"@type": "sc:Organization", "name": owner.name or "unknown"}
    if owner.email:
        node["email"] = owner.email
    return node


def _cite_as(manifest: Manifest, version: str) -> str:
    """A BibTeX @misc entry (the form the spec recommends for citeAs) carrying attributions."""
    ds = manifest.dataset
    year = (manifest.version.created_at or "")[:4]
    key = re.sub(r"[^A-Za-z0-9]+", "_", ds.name)
    lines = [f"@misc{{{key}_{re.sub(r'[^A-Za-z0-9]+', '_', version)},",
             f"  title = {{{ds.title or ds.name}}},",
             f"  author = {{{_owner(manifest)['name']}}},",
             f"  year = {{{year}}},", f"  version = {{{version}}},"]
    notes = attributions(manifest)
    if notes:
        lines.append(f"  note = {{{'. '.join(n.rstrip('.') for n in notes)}.}},")
    return "\n".join(lines) + "\n}"


def _relative(path: str, prefix: str) -> str:
    return posixpath.normpath(posixpath.join(prefix, path)) if prefix else path


def _distribution(manifest: Manifest, prefix: str) -> list[dict[str, Any]]:
    files = [{
        "@type": "cr:FileObject",
        "@id": f.path,
        "name": posixpath.basename(f.path),
        "contentUrl": _relative(f.path, prefix),
        "contentSize": f"{f.bytes} B",
        "encodingFormat": PARQUET_MIME,
        "sha256": f.sha256,
    } for f in data_files(manifest)]
    data_dir = _relative("data", prefix)
    # fnmatch-style globs: "*" also matches "/", so the first covers date=... sub-folders in
    # mlcroissant; the second is the conventional recursive form for other readers
    file_set = {"@type": "cr:FileSet", "@id": FILESET_ID, "name": FILESET_ID,
                "description": "Every Parquet data file of the version (quarantine excluded).",
                "encodingFormat": PARQUET_MIME,
                "includes": [f"{data_dir}/*.parquet", f"{data_dir}/**/*.parquet"]}
    return files + [file_set]


def _field(column: ColumnEntry, references_splits: bool) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@type": "cr:Field", "@id": f"{RECORDS}/{column.name}", "name": column.name,
        "description": field_description(column), "dataType": data_type(column.type or ""),
        "source": {"fileSet": {"@id": FILESET_ID}, "extract": {"column": column.name}},
    }
    if references_splits:
        node["references"] = {"field": {"@id": f"{SPLITS}/name"}}
    return node


def _splits_record_set(split_names: Sequence[str]) -> dict[str, Any]:
    data = []
    for name in split_names:
        row = {f"{SPLITS}/name": name}
        cls = split_class(name)
        if cls:
            row[f"{SPLITS}/url"] = cls
        data.append(row)
    return {
        "@type": "cr:RecordSet", "@id": SPLITS, "name": SPLITS, "dataType": "cr:Split",
        "description": "The values of the records' split column.",
        "key": {"@id": f"{SPLITS}/name"},
        "field": [
            {"@type": "cr:Field", "@id": f"{SPLITS}/name", "name": "name",
             "dataType": "sc:Text"},
            # the spec's example types this "cr:Split"; mlcroissant 1.1 only accepts atomic
            # types on a field, and the value is a URL of the split class
            {"@type": "cr:Field", "@id": f"{SPLITS}/url", "name": "url",
             "dataType": "sc:URL"},
        ],
        "data": data,
    }


def _record_sets(manifest: Manifest, split_names: Sequence[str] | None) -> list[dict]:
    columns = manifest.schema
    has_split = bool(split_names) and any(c.name == "split" for c in columns)
    written = manifest.rows.written if manifest.rows is not None else None
    records = {
        "@type": "cr:RecordSet", "@id": RECORDS, "name": RECORDS,
        "description": f"One row per observation ({written} rows).",
        "field": [_field(c, has_split and c.name == "split") for c in columns],
    }
    splits = [_splits_record_set(split_names)] if split_names and has_split else []
    return splits + [records]


def _coverage(manifest: Manifest, coverage: Mapping[str, Any] | None) -> dict[str, Any]:
    """schema.org temporalCoverage / spatialCoverage, which dataset search engines index."""
    out: dict[str, Any] = {}
    if not coverage:
        return out
    if coverage.get("time_min") and coverage.get("time_max"):
        out["temporalCoverage"] = f"{coverage['time_min']}/{coverage['time_max']}"
    bbox = coverage.get("bbox")
    if bbox:
        west, south, east, north = bbox
        out["spatialCoverage"] = {"@type": "sc:Place", "geo": {
            "@type": "sc:GeoShape", "box": f"{south} {west} {north} {east}"}}
    return out


def build_croissant(manifest: Manifest, *, prefix: str = "", release: str | None = None,
                    url: str | None = None, split_names: Sequence[str] | None = None,
                    coverage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Croissant 1.1 document of a version, as a JSON-ready dict.

    ``prefix``: the version folder relative to the JSON-LD's folder ("" when it sits inside);
    ``split_names``: distinct values of the ``split`` column, if any; ``coverage``: time range
    and ``bbox`` [west, south, east, north] (:meth:`catalog.documents.card.stats.CardStats.coverage_dict`).
    """
    ds = manifest.dataset
    version = version_label(manifest, release)
    licence = licence_url(ds.licence)
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": ds.name,
        "alternateName": ds.title or ds.name,
        "description": (ds.description or ds.title or ds.name).strip(),
        "license": licence or {"@type": "sc:CreativeWork", "name": ds.licence or
                               "unspecified"},
        "url": url or f"urn:haina:{ds.name}:{manifest.version.id}",
        "creator": _owner(manifest),
        "publisher": _owner(manifest),
        "version": version,
        "datePublished": manifest.version.created_at,
        "citeAs": _cite_as(manifest, version),
        "keywords": sorted({c.metadata.get("haina.standard_name")
                            for c in manifest.schema} - {None}),
        "distribution": _distribution(manifest, prefix),
        "recordSet": _record_sets(manifest, split_names),
    }
    notes = attributions(manifest)
    if notes:
        doc["creditText"] = " ".join(n.rstrip(".") + "." for n in notes)
    doc.update(_coverage(manifest, coverage))
    return doc


# --- writing ---------------------------------------------------------------------------------
def _prefix(version_dir: str, directory: str) -> str:
    """The version folder relative to ``directory``; it must be ``directory`` or below it."""
    rel = posixpath.relpath(version_dir.rstrip("/"), directory.rstrip("/")) \
        if uri_mod.scheme(version_dir) is not None else os.path.relpath(version_dir, directory)
    rel = rel.replace(os.sep, "/")
    if rel == ".":
        return ""
    if rel.startswith(".."):
        raise CroissantError(
            f"the version folder {version_dir} is outside {directory}; Croissant loaders only "
            f"find a FileSet's files under the JSON-LD's folder", where=directory,
            fix="write the Croissant file into the version folder (the default) or a folder "
                "that contains it")
    return rel


def write_croissant(catalog: Any, version: Any, directory: str | None = None, *,
                    release: str | None = None, url: str | None = None) -> str:
    """Write ``croissant.json`` for ``version`` (a VersionRecord) into ``directory``.

    ``directory`` defaults to the version folder. ``release`` is the semver of a release
    (None for a draft). Returns the file's path.
    """
    manifest = load_manifest(version)
    directory = directory or version.path
    prefix = _prefix(version.path, directory)
    stats = scan(manifest, version.path, max_points=0, bins=0)
    document = build_croissant(manifest, prefix=prefix, release=release, url=url,
                               split_names=sorted(stats.splits) if stats.splits else None,
                               coverage=stats.coverage_dict())
    ensure_dir(directory)
    return write_json(document, uri_mod.join(directory, CROISSANT_NAME), CroissantError)
