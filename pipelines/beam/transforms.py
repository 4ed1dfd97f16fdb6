"""Beam wiring of a Haina run. PTransforms here only compose; the work is in ``pipelines.beam.steps``.

Shape of the pipeline (an element is a chunk, never a row)::

    Distribute(chunk specs) -> Read -> QC -> Split -> Validate -> Write ─┬─> data files
                                                       │                 │   -> CollectFiles -> files.json
                                                       │                 └─> chunk summaries ─┐
                                                       └─> CountDuplicates ───────────────────┴─> Summarize
                                                                                                  -> summary.json

Each box is a small composite below; :class:`Ingest` composes them. ``CountDuplicates`` exists
only when a suite checks compound uniqueness (it needs every chunk's keys in one place per
bucket; see :mod:`expectations.validation.keys`).

On the DirectRunner with several worker threads, a GroupByKey on contiguous chunk ranges
replaces the Reshuffle (see :func:`chunk_ranges`).

Only chunk specs (a few hundred bytes each) cross the Reshuffle; Read, QC, Split, Validate and
Write fuse into one stage, so a chunk's rows go from the connector to a Parquet file without
being encoded or shuffled. Everything a step needs travels in its (picklable) constructor
arguments, and all paths go through Beam's filesystems, so the same pipeline runs on portable
runners.

Every step counts what passes through it with Beam counters in the namespace ``haina``, named
``<step>.<measure>`` (``read.rows_in``, ``qc.rows_quarantined``, ``write.bytes_written``, ...):
see :data:`COUNTERS`.
"""
from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricResults, MetricsFilter
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

import connectors
from catalog.storage import writer
from connectors.base import ChunkSpec
from connectors.config import SourceConfig
from expectations.qc.plan import QCPlan
from expectations.validation.checks import Check
from pipelines.beam import steps
from pipelines.interrupts import STAGING
from pipelines.splits import SplitConfig

NAMESPACE = "haina"

#: the counters each step keeps, as ``<step>.<measure>`` in :data:`NAMESPACE`
COUNTERS = {
    "read": ("chunks_in", "chunks_out", "source_files", "rows_in", "rows_out", "rows_dropped",
             "rows_quarantined", "chunk_errors"),
    "qc": ("chunks_in", "chunks_out", "rows_in", "rows_out", "rows_quarantined"),
    "split": ("chunks_in", "chunks_out", "rows_in", "rows_out", "rows_quarantined"),
    "validate": ("chunks_in", "chunks_out", "rows_in", "rows_out", "rows_quarantined"),
    "write": ("chunks_in", "rows_in", "files_written", "rows_written", "bytes_written",
              "quarantine_files", "quarantine_rows", "quarantine_bytes"),
    "duplicates": ("chunks_in", "key_parts", "buckets", "duplicates"),
    "summarize": ("summaries_in", "json_files", "json_bytes"),
    "collect_files": ("files_in", "json_files", "json_bytes"),
}


def counter(step: str, measure: str) -> Metrics.DelegatingCounter:
    """The Beam counter of one step's measure (see :data:`COUNTERS`)."""
    return Metrics.counter(NAMESPACE, f"{step}.{measure}")


def counter_totals(metrics: MetricResults) -> dict[str, int]:
    """Every ``haina`` counter of a finished pipeline, summed over its steps' labels.

    Committed values where the runner reports them, else attempted ones (the DirectRunner
    commits; some portable runners only attempt)."""
    totals: dict[str, int] = {}
    for result in metrics.query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        value = result.committed if result.committed is not None else result.attempted
        totals[result.key.metric.name] = totals.get(result.key.metric.name, 0) + (value or 0)
    return totals


class ChunkOutputCoder(beam.coders.Coder):
    """Pickles chunks when a runner must move them, and sizes them without pickling.

    Beam's element-size counters sample outputs through the coder's ``estimate_size``; the default
    pickle coder would serialise whole Arrow tables just to weigh them (measured: ~6 % of a run).
    """

    _pickle = beam.coders.PickleCoder()

    def encode(self, value: steps.ChunkOutput) -> bytes:
        return self._pickle.encode(value)

    def decode(self, encoded: bytes) -> steps.ChunkOutput:
        return self._pickle.decode(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: steps.ChunkOutput) -> int:
        return value.table.nbytes + (value.quarantine.nbytes if value.quarantine is not None else 0)


beam.coders.registry.register_coder(steps.ChunkOutput, ChunkOutputCoder)


