"""OpenLineage events of Haina runs: build them, keep each within a size, store, write, send.

A run emits RunEvents (START, then COMPLETE, FAIL or ABORT). Events are plain JSON-ready dicts
that follow the OpenLineage 2-0-2 spec; they are stored in the catalog
(:meth:`~catalog.store.Catalog.add_lineage_event`, in one transaction with an audit entry), written as JSON Lines beside the version
(``<version_dir>/lineage.jsonl``: START and COMPLETE) and, when a transport is configured, sent
through the OpenLineage Python client (HTTP/Marquez, file, console...).

The client is imported lazily: ``openlineage.client`` takes most of a second to import, and most
users of this module (the CLI's lineage queries) never send an event.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import posixpath
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from enum import Enum
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog.exceptions import CatalogError
from catalog.jsonable import jsonable
from catalog.releases import lifecycle
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.store import Catalog, LineageEventRecord, RunRecord, SourceRecord, VersionRecord

log = logging.getLogger(__name__)

OPENLINEAGE_SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
_OL = "https://openlineage.io/spec/facets/"
#: where Haina's own facet schemas live (``custom_facet_schemas()`` holds their text)
HAINA_REPO = "https://github.com/haina-ocean/haina"
HAINA_FACETS = f"{HAINA_REPO}/blob/main/spec/facets/1-0-0/"
LINEAGE_FILE = "lineage.jsonl"
DEFAULT_MAX_EVENT_BYTES = 2**20
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
#: fixed namespace of the uuid5 that turns a Haina run id into an OpenLineage runId
RUN_UUID_NAMESPACE = uuid.UUID("6f1c0d2e-5a8b-4b7e-9c1e-4861696e6121")

#: source kind -> file format named in the storage facet
FILE_FORMATS = {
    "netcdf_grid": "netcdf", "netcdf_dsg": "netcdf", "argo": "netcdf", "ndbc_text": "text",
    "erddap_csv": "csv", "coops_json": "json", "delimited": "csv", "ais_nmea": "nmea",
    "ais_csv": "csv", "port_table": "csv",
}

#: OpenLineage facet key -> schema URL of the spec version Haina emits
_SPEC_FACETS = {
    "nominalTime": "1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
    "processing_engine": "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "parent": "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "jobType": "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "sourceCode": "1-0-1/SourceCodeJobFacet.json#/$defs/SourceCodeJobFacet",
    "sourceCodeLocation": "1-1-0/SourceCodeLocationJobFacet.json#/$defs/SourceCodeLocationJobFacet",
    "documentation": "1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet",
    "job_documentation": "1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
    "job_ownership": "1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
    "ownership": "1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet",
    "schema": "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    "dataQualityAssertions":
        "1-1-0/DataQualityAssertionsDatasetFacet.json#/$defs/DataQualityAssertionsDatasetFacet",
    "dataSource": "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
    "version": "1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "storage": "1-0-1/StorageDatasetFacet.json#/$defs/StorageDatasetFacet",
    "tags": "1-0-0/TagsDatasetFacet.json#/$defs/TagsDatasetFacet",
    "inputStatistics":
        "1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet",
    "outputStatistics":
        "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
}


class LineageError(CatalogError):
    """A lineage event could not be built, stored, written, validated or sent."""


# --- configuration ---------------------------------------------------------------------------
class LineageConfig(BaseModel):
    """How events are emitted. ``transport`` is an OpenLineage client transport config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    #: job and output namespace; None means ``haina://<warehouse root>``
    namespace: str | None = None
    #: events bigger than this group their inputs by folder, then by source kind
    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, ge=4096)
    #: e.g. {"type": "file", "log_file_path": "/x/ol.jsonl", "append": true}, {"type": "console"}
    transport: dict[str, Any] | None = None
    #: use the client's own conventions (OPENLINEAGE_URL, OPENLINEAGE_CONFIG, openlineage.yml)
    client_defaults: bool = False
    #: a committed version stays committed when the lineage backend is down; set True to fail
    fail_on_transport_error: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LineageConfig:
        """``$HAINA_OPENLINEAGE_CONFIG`` (YAML: transport + the fields above), else the client's
        own conventions when any of them is present, else no transport."""
        env = os.environ if environ is None else environ
        path = env.get("HAINA_OPENLINEAGE_CONFIG")
        if path:
            return cls._from_file(Path(path))
        return cls(client_defaults=_client_configured(env))

    @classmethod
    def _from_file(cls, path: Path) -> LineageConfig:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls.model_validate(data)
        except (OSError, yaml.YAMLError) as err:
            raise LineageError(f"cannot read the lineage config ({err})", where=str(path),
                               fix="point $HAINA_OPENLINEAGE_CONFIG at a readable YAML file with "
                                   "a `transport:` mapping") from err
        except ValidationError as err:
            raise LineageError(f"lineage config is not valid: {err}", where=str(path),
                               fix="use the keys enabled, namespace, max_event_bytes, transport, "
                                   "client_defaults, fail_on_transport_error") from err


