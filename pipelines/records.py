"""What a run commits besides its files: the catalog records and the manifest's run sections.

Pure functions from the recipe, the plan, the incremental delta and the pipeline's outputs to
JSON-able dicts and :mod:`catalog.store` records; the driver writes them.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from catalog import store as store_mod
from catalog.jsonable import jsonable
from catalog.storage import uri as uri_mod
from pipelines import incremental
from pipelines import splits as splits_mod
from pipelines.incremental import Delta
from pipelines.plan import EntryPlan
from pipelines.recipe import Recipe

#: a written (or carried) file as the pipeline's files.json lists it
FileEntry = Mapping[str, Any]


def dataset_info(recipe: Recipe) -> dict[str, Any]:
    """The manifest's (and lineage's) dataset section, from the recipe."""
    return {"name": recipe.name, "title": recipe.title, "description": recipe.description,
            "licence": recipe.licence, "owner": recipe.owner.model_dump(),
            "attribution": recipe.attribution, "classification": recipe.classification,
            "coverage": recipe.coverage.model_dump(mode="json")}


def dataset_record(recipe: Recipe) -> store_mod.DatasetRecord:
    """The catalog's record of the dataset a recipe writes."""
    return store_mod.DatasetRecord(
        name=recipe.name, title=recipe.title, description=recipe.description,
        licence=recipe.licence, owner_name=recipe.owner.name, owner_email=recipe.owner.email,
        attribution=recipe.attribution, classification=recipe.classification,
        created_at=None,
    )


def attributions(recipe: Recipe, entries: Sequence[EntryPlan]) -> list[str]:
    """The recipe's attribution and each read source's, once each, in order."""
    found = [recipe.attribution] if recipe.attribution else []
    for index, _plan in entries:
        text = recipe.sources[index].attribution
        if text and text not in found:
            found.append(text)
    return found


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def file_records(files: Sequence[FileEntry]) -> list[store_mod.FileRecord]:
    """The catalog's records of the version's files, in path order."""
    return [store_mod.FileRecord(
        path=f["path"], sha256=f["sha256"], rows=f["rows"], bytes=f["bytes"],
        partition=f["partition"], source_sha256=f["source_sha256"],
        time_min=_parse_time(f["time_min"]), time_max=_parse_time(f["time_max"]),
        content_sha256=f.get("content_sha256"),
    ) for f in sorted(files, key=lambda f: f["path"])]


def carried_source_records(delta: Delta) -> list[store_mod.SourceRecord]:
    """The sources whose files a run carries over, as the previous manifest recorded them."""
    return [store_mod.SourceRecord(run_id=s.run_id or "", uri=s.uri,
                                   # a manifest's source entries always carry these three
                                   sha256=s.sha256 or "", size=s.size or 0, kind=s.kind or "",
                                   source_index=s.index)
            for s in delta.carried_sources]


def splits_section(recipe: Recipe, version_dir: str,
                   data_files: Sequence[store_mod.FileRecord]) -> dict[str, Any]:
    """The manifest's ``splits`` entry: seed, target and achieved fractions (rows per split are
    counted from the written files' ``split`` column alone, carried files included)."""
    if recipe.splits is None:
        return {}
    counts = splits_mod.count_splits_in_files([uri_mod.join(version_dir, f.path)
                                               for f in data_files])
    return {"splits": splits_mod.manifest_entry(recipe.splits, counts)}


def incremental_section(delta: Delta, files: Sequence[FileEntry]) -> dict[str, Any]:
    """The manifest's ``incremental`` entry: what was read again and what was carried."""
    return {
        "previous_version": delta.previous_version, "full_reason": delta.full_reason,
        "new_sources": list(delta.new), "changed_sources": list(delta.changed),
        "unchanged_sources": list(delta.unchanged), "removed_sources": list(delta.removed),
        "carried_files": {f["path"]: f["carried_from"] for f in files if f.get("carried_from")},
    }


def previous_schema(version: store_mod.VersionRecord, delta: Delta) -> pa.Schema | None:
    """The schema of the files a run carries over, read from one of them (their footer)."""
    data = [f for f in delta.reuse if f.partition != incremental.QUARANTINE]
    if not data:
        return None
    schema = pq.read_schema(FileSystems.open(uri_mod.join(version.path, data[0].path)))
    return schema.remove_metadata()


def suite_digest(result: Mapping[str, Any]) -> dict[str, Any]:
    """A short, JSON-able account of one suite's result (GE's JSON) for the manifest."""
    stats = result.get("statistics") or {}
    unexpected = []
    for item in result["results"]:
        counts = item.get("result") or {}
        if counts.get("unexpected_count"):
            config = item["expectation_config"]
            unexpected.append({
                "expectation": config["type"],
                "column": (config.get("kwargs") or {}).get("column"),
                "unexpected_count": counts["unexpected_count"],
                "element_count": counts.get("element_count"),
                # "inf", "-inf", "nan" as text: the manifest is strict JSON (RFC 8259)
                "partial_unexpected_list": [jsonable(v, non_finite="text") for v in
                                            counts.get("partial_unexpected_list", [])[:5]],
            })
    return {"suite": result["suite_name"], "success": bool(result["success"]),
            "evaluated": stats.get("evaluated_expectations"),
            "successful": stats.get("successful_expectations"),
            "unexpected": unexpected}