#: rows held for writing per process (Arrow bytes), shared out among its worker threads
WRITE_BUFFER_BYTES = 192 * 2**20


@dataclasses.dataclass(frozen=True)
class IngestPlan:
    """Everything the pipeline needs, decided by the driver before it runs (picklable)."""

    chunks: tuple[ChunkSpec, ...]
    configs: tuple[SourceConfig, ...]
    #: each source file's schema as its connector planned it, by :func:`steps.chunk_key`
    schemas: Mapping[str, pa.Schema]
    dataset_schema: pa.Schema
    checks: tuple[Check, ...]
    suites: tuple[steps.Suite, ...]
    engine: str
    staging: str
    kv_metadata: Mapping[str, str]
    write_options: writer.WriteOptions
    partition_by: str
    target_bytes: int
    qc_plan: QCPlan | None = None
    #: the schema chunks are read into, before QC adds its flag columns
    read_schema: pa.Schema | None = None
    #: bound on rows held for writing per worker (Arrow bytes): bounds a run's memory
    max_buffered_bytes: int = WRITE_BUFFER_BYTES
    #: the recipe's ``splits:`` section, or None: no split column
    splits: SplitConfig | None = None
    #: DirectRunner worker threads: > 1 hands each worker contiguous ranges of chunks (see
    #: :func:`chunk_ranges`); 0 lets the runner distribute chunks (portable runners)
    workers: int = 1


#: a source is cut into ranges for several workers only when each range has this many chunks
MIN_CHUNKS_PER_RANGE = 4