def _client_configured(env: Mapping[str, str]) -> bool:
    if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG"):
        return True
    if any(key.startswith("OPENLINEAGE__TRANSPORT") for key in env):
        return True
    return any(p.is_file() for p in (Path.cwd() / "openlineage.yml",
                                      Path.home() / ".openlineage" / "openlineage.yml"))


# --- what a run knows ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ParentRef:
    """The run a run belongs to (a stage of a larger job)."""

    namespace: str
    job: str
    run_id: str  # an OpenLineage runId (UUID)


@dataclasses.dataclass(frozen=True)
class LineageContext:
    """What ``pipelines.driver.Runner`` has at hand when a run starts, commits or fails.

    ``dataset`` is the manifest's dataset section (name, title, description, licence, owner,
    attribution, classification); ``columns`` the manifest's schema section (name, type,
    metadata); ``validation`` the suite digests; ``expectation_results`` the suite results as
    written to ``_runs/<run>/validation.json`` (its ``results``); ``per_source`` the run summary's
    rows per source URI.
    """

    dataset: Mapping[str, Any]
    run: RunRecord
    sources: Sequence[SourceRecord] = ()
    columns: Sequence[Mapping[str, Any]] = ()
    version: VersionRecord | None = None
    validation: Sequence[Mapping[str, Any]] = ()
    expectation_results: Sequence[Mapping[str, Any]] = ()
    per_source: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    manifest_uri: str | None = None
    report_path: str | None = None
    recipe_text: str | None = None
    error: str | None = None
    stack_trace: str | None = None
    parent: ParentRef | None = None
    event_time: dt.datetime | None = None

    @property
    def version_id(self) -> str | None:
        return self.version.version_id if self.version else self.run.version_id


def openlineage_run_id(haina_run_id: str) -> str:
    """OpenLineage needs a UUID; the same Haina run id always maps to the same one."""
    return str(uuid.uuid5(RUN_UUID_NAMESPACE, haina_run_id))


def namespace_for(warehouse: Any) -> str:
    root = str(getattr(warehouse, "root", warehouse))
    return "haina://" + root.replace("://", "/", 1).lstrip("/") if uri_mod.scheme(root) \
        else "haina://" + os.path.abspath(root)


def file_dataset_id(uri: str) -> tuple[str, str]:
    """OpenLineage naming: local files are (``file``, absolute path); object stores are
    (``scheme://bucket``, key)."""
    if uri_mod.scheme(uri) is None:
        return "file", os.path.abspath(uri)
    scheme, rest = uri.split("://", 1)
    if scheme == "file":
        return "file", "/" + rest.lstrip("/")
    bucket, _, key = rest.partition("/")
    return f"{scheme}://{bucket}", key


# --- facets ----------------------------------------------------------------------------------
def _producer(code_version: str | None) -> str:
    return f"{HAINA_REPO}/tree/{code_version}" if code_version else HAINA_REPO


def _spec(key: str, producer: str, **fields: Any) -> dict[str, Any]:
    body = {k: v for k, v in fields.items() if v is not None}
    return {"_producer": producer, "_schemaURL": _OL + _SPEC_FACETS[key], **body}


def _custom(name: str, producer: str, **fields: Any) -> dict[str, Any]:
    body = {k: v for k, v in fields.items() if v is not None}
    return {"_producer": producer, "_schemaURL": f"{HAINA_FACETS}{name}.json#/$defs/{name}", **body}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _beam_version() -> str:
    try:
        return importlib_metadata.version("apache-beam")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _beam_options(args: Sequence[str]) -> dict[str, Any]:
    """``--name=value`` / ``--flag`` pipeline arguments as a mapping (the rest kept verbatim)."""
    options: dict[str, Any] = {}
    for arg in args:
        if arg.startswith("--"):
            name, sep, value = arg[2:].partition("=")
            options[name] = value if sep else True
    return options


def _run_facets(event_type: str, ctx: LineageContext, producer: str) -> dict[str, Any]:
    run = ctx.run
    params = dict(run.parameters or {})
    beam_args = list(params.get("beam_args") or [])
    facets = {
        "nominalTime": _spec("nominalTime", producer, nominalStartTime=_iso(run.started_at),
                             nominalEndTime=_iso(run.ended_at)),
        "processing_engine": _spec("processing_engine", producer, name="Apache Beam",
                                   version=_beam_version(), openlineageAdapterVersion=_ol_version()),
        "haina_run": _custom("HainaRunFacet", producer, runId=run.run_id, dataset=run.dataset,
                             versionId=ctx.version_id, recipePath=run.recipe_path,
                             recipeSha256=run.recipe_sha256, codeVersion=run.code_version,
                             actor=params.get("actor"), host=run.host, pid=run.pid,
                             status=run.status, reportPath=ctx.report_path),
        "haina_beam": _custom("HainaBeamFacet", producer, runner=run.runner or "DirectRunner",
                              args=beam_args, options=_beam_options(beam_args)),
    }
    if ctx.parent is not None:
        facets["parent"] = _spec("parent", producer, run={"runId": ctx.parent.run_id},
                                 job={"namespace": ctx.parent.namespace, "name": ctx.parent.job})
    if event_type in ("FAIL", "ABORT") and ctx.error:
        facets["errorMessage"] = _spec("errorMessage", producer, message=ctx.error[:4000],
                                       programmingLanguage="python", stackTrace=ctx.stack_trace)
    return facets


