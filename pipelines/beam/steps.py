"""The work of each pipeline step, as plain functions and small classes that do not import Beam.

``pipelines.beam.transforms`` wires these into Beam; tests call them directly.

The element between steps is a :class:`ChunkOutput`: one chunk of rows (Arrow tables, never a
row). It is frozen, and every step returns a new one (``dataclasses.replace``) instead of changing
the one it was given: Beam may hand one element to several consumers (the validated chunks feed
both the writer and the duplicate-key branch) and forbids mutating inputs.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

import connectors
from catalog.storage import writer
from catalog.store import source_key
from connectors.base import ChunkSpec
from connectors.config import SourceConfig
from connectors.exceptions import ConnectorError
from expectations.qc import apply as qc_apply
from expectations.qc.plan import QCPlan
from expectations.qc.stats import merge_qc_stats, with_quarantine_sample
from expectations.validation import arrow_metrics, keys, merge
from expectations.validation.checks import Check
from pipelines import splits

#: a suite as Great Expectations' JSON (``name``, ``expectations``, ...)
Suite = dict[str, Any]
#: a (check id, bucket) key and one chunk's part of that bucket's keys (engine.key_parts)
KeyedKeys = tuple[tuple[str, int], Any]


@dataclasses.dataclass(frozen=True)
class ChunkOutput:
    """One chunk after reading: its rows in the dataset schema, and its exact accounting.

    Frozen: a step makes a new element with ``dataclasses.replace``. ``metrics`` and
    ``qc_stats`` are the mergeable JSON-able records of the validation engine and of QC.
    """

    chunk: ChunkSpec
    table: pa.Table
    rows_in: int
    rows_dropped: int
    quarantine: pa.Table | None
    metrics: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    qc_stats: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None

    @property
    def rows_quarantined(self) -> int:
        return 0 if self.quarantine is None else self.quarantine.num_rows


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a connector's table to the dataset schema: same order, missing columns as nulls."""
    if table.schema.equals(schema, check_metadata=False):
        return table.replace_schema_metadata(schema.metadata) if schema.metadata else table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def chunk_key(chunk: ChunkSpec) -> str:
    """The chunk's source as runs name it: recipe entry and file (:func:`source_key`)."""
    return source_key(chunk.source_index, chunk.uri)


def read_chunk(chunk: ChunkSpec, configs: Sequence[SourceConfig],
               schemas: Mapping[str, pa.Schema], dataset_schema: pa.Schema) -> ChunkOutput:
    """Read one chunk with its source's connector.

    A connector error does not raise: it comes back as data (``error``), so that the driver can
    name the file and the fix after the run instead of printing a worker traceback.
    """
    config = configs[chunk.source_index]
    try:
        result = connectors.get(config.kind).read(config, chunk, schemas[chunk_key(chunk)])
    except ConnectorError as err:
        empty = dataset_schema.empty_table()
        return ChunkOutput(chunk, empty, 0, 0, None, error=str(err))
    table = conform(result.table, dataset_schema)
    return ChunkOutput(chunk, table, result.rows_in, result.rows_dropped, result.quarantine)


def qc_chunk(out: ChunkOutput, qc_plan: QCPlan | None, schema: pa.Schema) -> ChunkOutput:
    """Add QARTOD flag columns; rows failed by a hard test go to quarantine with the reason."""
    if out.error is not None or qc_plan is None or not qc_plan.enabled:
        return dataclasses.replace(out, table=conform(out.table, schema))
    result = qc_apply.apply_qc(out.table, qc_plan)
    flagged = conform(result.table, schema)
    hard = result.hard_fail
    if not pc.any(hard).as_py():
        return dataclasses.replace(out, table=flagged, qc_stats=result.stats)
    # the quarantine keeps the rows' content (time, position, values, flags) as JSON in ``raw``
    rejected = qc_apply.quarantine_rows(flagged.filter(hard), pc.filter(result.reasons, hard))
    quarantine = rejected if out.quarantine is None else pa.concat_tables(
        [out.quarantine, rejected])
    return dataclasses.replace(out, table=flagged.filter(pc.invert(hard)), quarantine=quarantine,
                               qc_stats=result.stats)