def chunk_ranges(chunks: Sequence[ChunkSpec], workers: int) -> dict[str, int]:
    """How many contiguous ranges each source's chunks are cut into (source key -> ranges).

    Each range goes whole, in chunk order, to one worker. Files therefore hold rows of
    consecutive chunks, and which rows share a file depends only on the plan and the worker
    count, not on thread timing: re-runs with the same workers write the same files.
    """
    return {uri: max(1, min(workers, n // MIN_CHUNKS_PER_RANGE))
            for uri, n in chunks_per_source(chunks).items()}


def chunks_per_source(chunks: Sequence[ChunkSpec]) -> dict[str, int]:
    return dict(collections.Counter(steps.chunk_key(chunk) for chunk in chunks))


def _keyed_by_range(chunk: ChunkSpec, ranges: Mapping[str, int], counts: Mapping[str, int]
                    ) -> tuple[tuple[int, str, int], ChunkSpec]:
    key = steps.chunk_key(chunk)
    position = chunk.ordinal * ranges[key] // max(counts[key], 1)
    return (chunk.source_index, chunk.uri, position), chunk


def _in_order(keyed: tuple[Any, Iterable[ChunkSpec]]) -> list[ChunkSpec]:
    return sorted(keyed[1], key=lambda chunk: chunk.ordinal)


# -- DoFns: a step function and its counters ----------------------------------------------------

class ReadChunkFn(beam.DoFn):
    """:func:`steps.read_chunk`, counted; closes the connectors' cached files at teardown."""

    def __init__(self, configs: Sequence[SourceConfig], schemas: Mapping[str, pa.Schema],
                 dataset_schema: pa.Schema) -> None:
        self.configs = configs
        self.schemas = schemas
        self.dataset_schema = dataset_schema
        self.counters = {name: counter("read", name) for name in COUNTERS["read"]}

    def process(self, chunk: ChunkSpec) -> Iterator[steps.ChunkOutput]:
        out = steps.read_chunk(chunk, self.configs, self.schemas, self.dataset_schema)
        c = self.counters
        c["chunks_in"].inc()
        c["chunks_out"].inc()
        if chunk.ordinal == 0:
            c["source_files"].inc()
        c["rows_in"].inc(out.rows_in)
        c["rows_out"].inc(out.table.num_rows)
        c["rows_dropped"].inc(out.rows_dropped)
        c["rows_quarantined"].inc(out.rows_quarantined)
        if out.error:
            c["chunk_errors"].inc()
        yield out

    def teardown(self) -> None:
        # open files are cached per worker between chunks; a long-lived worker (or a driver that
        # runs the DirectRunner in-process, as an Airflow task does) must not keep them open
        connectors.release_all()


class ChunkStepFn(beam.DoFn):
    """One chunk-to-chunk step function, with the chunks and rows it takes in and gives out
    and the rows it sends to quarantine counted under the step's name."""

    def __init__(self, step: str, fn: Callable[..., steps.ChunkOutput], *args: Any) -> None:
        self.fn = fn
        self.args = args
        self.counters = {name: counter(step, name) for name in COUNTERS[step]}

    def process(self, out: steps.ChunkOutput) -> Iterator[steps.ChunkOutput]:
        new = self.fn(out, *self.args)
        c = self.counters
        c["chunks_in"].inc()
        c["chunks_out"].inc()
        c["rows_in"].inc(out.table.num_rows)
        c["rows_out"].inc(new.table.num_rows)
        c["rows_quarantined"].inc(new.rows_quarantined - out.rows_quarantined)
        yield new


class WriteFilesFn(beam.DoFn):
    """Buffers chunks per (source, partition) and writes time-ordered Parquet files.

    Emits a file record per data or quarantine file on the main output and each chunk's summary
    on the ``summary`` output.
    """

    SUMMARY = "summary"

    def __init__(self, staging: str, kv_metadata: Mapping[str, str],
                 options: writer.WriteOptions, partition_by: str, target_bytes: int,
                 max_buffered_bytes: int) -> None:
        self.staging = staging
        self.kv_metadata = kv_metadata
        self.options = options
        self.partition_by = partition_by
        self.target_bytes = target_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.counters = {name: counter("write", name) for name in COUNTERS["write"]}

    def start_bundle(self) -> None:
        self.buffer = steps.FileBuffer(self.target_bytes, self.max_buffered_bytes)

    def process(self, out: steps.ChunkOutput) -> Iterator[Any]:
        self.counters["chunks_in"].inc()
        self.counters["rows_in"].inc(out.table.num_rows)
        yield beam.pvalue.TaggedOutput(self.SUMMARY, steps.chunk_summary(out))
        if out.quarantine is not None and out.quarantine.num_rows:
            yield from self._write_quarantine(out.chunk, out.quarantine)
        if out.table.num_rows == 0:
            return
        for partition, part in steps.partitions(out.table, self.partition_by):
            for ready in self.buffer.add(out.chunk.source_index, out.chunk.sha256, partition,
                                         out.chunk.ordinal, part):
                yield from self._write(ready)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for ready in self.buffer.drain():
            for record in self._write(ready):
                yield GlobalWindows.windowed_value(record)

    def _write(self, ready: steps.Buffered) -> Iterator[dict[str, Any]]:
        """The file's record, or nothing once the run was stopped (it removes its staging)."""
        with STAGING.writing(self.staging) as allowed:
            if not allowed:
                return
            record = steps.write_buffer(ready, f"{self.staging}/data", self.kv_metadata,
                                        self.options)
        self.buffer.observe(record.pop("arrow_bytes"), record["bytes"])
        self.counters["files_written"].inc()
        self.counters["rows_written"].inc(record["rows"])
        self.counters["bytes_written"].inc(record["bytes"])
        yield record

    def _write_quarantine(self, chunk: ChunkSpec, quarantine: pa.Table
                          ) -> Iterator[dict[str, Any]]:
        # per recipe entry too: two entries reading one file quarantine apart
        entry = f"-e{chunk.source_index}" if chunk.source_index else ""
        name = f"quarantine/part-{chunk.sha256[:12]}{entry}-{chunk.ordinal:06d}.parquet"
        with STAGING.writing(self.staging) as allowed:
            if not allowed:
                return
            written = writer.write_table(
                quarantine, f"{self.staging}/{name}", kv_metadata=self.kv_metadata,
                options=writer.WriteOptions(dictionary_columns=("reason", "source_file"),
                                            byte_stream_split_columns=()))
        self.counters["quarantine_files"].inc()
        self.counters["quarantine_rows"].inc(written.rows)
        self.counters["quarantine_bytes"].inc(written.bytes)
        yield {"path": name, "sha256": written.sha256, "content_sha256": written.content_sha256,
               "rows": written.rows, "bytes": written.bytes, "partition": "quarantine",
               "source_sha256": chunk.sha256, "time_min": None, "time_max": None}


class ChunkKeysFn(beam.DoFn):
    """:func:`steps.chunk_keys`, counting the chunks and the key parts it emits."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = checks
        self.chunks_in = counter("duplicates", "chunks_in")
        self.key_parts = counter("duplicates", "key_parts")

    def process(self, out: steps.ChunkOutput) -> Iterator[steps.KeyedKeys]:
        parts = steps.chunk_keys(out, self.checks)
        self.chunks_in.inc()
        self.key_parts.inc(len(parts))
        yield from parts


class DuplicatesFn(beam.DoFn):
    """:func:`steps.duplicates_summary` of one bucket, counting buckets and duplicated rows."""

    def __init__(self, checks: Mapping[str, Check]) -> None:
        self.checks = checks
        self.buckets = counter("duplicates", "buckets")
        self.duplicates = counter("duplicates", "duplicates")

    def process(self, keyed: tuple[tuple[str, int], Iterable[Any]]) -> Iterator[dict[str, Any]]:
        summary = steps.duplicates_summary(keyed, self.checks)
        self.buckets.inc()
        self.duplicates.inc(steps.duplicates_found(summary))
        yield summary


class CountFn(beam.DoFn):
    """Passes elements through, counting them (the input side of a combine)."""

    def __init__(self, step: str, measure: str) -> None:
        self.count = counter(step, measure)

    def process(self, element: Any) -> Iterator[Any]:
        self.count.inc()
        yield element


class WriteJsonFn(beam.DoFn):
    """Writes the element as JSON at ``uri`` (unless the run was stopped); emits the URI."""

    def __init__(self, step: str, uri: str, staging: str) -> None:
        self.uri = uri
        self.staging = staging
        self.files = counter(step, "json_files")
        self.bytes = counter(step, "json_bytes")

    def process(self, value: Any) -> Iterator[str]:
        written = write_json(value, self.uri, self.staging)
        if written is not None:
            self.files.inc()
            self.bytes.inc(written)
        yield self.uri


def write_json(value: Any, uri: str, staging: str) -> int | None:
    """Write ``value`` as JSON at ``uri``: the bytes written, or None once the run was stopped
    (it removes its staging)."""
    data = json.dumps(value, sort_keys=True, default=str).encode()
    with STAGING.writing(staging) as allowed:
        if not allowed:
            return None
        with FileSystems.create(uri) as handle:
            handle.write(data)
    return len(data)


class MergeSummariesFn(beam.CombineFn):
    """Exact, associative merge of chunk summaries (row accounting and validation metrics)."""

    def create_accumulator(self) -> dict[str, Any]:
        return {"sources": {}, "metrics": {}, "qc": {}}

    def add_input(self, accumulator: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        return steps.merge_summaries([accumulator, summary])

    def merge_accumulators(self, accumulators: Iterable[dict[str, Any]]) -> dict[str, Any]:
        return steps.merge_summaries(accumulators)

    def extract_output(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


# -- composites: wiring only --------------------------------------------------------------------

@dataclasses.dataclass
class Distribute(beam.PTransform):
    """Chunk specs in, spread over the workers: whole contiguous ranges per worker thread on
    the DirectRunner (``workers`` > 1), else a Reshuffle."""

    chunks: Sequence[ChunkSpec]
    workers: int

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        chunks = pbegin | "CreateChunks" >> beam.Create(list(self.chunks))
        if self.workers <= 1:
            return chunks | "Distribute" >> beam.Reshuffle()
        # the DirectRunner deals the groups out to its workers round-robin, in this order
        return (chunks
                | "KeyByRange" >> beam.Map(_keyed_by_range,
                                           chunk_ranges(self.chunks, self.workers),
                                           chunks_per_source(self.chunks))
                | "GroupRanges" >> beam.GroupByKey()
                | "InChunkOrder" >> beam.FlatMap(_in_order))


@dataclasses.dataclass
class Read(beam.PTransform):
    """Chunk specs in, chunks of rows in ``schema`` out (connector errors as data)."""

    configs: Sequence[SourceConfig]
    schemas: Mapping[str, pa.Schema]
    schema: pa.Schema

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        return chunks | "ReadChunk" >> beam.ParDo(
            ReadChunkFn(self.configs, self.schemas, self.schema)
        ).with_output_types(steps.ChunkOutput)


@dataclasses.dataclass
class QC(beam.PTransform):
    """QARTOD flag columns added; rows a hard test fails moved to the chunk's quarantine."""

    plan: QCPlan | None
    schema: pa.Schema

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        return chunks | "QCChunk" >> beam.ParDo(
            ChunkStepFn("qc", steps.qc_chunk, self.plan, self.schema)
        ).with_output_types(steps.ChunkOutput)


@dataclasses.dataclass
class Split(beam.PTransform):
    """The ``split`` column filled from each row's group key (none without a config)."""

    config: SplitConfig | None

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        return chunks | "SplitChunk" >> beam.ParDo(
            ChunkStepFn("split", steps.split_chunk, self.config)
        ).with_output_types(steps.ChunkOutput)


@dataclasses.dataclass
class Validate(beam.PTransform):
    """Each chunk's exact, mergeable validation metrics attached."""

    checks: Sequence[Check]
    suites: Sequence[steps.Suite]
    engine: str

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        return chunks | "ValidateChunk" >> beam.ParDo(
            ChunkStepFn("validate", steps.validate_chunk, self.checks, self.suites, self.engine)
        ).with_output_types(steps.ChunkOutput)


@dataclasses.dataclass
class Write(beam.PTransform):
    """Chunks in; file records (main output ``files``) and chunk summaries (``summary``) out."""

    staging: str
    kv_metadata: Mapping[str, str]
    options: writer.WriteOptions
    partition_by: str
    target_bytes: int
    max_buffered_bytes: int

    def expand(self, chunks: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return chunks | "WriteFiles" >> beam.ParDo(WriteFilesFn(
            self.staging, self.kv_metadata, self.options, self.partition_by,
            self.target_bytes, self.max_buffered_bytes,
        )).with_outputs(WriteFilesFn.SUMMARY, main="files")


@dataclasses.dataclass
class CountDuplicates(beam.PTransform):
    """Chunks in; one summary part per key bucket holding its exact duplicate count.

    A key is unique only across all chunks: each chunk's keys go, by a stable hash bucket, to
    one place where equal keys meet (this GroupByKey shuffles the key columns of every row)."""

    checks: Mapping[str, Check]

    def expand(self, chunks: beam.PCollection) -> beam.PCollection:
        return (chunks
                | "KeysByBucket" >> beam.ParDo(ChunkKeysFn(tuple(self.checks.values())))
                | "GroupKeys" >> beam.GroupByKey()
                | "CountDuplicates" >> beam.ParDo(DuplicatesFn(self.checks)))


@dataclasses.dataclass
class CollectFiles(beam.PTransform):
    """File records in; the list of them written as ``uri`` (JSON); the URI out."""

    uri: str
    staging: str

    def expand(self, files: beam.PCollection) -> beam.PCollection:
        return (files
                | "CountFiles" >> beam.ParDo(CountFn("collect_files", "files_in"))
                | "ToList" >> beam.combiners.ToList()
                | "WriteFileList" >> beam.ParDo(WriteJsonFn("collect_files", self.uri,
                                                            self.staging)))


@dataclasses.dataclass
class Summarize(beam.PTransform):
    """Summary parts in; their exact merge written as ``uri`` (JSON); the URI out."""

    uri: str
    staging: str

    def expand(self, summaries: beam.PCollection) -> beam.PCollection:
        return (summaries
                | "CountSummaries" >> beam.ParDo(CountFn("summarize", "summaries_in"))
                | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
                | "WriteSummary" >> beam.ParDo(WriteJsonFn("summarize", self.uri,
                                                           self.staging)))


@dataclasses.dataclass
class Ingest(beam.PTransform):
    """Chunks in, Parquet files and a run summary (as JSON in the staging folder) out."""

    plan: IngestPlan

    def expand(self, pbegin: beam.pvalue.PBegin) -> tuple[beam.PCollection, beam.PCollection]:
        plan = self.plan
        validated = (
            pbegin
            | "Distribute" >> Distribute(plan.chunks, plan.workers)
            | "Read" >> Read(plan.configs, plan.schemas, plan.read_schema or plan.dataset_schema)
            | "QC" >> QC(plan.qc_plan, plan.dataset_schema)
            | "Split" >> Split(plan.splits)
            | "Validate" >> Validate(plan.checks, plan.suites, plan.engine)
        )
        outputs = validated | "Write" >> Write(
            plan.staging, plan.kv_metadata, plan.write_options, plan.partition_by,
            plan.target_bytes, plan.max_buffered_bytes)
        files = outputs.files | "CollectFiles" >> CollectFiles(f"{plan.staging}/files.json",
                                                              plan.staging)
        summaries = outputs[WriteFilesFn.SUMMARY]
        unique = {c.id: c for c in plan.checks if c.family == "compound"}
        if unique:
            duplicates = validated | "CountDuplicates" >> CountDuplicates(unique)
            summaries = (summaries, duplicates) | "AllSummaries" >> beam.Flatten()
        summary = summaries | "Summarize" >> Summarize(f"{plan.staging}/summary.json",
                                                       plan.staging)
        return files, summary