def _ol_version() -> str:
    try:
        return importlib_metadata.version("openlineage-python")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def _owners(dataset: Mapping[str, Any]) -> list[dict[str, str]]:
    owner = dataset.get("owner") or {}
    name = owner.get("email") or owner.get("name")
    return [{"name": f"user:{name}", "type": "OWNER"}] if name else []


def _job_facets(ctx: LineageContext, producer: str) -> dict[str, Any]:
    ds, run = ctx.dataset, ctx.run
    facets = {
        "jobType": _spec("jobType", producer, processingType="BATCH", integration="HAINA",
                         jobType="JOB"),
        "documentation": {**_spec("job_documentation", producer,
                                  description=_describe(ds) or ds["name"])},
    }
    if run.recipe_path:
        git = "+g" in (run.code_version or "")
        facets["sourceCodeLocation"] = _spec(
            "sourceCodeLocation", producer, type="git" if git else "file",
            url=Path(run.recipe_path).resolve().as_uri(), path=run.recipe_path,
            version=run.code_version, repoUrl=HAINA_REPO if git else None)
    if ctx.recipe_text:
        facets["sourceCode"] = _spec("sourceCode", producer, language="yaml",
                                     sourceCode=ctx.recipe_text)
    if _owners(ds):
        facets["ownership"] = _spec("job_ownership", producer, owners=_owners(ds))
    return facets


def _describe(ds: Mapping[str, Any]) -> str:
    return " — ".join(t.strip() for t in (ds.get("title"), ds.get("description")) if t)


# --- inputs ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Group:
    namespace: str
    name: str
    members: tuple[SourceRecord, ...]
    single: bool


def _group_inputs(sources: Sequence[SourceRecord], level: int) -> list[_Group]:
    """Level 0: one input per file; 1: per folder; 2: per source kind (their common folder)."""
    ordered = sorted(sources, key=lambda s: s.uri)
    if level == 0:
        return [_Group(*file_dataset_id(s.uri), (s,), True) for s in ordered]
    groups: dict[tuple, list[SourceRecord]] = {}
    for s in ordered:
        namespace, name = file_dataset_id(s.uri)
        key = (namespace, posixpath.dirname(name)) if level == 1 else (namespace, s.kind)
        groups.setdefault(key, []).append(s)
    out = []
    for (namespace, key), members in groups.items():
        names = [file_dataset_id(m.uri)[1] for m in members]
        name = key if level == 1 else posixpath.commonpath(names) if len(names) > 1 \
            else posixpath.dirname(names[0])
        out.append(_Group(namespace, name, tuple(members), False))
    return out


def group_digest(members: Sequence[SourceRecord]) -> str:
    """sha256 of ``"<sha256>  <uri>\\n"`` lines sorted by URI: a group's content identity."""
    lines = "".join(f"{m.sha256}  {m.uri}\n" for m in sorted(members, key=lambda m: m.uri))
    return hashlib.sha256(lines.encode()).hexdigest()


def _rows_in(ctx: LineageContext, members: Sequence[SourceRecord]) -> int | None:
    counts = [ctx.per_source.get(m.key, {}).get("rows_in") for m in members]
    known = [int(c) for c in counts if c is not None]
    return int(sum(known)) if len(known) == len(counts) else None


def _input_dataset(group: _Group, ctx: LineageContext, producer: str) -> dict[str, Any]:
    kinds = sorted({m.kind for m in group.members})
    formats = sorted({FILE_FORMATS.get(k, k) for k in kinds})
    size = sum(m.size for m in group.members)
    facets = {
        "version": _spec("version", producer, datasetVersion=group.members[0].sha256
                         if group.single else group_digest(group.members)),
        "storage": _spec("storage", producer, storageLayer="file", fileFormat=",".join(formats)),
    }
    if not group.single:
        facets["haina_file_group"] = _custom(
            "HainaFileGroupFacet", producer, fileCount=len(group.members), size=size,
            kinds=kinds, digest=group_digest(group.members), firstUri=group.members[0].uri,
            lastUri=group.members[-1].uri, manifest=ctx.manifest_uri,
            note="per-file sha256 and size are in the catalog's sources and the manifest")
    stats = _spec("inputStatistics", producer, rowCount=_rows_in(ctx, group.members), size=size,
                  fileCount=len(group.members))
    return {"namespace": group.namespace, "name": group.name, "facets": facets,
            "inputFacets": {"inputStatistics": stats}}