def split_chunk(out: ChunkOutput, config: splits.SplitConfig | None) -> ChunkOutput:
    """Fill the ``split`` column: a pure function of each row's group key (pipelines.splits)."""
    if config is None or out.error is not None:
        return out
    return dataclasses.replace(out, table=splits.add_split_column(out.table, config))


def chunk_order(chunk: ChunkSpec) -> tuple[int, str, int]:
    """A chunk's place in the dataset: keeps sampled unexpected values the first ones."""
    return (chunk.source_index, chunk.uri, chunk.ordinal)


def validate_chunk(out: ChunkOutput, checks: Sequence[Check], suites: Sequence[Suite],
                   engine_name: str) -> ChunkOutput:
    """Attach exact validation metrics of the chunk (mergeable across chunks)."""
    if out.error is not None or not checks:
        return out
    order = chunk_order(out.chunk)
    if engine_name == "great_expectations":
        # imports Great Expectations (seconds): only runs that ask for GE's own engine pay
        from expectations.validation.ge import engine as ge_engine

        metrics = ge_engine.ge_chunk_metrics(out.table, list(suites), order=order)
    else:
        metrics = arrow_metrics.chunk_metrics(out.table, checks, order=order)
    return dataclasses.replace(out, metrics=metrics)


def chunk_keys(out: ChunkOutput, checks: Sequence[Check]) -> list[KeyedKeys]:
    """The chunk's key columns per compound (uniqueness) check, keyed by (check id, bucket)."""
    if out.error is not None:
        return []
    return keys.key_parts(out.table, checks, order=chunk_order(out.chunk))


def duplicates_summary(keyed: tuple[tuple[str, int], Iterable[Any]],
                       checks: Mapping[str, Check]) -> dict[str, Any]:
    """A run-summary part holding one bucket's exact duplicate count (merged like a chunk's)."""
    (check_id, _bucket), parts = keyed
    return {"metrics": keys.duplicate_metrics(checks[check_id], list(parts))}


def duplicates_found(summary: Mapping[str, Any]) -> int:
    """How many rows of a :func:`duplicates_summary` have a key that occurs more than once."""
    return sum(entry["unexpected"] for entry in summary["metrics"]["checks"].values())


def chunk_summary(out: ChunkOutput) -> dict[str, Any]:
    """The small, JSON-able record of a chunk that the run summary is combined from."""
    reasons: dict[str, int] = {}
    if out.quarantine is not None and out.quarantine.num_rows:
        counts = out.quarantine.column("reason").value_counts()
        reasons = {item["values"].as_py(): item["counts"].as_py() for item in counts}
    return {
        # the report's table of quarantined records (connector's and QC's) rides in the QC stats
        "qc": with_quarantine_sample(dict(out.qc_stats), out.quarantine),
        "sources": {chunk_key(out.chunk): {
            "uri": out.chunk.uri,
            "source_index": out.chunk.source_index,
            "sha256": out.chunk.sha256,
            "chunks": 1,
            "rows_in": out.rows_in,
            "rows_out": out.table.num_rows,
            "rows_dropped": out.rows_dropped,
            "rows_quarantined": out.rows_quarantined,
            "quarantine_reasons": reasons,
            "errors": [out.error] if out.error else [],
        }},
        "metrics": out.metrics,
    }


