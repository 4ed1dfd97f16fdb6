"""Planning a run: what ``haina check`` prints and what ``haina run`` executes.

Everything here is decided from the recipe and the source files alone: no catalog, no
warehouse, nothing written. The functions return frozen plans, so the run that executes one
cannot change it on the way, and ``haina check`` can plan a recipe whose warehouse does not
exist yet without creating it.

    match_sources -> fingerprint_sources -> plan_sources -> plan_dataset
    (URIs)           (Source: sha256, size)  (EntryPlan)      (DatasetPlan: schema, QC, suites,
                                                               splits, write options)

A run adds what the catalog knows (the version it extends, :mod:`pipelines.incremental`) and
plans only the new and changed sources; :func:`plan_recipe` plans them all, as ``check`` does.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

import connectors
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.storage import writer
from catalog.storage.filesystems import require_filesystem
from catalog.store import source_key
from connectors import integrity
from connectors.base import ColumnInfo, SourcePlan
from connectors.exceptions import SourceNotFoundError
from expectations.exceptions import ExpectationsError
from expectations.qc import apply as qc_apply
from expectations.qc import plan as qc_plan_mod
from expectations.qc.plan import QCPlan
from expectations.validation import checks as checks_mod
from expectations.validation import suites as suites_mod
from expectations.validation.checks import Check
from pipelines import prehash
from pipelines import schemas as schemas_mod
from pipelines import splits as splits_mod
from pipelines.beam.steps import Suite
from pipelines.beam.transforms import IngestPlan
from pipelines.incremental import Source
from pipelines.recipe import Recipe


class EntryPlan(NamedTuple):
    """One source file as one recipe entry reads it (``entry``: the entry's position in the
    recipe's ``sources``). A pair, so ``for index, plan in entries`` reads as it always did."""

    entry: int
    plan: SourcePlan


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
    """The dataset a run writes: its schema, and the QC, validation, split and write settings
    that go with that schema, resolved once."""

    #: the schema chunks are read into (the sources' union, before QC adds its flag columns)
    read_schema: pa.Schema
    #: the dataset's schema: with QC flag columns, the split column, and the columns of the
    #: version a run extends
    schema: pa.Schema
    #: QC tests and thresholds per column; None when nothing is read (only carried files)
    qc: QCPlan | None
    #: Great Expectations suites the chunks read are judged by (none when nothing is read)
    suites: tuple[Suite, ...]
    #: the suites compiled for the Arrow engine
    checks: tuple[Check, ...]
    splits: splits_mod.SplitConfig | None
    write_options: writer.WriteOptions


@dataclasses.dataclass(frozen=True)
class RecipePlan:
    """Every matched source file, fingerprinted and planned, and the dataset they make."""

    sources: tuple[Source, ...]
    entries: tuple[EntryPlan, ...]
    dataset: DatasetPlan

    @property
    def chunks(self) -> int:
        return sum(len(entry.plan.chunks) for entry in self.entries)


# -- sources --------------------------------------------------------------------------------------


def _absolute(pattern: str, base: Path) -> str:
    if uri_mod.scheme(pattern) is not None or os.path.isabs(pattern):
        return pattern
    return os.path.normpath(base.resolve() / pattern)


def match_sources(recipe: Recipe) -> list[tuple[int, str]]:
    """Expand every source's URI globs; an empty glob is an error naming it."""
    found: list[tuple[int, str]] = []
    for index, source in enumerate(recipe.sources):
        for pattern in source.uris():
            absolute = _absolute(pattern, recipe.base_dir)
            require_filesystem(absolute, f"{recipe.path}: sources[{index}].uri")
            metadata_list = FileSystems.match([absolute])[0].metadata_list
            paths = sorted(m.path for m in metadata_list)
            if not paths:
                raise SourceNotFoundError(
                    f"{recipe.path}: sources[{index}].uri {pattern!r} matches no file "
                    f"(looked for {absolute})",
                    fix="check the path and glob; relative paths are relative to the recipe file",
                )
            for path in paths:  # before fingerprinting: reading a named pipe blocks forever
                integrity.check_regular(path)
            found.extend((index, path) for path in paths)
    return found


def fingerprint(uri: str) -> tuple[str, int]:
    """sha256 and size of a file's content (:func:`catalog.storage.files.digest`).

    A local file the CLI hashed while Beam imported (:mod:`pipelines.prehash`) is not read again.
    """
    ahead = prehash.take(uri)
    if ahead is not None:
        return ahead
    found = files_mod.digest(uri)
    return found.sha256, found.size


def fingerprint_sources(recipe: Recipe, matched: Sequence[tuple[int, str]]) -> list[Source]:
    """Fingerprint every matched file once (several entries may name one file), several at a
    time (hashlib releases the GIL)."""
    uris = list(dict.fromkeys(uri for _, uri in matched))
    if len(uris) < 2:
        digests = dict(zip(uris, map(fingerprint, uris), strict=True))
    else:
        with concurrent.futures.ThreadPoolExecutor(min(len(uris), os.cpu_count() or 1, 8)) as pool:
            digests = dict(zip(uris, pool.map(fingerprint, uris), strict=True))
    return [Source(index, uri, *digests[uri]) for index, uri in matched]


def find_sources(recipe: Recipe, echo: Callable[[str], None] = lambda _msg: None
                 ) -> tuple[Source, ...]:
    """Every source file the recipe's globs match, fingerprinted by content."""
    matched = match_sources(recipe)
    echo(f"fingerprinting {len(matched)} source file(s)")
    return tuple(fingerprint_sources(recipe, matched))


def plan_sources(recipe: Recipe, sources: Sequence[Source]) -> tuple[EntryPlan, ...]:
    """Each source file planned by its entry's connector, then checked across an entry's files."""
    plans = []
    for source in sources:
        config = recipe.sources[source.index]
        plan = connectors.get(config.kind).plan(config, source.uri, source.sha256, source.size)
        # connectors plan one file without knowing which recipe source it belongs to
        chunks = tuple(dataclasses.replace(c, source_index=source.index) for c in plan.chunks)
        plans.append(EntryPlan(source.index, dataclasses.replace(plan, chunks=chunks)))
    for index, config in enumerate(recipe.sources):  # checks across one source's files
        connectors.get(config.kind).check_source(config, [p for i, p in plans if i == index])
    return tuple(plans)


# -- the dataset ----------------------------------------------------------------------------------

def dataset_schema(recipe: Recipe, entries: Sequence[EntryPlan]) -> pa.Schema:
    """The union of the sources' schemas, after checking drift between files of a source."""
    per_source = schemas_mod.source_schemas(len(recipe.sources), entries, recipe.schema_drift)
    return splits_mod.with_split_field(
        schemas_mod.union([s for s in per_source if s is not None]), recipe.splits)


def extend_previous(recipe: Recipe, schema: pa.Schema, previous: pa.Schema | None,
                    previous_id: str | None) -> pa.Schema:
    """The new version's schema, checked for drift against the version it extends."""
    if previous is None:
        return schema
    schemas_mod.check_drift(previous, schema, recipe.schema_drift,
                            what=f"since version {previous_id}")
    return schemas_mod.union([previous, schema])


def columns_info(schema: pa.Schema) -> list[ColumnInfo]:
    """The column metadata the connectors put in the schema's ``haina.*`` field metadata."""
    infos = []
    for field in schema:
        meta = {key.decode().removeprefix("haina."): value.decode()
                for key, value in (field.metadata or {}).items() if key.startswith(b"haina.")}
        infos.append(ColumnInfo(
            name=field.name, role=meta.get("role") or "variable", units=meta.get("units"),
            standard_name=meta.get("standard_name"), long_name=meta.get("long_name"),
            source_name=meta.get("source_name"), source_units=meta.get("source_units"),
            conversion=meta.get("conversion"),
        ))
    return infos


def write_options(recipe: Recipe, schema: pa.Schema) -> writer.WriteOptions:
    """Parquet encodings by column role: dictionaries for coordinates and ids, byte-stream
    split for measured floats."""
    roles = {info.name: info.role for info in columns_info(schema)}
    dictionary = tuple(n for n in schema.names
                       if roles.get(n) in ("coordinate", "id", "source") or n == "source_file")
    floats = tuple(f.name for f in schema
                   if pa.types.is_floating(f.type) and f.name not in dictionary)
    out = recipe.output
    return writer.WriteOptions(
        compression=out.compression, compression_level=out.compression_level,
        row_group_rows=out.row_group_rows, dictionary_columns=dictionary,
        byte_stream_split_columns=floats,
    )


def qc_plan(recipe: Recipe, schema: pa.Schema) -> QCPlan:
    """The QC tests and thresholds for the dataset's columns, resolved once here."""
    qc = recipe.quality.qc
    return qc_plan_mod.plan_qc(columns_info(schema), qc, qc.region)


def suites(recipe: Recipe, schema: pa.Schema) -> tuple[Suite, ...]:
    """The validation suites of the dataset's columns (none when quality is off)."""
    if not recipe.quality.enabled:
        return ()
    try:
        return tuple(suites_mod.suites_for(columns_info(schema), recipe.quality,
                                           recipe.coverage, recipe.base_dir))
    except ExpectationsError as err:
        if not (err.where or "").startswith("quality.") or recipe.path is None:
            raise
        # a recipe setting the data contradicts: name the recipe file too
        raise type(err)(err.reason, where=f"{recipe.path}: {err.where}", fix=err.fix) from err


def check_splits(recipe: Recipe, schema: pa.Schema) -> None:
    """``splits.by`` names columns the dataset has: refused here, not inside the pipeline."""
    where = f"{recipe.path}: " if recipe.path else ""
    splits_mod.check_columns(schema, recipe.splits, where)


def plan_dataset(recipe: Recipe, entries: Sequence[EntryPlan],
                 previous_schema: pa.Schema | None = None,
                 previous_id: str | None = None) -> DatasetPlan:
    """The dataset the planned entries make, extending a previous version's schema if given.

    With no entries but a previous schema (a run that only carries files over, or only drops
    sources), the dataset is the previous one: nothing is read, so nothing is QC'd or judged
    (the carried files were validated in their own version)."""
    if entries or previous_schema is None:
        read_schema = dataset_schema(recipe, entries)
        qc = qc_plan(recipe, read_schema)
        schema = schemas_mod.union([qc_apply.extend_schema(read_schema, qc)])
        schema = extend_previous(recipe, schema, previous_schema, previous_id)
    else:
        read_schema, qc, schema = previous_schema, None, previous_schema
    check_splits(recipe, schema)
    judged = suites(recipe, schema) if entries else ()
    return DatasetPlan(
        read_schema=read_schema, schema=schema, qc=qc, suites=judged,
        checks=checks_mod.compile_checks(list(judged)) if judged else (),
        splits=recipe.splits, write_options=write_options(recipe, schema))


def plan_recipe(recipe: Recipe, echo: Callable[[str], None] = lambda _msg: None) -> RecipePlan:
    """Plan every matched file, as a full run would (``haina check``): no catalog involved."""
    sources = find_sources(recipe, echo)
    entries = plan_sources(recipe, sources)
    return RecipePlan(sources=sources, entries=entries, dataset=plan_dataset(recipe, entries))


# -- the pipeline ---------------------------------------------------------------------------------

def kv_metadata(recipe: Recipe, run_id: str, version_id: str) -> dict[str, str]:
    """The key-value metadata every Parquet file of the version carries in its footer."""
    kv = {"haina.dataset": recipe.name, "haina.version": version_id, "haina.run_id": run_id,
          "haina.licence": recipe.licence}
    if recipe.attribution:
        kv["haina.attribution"] = recipe.attribution
    return kv


def ingest_plan(recipe: Recipe, entries: Sequence[EntryPlan], dataset: DatasetPlan, *,
                run_id: str, version_id: str, staging: str) -> IngestPlan:
    """Everything the Beam pipeline needs, decided here in the driver (the driver sets the
    worker count and the write buffer once it knows the runner)."""
    return IngestPlan(
        chunks=tuple(c for _, p in entries for c in p.chunks),
        configs=tuple(recipe.sources),
        schemas={source_key(i, p.uri): p.schema for i, p in entries},
        dataset_schema=dataset.schema,
        checks=dataset.checks,
        suites=dataset.suites,
        engine=recipe.quality.engine,
        staging=staging,
        kv_metadata=kv_metadata(recipe, run_id, version_id),
        write_options=dataset.write_options,
        partition_by=recipe.output.partition_by,
        splits=dataset.splits,
        target_bytes=int(recipe.output.target_file_mb * 2**20),
        qc_plan=dataset.qc,
        read_schema=dataset.read_schema,
    )