# --- output ----------------------------------------------------------------------------------
def _meta(column: Mapping[str, Any]) -> dict[str, str]:
    return dict(column.get("metadata") or {})


def derived_from(column: Mapping[str, Any], columns: Sequence[Mapping[str, Any]]) -> str | None:
    """The variable a QC flag column qualifies: ``haina.derived_from``, else the longest variable
    name that the flag's name contains (``sea_water_temperature_qc_source``)."""
    meta = _meta(column)
    if meta.get("haina.derived_from"):
        return meta["haina.derived_from"]
    if meta.get("haina.role") != "flag":
        return None
    variables = [c["name"] for c in columns if _meta(c).get("haina.role") == "variable"]
    hits = [v for v in variables if v in column["name"]]
    return max(hits, key=len) if hits else None


def _field_description(column: Mapping[str, Any]) -> str | None:
    meta = _meta(column)
    parts = [meta.get("haina.long_name"), f"units {meta['haina.units']}"
             if meta.get("haina.units") else None, meta.get("haina.role")]
    return "; ".join(p for p in parts if p) or None


def _schema_facet(columns: Sequence[Mapping[str, Any]], producer: str) -> dict[str, Any]:
    fields = [{k: v for k, v in {"name": c["name"], "type": c.get("type"),
                                 "description": _field_description(c),
                                 "ordinal_position": i, "fields": []}.items() if v is not None}
              for i, c in enumerate(columns, start=1)]
    return _spec("schema", producer, fields=fields)


def _transformation(conversion: str | None) -> dict[str, Any]:
    identity = not conversion or conversion.startswith("none")
    return {"type": "DIRECT", "subtype": "IDENTITY" if identity else "TRANSFORMATION",
            "description": conversion or "copied as is", "masking": False}


def column_lineage(columns: Sequence[Mapping[str, Any]], inputs: Sequence[Mapping[str, Any]]
                   ) -> dict[str, Any]:
    """Output column -> the source fields it came from, with the unit conversion applied."""
    by_name = {c["name"]: c for c in columns}
    fields: dict[str, Any] = {}
    for column in columns:
        meta, entries = _meta(column), []
        if meta.get("haina.source_name"):
            entries += [{"namespace": i["namespace"], "name": i["name"],
                         "field": meta["haina.source_name"],
                         "transformations": [_transformation(meta.get("haina.conversion"))]}
                        for i in inputs]
        parent = derived_from(column, columns)
        parent_source = _meta(by_name.get(parent, {})).get("haina.source_name")
        if parent_source:
            entries += [{"namespace": i["namespace"], "name": i["name"], "field": parent_source,
                         "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION",
                                              "description": f"quality flag derived from {parent}",
                                              "masking": False}]} for i in inputs]
        if entries:
            fields[column["name"]] = {"inputFields": entries}
    return fields