def _merge_source(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    merged = {k: a[k] + b[k] for k in ("chunks", "rows_in", "rows_out", "rows_dropped",
                                       "rows_quarantined")}
    reasons = dict(a["quarantine_reasons"])
    for reason, n in b["quarantine_reasons"].items():
        reasons[reason] = reasons.get(reason, 0) + n
    return {**merged, **{k: a[k] for k in ("uri", "source_index") if k in a},
            "sha256": a["sha256"], "quarantine_reasons": reasons,
            "errors": a["errors"] + b["errors"]}


def merge_summaries(summaries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge chunk summaries exactly (associative and commutative)."""
    sources: dict[str, dict[str, Any]] = {}
    metrics: dict[str, Any] = {}
    qc: dict[str, Any] = {}
    for summary in summaries:
        for uri, rec in summary.get("sources", {}).items():
            sources[uri] = _merge_source(sources[uri], rec) if uri in sources else dict(rec)
        if summary.get("metrics"):
            metrics = merge.merge_metrics(metrics, summary["metrics"])
        if summary.get("qc"):
            qc = merge_qc_stats(qc, summary["qc"])
    return {"sources": sources, "metrics": metrics, "qc": qc}


def partitions(table: pa.Table, partition_by: str) -> list[tuple[str, pa.Table]]:
    if partition_by == "none":
        return [("", table)]
    return writer.split_by_period(table, partition_by)


#: a buffer's key: (recipe entry, source sha256, partition)
BufferKey = tuple[int, str, str]
#: a buffer ready to write: its key's parts and its (ordinal, table) slices in ordinal order
Buffered = tuple[int, str, str, list[tuple[int, pa.Table]]]


class FileBuffer:
    """Buffers chunk tables per (recipe entry, source file, partition) until a file's worth is
    reached: two entries reading one file (a staggered grid) never share an output file.

    Memory stays bounded: a file is flushed at its target size, and when everything buffered
    exceeds ``max_buffered_bytes`` the largest buffer is flushed early (a smaller file, never a
    lost row). The compressed size of a buffer is estimated from its in-memory size with the
    compression ratio observed on the files this instance has already written.
    """

    def __init__(self, target_bytes: int, max_buffered_bytes: int) -> None:
        self.target_bytes = target_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.ratio = 0.35  # first guess of parquet bytes / arrow bytes; refined after each file
        self._parts: dict[BufferKey, list[tuple[int, pa.Table]]] = {}
        self._sizes: dict[BufferKey, int] = {}

    def add(self, source_index: int, source_sha256: str, partition: str, ordinal: int,
            table: pa.Table) -> list[Buffered]:
        """Buffer a slice; return the buffers that are ready to be written."""
        key = (source_index, source_sha256, partition)
        self._parts.setdefault(key, []).append((ordinal, table))
        self._sizes[key] = self._sizes.get(key, 0) + table.nbytes
        ready = []
        if self._sizes[key] * self.ratio >= self.target_bytes:
            ready.append(self.pop(key))
        while self._parts and sum(self._sizes.values()) > self.max_buffered_bytes:
            ready.append(self.pop(max(self._sizes, key=self._sizes.__getitem__)))
        return ready

    def pop(self, key: BufferKey) -> Buffered:
        self._sizes.pop(key)
        return (*key, sorted(self._parts.pop(key), key=lambda item: item[0]))

    def drain(self) -> list[Buffered]:
        return [self.pop(key) for key in sorted(self._parts)]

    def observe(self, arrow_bytes: int, file_bytes: int) -> None:
        if arrow_bytes > 0 and file_bytes > 0:
            self.ratio = file_bytes / arrow_bytes


def write_buffer(buffered: Buffered, data_root: str, kv_metadata: Mapping[str, str],
                 options: writer.WriteOptions) -> dict[str, Any]:
    """Write one buffered (entry, source, partition) group as one time-ordered Parquet file."""
    source_index, source_sha256, partition, parts = buffered
    first_ordinal = parts[0][0]
    table = writer.sort_by_time([t for _, t in parts])
    relative = writer.file_name(source_sha256, partition, first_ordinal, 0, entry=source_index)
    written = writer.write_table(table, f"{data_root}/{relative}", kv_metadata=kv_metadata,
                                 options=options)
    time_min = time_max = None
    if "time" in table.column_names and table.column("time").null_count < table.num_rows:
        bounds = pc.min_max(table.column("time"))
        time_min, time_max = bounds["min"].as_py(), bounds["max"].as_py()
    return {
        "path": f"data/{relative}",
        "sha256": written.sha256,
        "content_sha256": written.content_sha256,
        "rows": written.rows,
        "bytes": written.bytes,
        "partition": partition,
        "source_sha256": source_sha256,
        "time_min": time_min.isoformat() if time_min else None,
        "time_max": time_max.isoformat() if time_max else None,
        "arrow_bytes": table.nbytes,
    }