def assertions(expectation_results: Sequence[Mapping[str, Any]],
               digests: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Each evaluated expectation as a DataQualityAssertions entry (per suite without them)."""
    out = []
    for suite in expectation_results:
        for item in suite.get("results") or []:
            out.append(_assertion(suite.get("suite_name"), item))
    if not out:
        out = [{"assertion": "expectation_suite", "name": d.get("suite"),
                "success": bool(d.get("success")),
                "actual": f"{d.get('successful')} of {d.get('evaluated')} expectations met"}
               for d in digests]
    return out


def _assertion(suite: str | None, item: Mapping[str, Any]) -> dict[str, Any]:
    config = item.get("expectation_config") or {}
    kwargs = dict(config.get("kwargs") or {})
    result = item.get("result") or {}
    entry = {"assertion": config.get("type", "unknown"), "success": bool(item.get("success")),
             "name": suite, "column": kwargs.pop("column", None),
             "severity": config.get("severity"),
             "params": jsonable(kwargs)}
    if "unexpected_count" in result:
        entry["actual"] = f"{result['unexpected_count']} unexpected of {result.get('element_count')}"
    return {k: v for k, v in entry.items() if v is not None}


def _output_dataset(event_type: str, ctx: LineageContext, namespace: str, producer: str,
                    inputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ds, version = ctx.dataset, ctx.version
    facets: dict[str, Any] = {}
    if ctx.columns:
        facets["schema"] = _schema_facet(ctx.columns, producer)
        lineage = column_lineage(ctx.columns, inputs)
        if lineage:
            facets["columnLineage"] = _spec("columnLineage", producer, fields=lineage,
                                            dataset=[])
    if _describe(ds):
        facets["documentation"] = _spec("documentation", producer, description=_describe(ds))
    if _owners(ds):
        facets["ownership"] = _spec("ownership", producer, owners=_owners(ds))
    facets.update(_governance_facets(ds, producer))
    facets["dataSource"] = _spec("dataSource", producer, name=namespace, uri=namespace)
    if ctx.version_id:
        facets["version"] = _spec("version", producer, datasetVersion=ctx.version_id)
    facets["storage"] = _spec("storage", producer, storageLayer="haina", fileFormat="parquet")
    out: dict[str, Any] = {"namespace": namespace, "name": ds["name"], "facets": facets,
                           "outputFacets": {}}
    if event_type == "COMPLETE" and version is not None:
        _complete_output(out, ctx, version, producer)
    return out


def _governance_facets(ds: Mapping[str, Any], producer: str) -> dict[str, Any]:
    tags = [{"key": "licence", "value": ds.get("licence") or "unknown", "source": "HAINA"},
            {"key": "classification", "value": ds.get("classification") or "unknown",
             "source": "HAINA"}]
    return {
        "tags": _spec("tags", producer, tags=tags),
        "haina_licence": _custom("HainaLicenceFacet", producer, licence=ds.get("licence"),
                                 attribution=ds.get("attribution")),
        "haina_classification": _custom("HainaClassificationFacet", producer,
                                        classification=ds.get("classification")),
    }


def _complete_output(out: dict[str, Any], ctx: LineageContext, version: VersionRecord,
                     producer: str) -> None:
    facets = out["facets"]
    facets["haina_manifest"] = _custom(
        "HainaManifestFacet", producer, versionId=version.version_id, state=version.state,
        sha256=version.manifest_sha256, uri=ctx.manifest_uri, folder=version.path,
        createdAt=_iso(version.created_at))
    if ctx.validation or ctx.expectation_results:
        facets["dataQualityAssertions"] = _spec(
            "dataQualityAssertions", producer,
            assertions=assertions(ctx.expectation_results, ctx.validation))
    out["outputFacets"] = {"outputStatistics": _spec(
        "outputStatistics", producer, rowCount=version.rows, size=version.bytes,
        fileCount=version.file_count)}


# --- the event -------------------------------------------------------------------------------
def event_bytes(event: Mapping[str, Any]) -> int:
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())


def build_event(event_type: str, ctx: LineageContext, *, namespace: str,
                max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> dict[str, Any]:
    """One RunEvent; inputs are grouped (per folder, then per kind) until it fits the size."""
    if event_type not in EVENT_TYPES:
        raise LineageError(f"unknown event type {event_type!r}", where=f"run {ctx.run.run_id}",
                           fix=f"use one of {', '.join(EVENT_TYPES)}")
    producer = _producer(ctx.run.code_version)
    base = {
        "eventType": event_type,
        "eventTime": _iso(ctx.event_time or dt.datetime.now(dt.UTC)),
        "producer": producer,
        "schemaURL": f"{OPENLINEAGE_SPEC}#/$defs/RunEvent",
        "run": {"runId": openlineage_run_id(ctx.run.run_id),
                "facets": _run_facets(event_type, ctx, producer)},
        "job": {"namespace": namespace, "name": ctx.dataset["name"],
                "facets": _job_facets(ctx, producer)},
    }
    size = 0
    for level in (0, 1, 2):
        inputs = [_input_dataset(g, ctx, producer) for g in _group_inputs(ctx.sources, level)]
        event = {**base, "inputs": inputs,
                 "outputs": [_output_dataset(event_type, ctx, namespace, producer, inputs)]}
        size = event_bytes(event)
        if size <= max_event_bytes:
            return event
    raise LineageError(
        f"the {event_type} event is {size} bytes even with inputs grouped by source kind, over "
        f"max_event_bytes={max_event_bytes}", where=f"run {ctx.run.run_id}",
        fix="raise max_event_bytes in $HAINA_OPENLINEAGE_CONFIG")


# --- storage ---------------------------------------------------------------------------------
def store_event(catalog: Catalog, event: Mapping[str, Any], ctx: LineageContext) -> None:
    """Store the event, with its audit entry, in one transaction."""
    record = LineageEventRecord(
        run_id=ctx.run.run_id, ol_run_id=event["run"]["runId"], event_type=event["eventType"],
        event_time=dt.datetime.fromisoformat(event["eventTime"].replace("Z", "+00:00")),
        dataset=ctx.dataset["name"], version_id=ctx.version_id, event=dict(event))
    catalog.add_lineage_event(record, {
        "run_id": ctx.run.run_id, "event_type": event["eventType"],
        "ol_run_id": event["run"]["runId"], "bytes": event_bytes(event)})


def events(catalog: Catalog, *, run_id: str | None = None, dataset: str | None = None,
           version_id: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
    """Stored events, oldest first, filtered by any of the arguments."""
    found = catalog.lineage_events(run_id=run_id, dataset=dataset, version_id=version_id,
                                   event_type=event_type)
    return [dict(e.event) for e in found]


def write_jsonl(version_dir: str, lines: Sequence[Mapping[str, Any]]) -> str:
    """Write ``<version_dir>/lineage.jsonl`` (one compact event per line); return its URI."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    uri = uri_mod.join(version_dir, LINEAGE_FILE)
    data = "".join(json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
                   for e in lines).encode()
    try:
        with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(data)
    except OSError as err:
        raise LineageError(f"could not write lineage events ({err})", where=uri,
                           fix="check that the version folder is writable") from err
    return uri


def read_jsonl(version_dir: str) -> list[dict[str, Any]]:
    uri = uri_mod.join(version_dir, LINEAGE_FILE)
    try:
        text = files_mod.read_bytes(uri).decode("utf-8")
    except OSError as err:
        raise LineageError(f"no lineage events ({err})", where=uri,
                           fix="versions committed before lineage was enabled have none") from err
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- emitting --------------------------------------------------------------------------------
def emit(catalog: Any, warehouse: Any, event_type: str, ctx: LineageContext, *,
         config: LineageConfig | None = None) -> dict[str, Any]:
    """Build, store, write beside the version (COMPLETE) and send one event; return it."""
    config = config or LineageConfig.from_env()
    event = build_event(event_type, ctx, namespace=config.namespace or namespace_for(warehouse),
                        max_event_bytes=config.max_event_bytes)
    if not config.enabled:
        return event
    store_event(catalog, event, ctx)
    if event_type == "COMPLETE" and ctx.version is not None:
        starts = events(catalog, run_id=ctx.run.run_id, event_type="START")
        write_jsonl(ctx.version.path, [*starts, event])
    if config.transport or config.client_defaults:
        send(event, config)
    return event


def send(event: Mapping[str, Any], config: LineageConfig) -> bool:
    """Send through the OpenLineage client; a failure is logged (or raised, if configured)."""
    from openlineage.client import OpenLineageClient

    try:
        client = (OpenLineageClient(config={"transport": config.transport})
                  if config.transport else OpenLineageClient())
        client.emit(to_client_event(event))
        client.close(timeout=10)
        return True
    except Exception as err:  # noqa: BLE001 - transports raise anything (HTTP, Kafka, fs)
        message = (f"could not send the {event.get('eventType')} event of run "
                   f"{event['run']['runId']} ({type(err).__name__}: {err})")
        if config.fail_on_transport_error:
            raise LineageError(message, where=str(config.transport or "OpenLineage defaults"),
                               fix="check the transport settings and that the backend is up; "
                                   "the event is kept in the catalog") from err
        log.warning("%s; the event is kept in the catalog", message)
        return False


# --- the client's model classes --------------------------------------------------------------
def _facet_classes() -> dict[tuple[str, str], type]:
    from openlineage.client import facet_v2 as f

    dataset = {
        "schema": f.schema_dataset.SchemaDatasetFacet,
        "columnLineage": f.column_lineage_dataset.ColumnLineageDatasetFacet,
        "dataQualityAssertions": f.data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet,
        "dataSource": f.datasource_dataset.DatasourceDatasetFacet,
        "version": f.dataset_version_dataset.DatasetVersionDatasetFacet,
        "storage": f.storage_dataset.StorageDatasetFacet,
        "documentation": f.documentation_dataset.DocumentationDatasetFacet,
        "ownership": f.ownership_dataset.OwnershipDatasetFacet,
        "tags": f.tags_dataset.TagsDatasetFacet,
    }
    classes = {("DatasetFacet", k): v for k, v in dataset.items()}
    classes.update({
        ("RunFacet", "nominalTime"): f.nominal_time_run.NominalTimeRunFacet,
        ("RunFacet", "processing_engine"): f.processing_engine_run.ProcessingEngineRunFacet,
        ("RunFacet", "parent"): f.parent_run.ParentRunFacet,
        ("RunFacet", "errorMessage"): f.error_message_run.ErrorMessageRunFacet,
        ("JobFacet", "jobType"): f.job_type_job.JobTypeJobFacet,
        ("JobFacet", "sourceCode"): f.source_code_job.SourceCodeJobFacet,
        ("JobFacet", "sourceCodeLocation"): f.source_code_location_job.SourceCodeLocationJobFacet,
        ("JobFacet", "documentation"): f.documentation_job.DocumentationJobFacet,
        ("JobFacet", "ownership"): f.ownership_job.OwnershipJobFacet,
        ("InputDatasetFacet", "inputStatistics"):
            f.input_statistics_input_dataset.InputStatisticsInputDatasetFacet,
        ("OutputDatasetFacet", "outputStatistics"):
            f.output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet,
    })
    return classes


def to_client_event(event: Mapping[str, Any]) -> Any:
    """The event as ``openlineage.client.event_v2.RunEvent`` (attrs), facets as their classes.

    Custom facets (``haina_*``) become the category's base facet with extra properties; every
    facet keeps the ``_producer`` and ``_schemaURL`` it was built with.
    """
    from openlineage.client import event_v2

    return _structure(dict(event), event_v2.RunEvent, _facet_classes())


def _structure(value: Any, tp: Any, classes: Mapping) -> Any:
    import attr

    if value is None:
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return _structure(value, next(a for a in args if a is not type(None)), classes)
    if origin is list:
        return [_structure(v, args[0], classes) for v in value]
    if origin is dict:
        return {k: _facet_or_value(k, v, args[1], classes) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if isinstance(tp, type) and attr.has(tp):
        return _structure_attrs(value, tp, classes)
    return value


def _facet_or_value(key: str, value: Any, tp: Any, classes: Mapping) -> Any:
    from openlineage.client.generated.base import BaseFacet

    if not (isinstance(tp, type) and issubclass(tp, BaseFacet)):
        return _structure(value, tp, classes)
    cls = classes.get((tp.__name__, key), tp)
    facet = _structure_attrs(value, cls, classes)
    facet._producer, facet._schemaURL = value["_producer"], value["_schemaURL"]
    return facet


def _structure_attrs(value: Mapping[str, Any], cls: type, classes: Mapping) -> Any:
    import attr

    hints = typing.get_type_hints(cls)
    fields = {a.name: a for a in attr.fields(cls)}
    kwargs = {a.alias: _structure(value[a.name], hints[a.name], classes)
              for a in fields.values() if a.init and a.name in value}
    extra = {k: v for k, v in value.items() if k not in fields}
    obj = cls(**kwargs)
    return obj.with_additional_properties(**extra) if extra else obj


def from_client_event(obj: Any) -> dict[str, Any]:
    """The client's serialised form of an attrs event (what its transports send)."""
    from openlineage.client.serde import Serde

    return Serde.to_dict(obj)


# --- schema validation (offline) -------------------------------------------------------------
def _custom_schema(name: str, base: str, properties: Mapping[str, Any],
                   required: Sequence[str] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        body["required"] = list(required)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{HAINA_FACETS}{name}.json",
            "$defs": {name: {"allOf": [{"$ref": f"{OPENLINEAGE_SPEC}#/$defs/{base}"}, body],
                             "type": "object"}}}


_S, _I = {"type": "string"}, {"type": "integer"}


def custom_facet_schemas() -> list[dict[str, Any]]:
    """JSON schemas of Haina's own facets; each extends an OpenLineage base facet."""
    return [
        _custom_schema("HainaRunFacet", "RunFacet", {
            "runId": _S, "dataset": _S, "versionId": _S, "recipePath": _S, "recipeSha256": _S,
            "codeVersion": _S, "actor": _S, "host": _S, "pid": _I, "status": _S,
            "reportPath": _S}, ["runId"]),
        _custom_schema("HainaBeamFacet", "RunFacet", {
            "runner": _S, "args": {"type": "array", "items": _S},
            "options": {"type": "object"}}, ["runner"]),
        _custom_schema("HainaFileGroupFacet", "DatasetFacet", {
            "fileCount": _I, "size": _I, "kinds": {"type": "array", "items": _S},
            "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "firstUri": _S,
            "lastUri": _S, "manifest": _S, "note": _S}, ["fileCount", "digest"]),
        _custom_schema("HainaLicenceFacet", "DatasetFacet",
                       {"licence": _S, "attribution": _S}, ["licence"]),
        _custom_schema("HainaClassificationFacet", "DatasetFacet",
                       {"classification": {"enum": ["public", "internal", "confidential",
                                                    "restricted"]}}, ["classification"]),
        _custom_schema("HainaManifestFacet", "DatasetFacet", {
            "versionId": _S, "state": _S, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "uri": _S, "folder": _S, "createdAt": {"type": "string", "format": "date-time"}},
            ["versionId", "sha256"]),
    ]


@lru_cache(maxsize=4)
def _registry(spec_dir: str):
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    files = [Path(spec_dir) / "OpenLineage.json", *sorted((Path(spec_dir) / "facets").glob("*.json"))]
    schemas = [json.loads(p.read_text(encoding="utf-8")) for p in files]
    schemas += custom_facet_schemas()
    resources = [(s["$id"], Resource.from_contents(s, default_specification=DRAFT202012))
                 for s in schemas]
    facet_keys = {s["$id"]: set(s.get("properties", {})) for s in schemas[1:]}
    return Registry().with_resources(resources), facet_keys


def validate_event(event: Mapping[str, Any], spec_dir: str | os.PathLike) -> None:
    """Validate against OpenLineage.json and every facet against its own ``_schemaURL``, offline.

    Raises LineageError listing every problem (JSON path and message).
    """
    from referencing.exceptions import Unresolvable

    registry, facet_keys = _registry(str(Path(spec_dir).resolve()))
    problems = _errors({"$ref": OPENLINEAGE_SPEC}, event, registry, "$")
    for where, key, facet in _facets(event):
        url = facet.get("_schemaURL", "")
        file_id = url.split("#", 1)[0]
        if file_id in facet_keys and facet_keys[file_id] and key not in facet_keys[file_id]:
            problems.append(f"{where}.{key}: key does not match {file_id} "
                            f"(expects {sorted(facet_keys[file_id])})")
        try:
            problems += _errors({"$ref": url}, facet, registry, f"{where}.{key}")
        except Unresolvable as err:
            problems.append(f"{where}.{key}: _schemaURL {url!r} is not a known schema ({err})")
    if problems:
        raise LineageError("event does not validate:\n  - " + "\n  - ".join(problems),
                           where=f"{event.get('eventType')} {event.get('run', {}).get('runId')}",
                           fix="fix the facet named above in catalog/lineage/events.py")


def _errors(schema: Mapping[str, Any], instance: Any, registry: Any, where: str) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, registry=registry,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{where}{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(instance)]


def _facets(event: Mapping[str, Any]):
    yield from (("run.facets", k, v) for k, v in (event["run"].get("facets") or {}).items())
    yield from (("job.facets", k, v) for k, v in (event["job"].get("facets") or {}).items())
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for i, ds in enumerate(event.get(side) or []):
            for group in ("facets", extra):
                yield from ((f"{side}[{i}].{group}", k, v)
                            for k, v in (ds.get(group) or {}).items())


# --- provenance queries ----------------------------------------------------------------------
def downstream(catalog: Catalog, *, uris: Sequence[str] = (), sha256s: Sequence[str] = ()
               ) -> list[dict[str, Any]]:
    """Every committed version whose run read a source with one of these URIs or hashes."""
    return [dataclasses.asdict(use) for use in catalog.source_uses(uris=uris, sha256s=sha256s)]


def _read_json(uri: str) -> Any:
    return json.loads(files_mod.read_bytes(uri).decode("utf-8"))


def context_for_version(catalog: Any, warehouse: Any, dataset: str, ref: str = "latest"
                        ) -> LineageContext:
    """Rebuild the COMPLETE context of a committed version from the catalog, its manifest and
    its run's validation report (for versions committed before lineage was wired in)."""
    from catalog.storage import manifest as manifest_mod

    version = lifecycle.resolve(catalog, dataset, ref, allow_yanked=True, draft_fallback=True,
                                warn=lambda _message: None)
    manifest = manifest_mod.Manifest.read(version.path, expected_sha256=version.manifest_sha256)
    report = uri_mod.join(warehouse.run_dir(version.run_id), "validation.json")
    results = _read_json(report).get("results", []) if files_mod.exists(report) else []
    return LineageContext(
        dataset=manifest.dataset.to_json(), run=catalog.run(version.run_id),
        sources=tuple(catalog.sources(version.run_id)),
        columns=tuple(c.to_json() for c in manifest.schema),
        version=version, validation=tuple(manifest.validation),
        expectation_results=tuple(results),
        per_source=manifest.row_accounting.get("per_source", {}),
        manifest_uri=uri_mod.join(version.path, manifest_mod.MANIFEST_NAME),
        report_path=catalog.run(version.run_id).report_path)


def provenance(catalog: Any, dataset: str, ref: str = "latest") -> dict[str, Any]:
    """The upstream graph of one version: version -> run -> source files, code, checks."""
    from catalog.storage import manifest as manifest_mod

    version = lifecycle.resolve(catalog, dataset, ref, allow_yanked=True, draft_fallback=True,
                                warn=lambda _message: None)
    run = catalog.run(version.run_id)
    manifest = manifest_mod.Manifest.read(version.path, expected_sha256=version.manifest_sha256)
    digests = manifest.validation
    columns = [c.to_json() for c in manifest.schema]
    return {
        "dataset": manifest.dataset.to_json(),
        "version": {"id": version.version_id, "state": version.state,
                    "created_at": _iso(version.created_at), "rows": version.rows,
                    "bytes": version.bytes, "file_count": version.file_count,
                    "path": version.path, "manifest_sha256": version.manifest_sha256},
        "run": {"id": run.run_id, "openlineage_run_id": openlineage_run_id(run.run_id),
                "status": run.status, "started_at": _iso(run.started_at),
                "ended_at": _iso(run.ended_at), "actor": (run.parameters or {}).get("actor"),
                "code_version": run.code_version, "recipe_path": run.recipe_path,
                "recipe_sha256": run.recipe_sha256, "runner": run.runner, "host": run.host},
        "sources": [{"uri": s.uri, "sha256": s.sha256, "size": s.size, "kind": s.kind,
                     "source_index": s.source_index, "key": s.key}
                    for s in catalog.sources(run.run_id)],
        "checks": {"suites": len(digests), "suites_passed": sum(bool(d.get("success"))
                                                                for d in digests),
                   "expectations": sum(d.get("evaluated") or 0 for d in digests),
                   "expectations_met": sum(d.get("successful") or 0 for d in digests),
                   "digests": digests},
        "columns": [_column_entry(c, columns) for c in columns],
        "lineage_events": [e["eventType"] for e in events(catalog, run_id=run.run_id)],
    }


def _column_entry(column: Mapping[str, Any], columns: Sequence[Mapping[str, Any]]) -> dict:
    meta = _meta(column)
    return {"name": column["name"], "type": column.get("type"), "role": meta.get("haina.role"),
            "units": meta.get("haina.units"), "source_name": meta.get("haina.source_name"),
            "source_units": meta.get("haina.source_units"),
            "conversion": meta.get("haina.conversion"),
            "derived_from": derived_from(column, columns)}
