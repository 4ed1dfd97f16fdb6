"""Beam wiring of a Haina run. PTransforms here only compose; the work is in ``pipelines.beam.steps``.

Shape of the pipeline (an element is a chunk, never a row)::

    Create(chunk specs) -> Reshuffle -> Read -> QC -> Split -> Validate -> Write ─┬─> data files
                                                                │                 │   -> ToList -> files.json
                                                                │                 └─> chunk summaries ─┐
                                                                └─> keys by bucket -> GroupByKey       ├─> Combine
                                                                    -> duplicate counts ───────────────┘   -> summary.json

The key branch exists only when a suite checks compound uniqueness (it needs every chunk's
keys in one place per bucket; see :mod:`expectations.validation.keys`).

On the DirectRunner with several worker threads, a GroupByKey on contiguous chunk ranges
replaces the Reshuffle (see :func:`chunk_ranges`).

Only chunk specs (a few hundred bytes each) cross the Reshuffle; Read, Validate and Write fuse
into one stage, so a chunk's rows go from the connector to a Parquet file without being encoded
or shuffled. Everything a step needs travels in its (picklable) constructor arguments, and all
paths go through Beam's filesystems, so the same pipeline runs on portable runners.
"""
from __future__ import annotations

import collections
import dataclasses
import json
from typing import Any, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

import connectors
from catalog.storage import writer
from connectors.base import ChunkSpec
from pipelines.beam import steps
from pipelines.interrupts import STAGING

NAMESPACE = "haina"


class ChunkOutputCoder(beam.coders.Coder):
    """Pickles chunks when a runner must move them, and sizes them without pickling.

    Beam's element-size counters sample outputs through the coder's ``estimate_size``; the default
    pickle coder would serialise whole Arrow tables just to weigh them (measured: ~6 % of a run).
    """

    _pickle = beam.coders.PickleCoder()

    def encode(self, value):
        return self._pickle.encode(value)

    def decode(self, encoded):
        return self._pickle.decode(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value) -> int:
        return value.table.nbytes + (value.quarantine.nbytes if value.quarantine is not None else 0)


beam.coders.registry.register_coder(steps.ChunkOutput, ChunkOutputCoder)


class ReadChunkFn(beam.DoFn):
    def __init__(self, configs, schemas, dataset_schema):
        self.configs = configs
        self.schemas = schemas
        self.dataset_schema = dataset_schema
        self.chunks = Metrics.counter(NAMESPACE, "chunks")
        self.files = Metrics.counter(NAMESPACE, "source_files")
        self.rows_in = Metrics.counter(NAMESPACE, "rows_in")
        self.rows_out = Metrics.counter(NAMESPACE, "rows_out")
        self.rows_dropped = Metrics.counter(NAMESPACE, "rows_dropped")
        self.rows_quarantined = Metrics.counter(NAMESPACE, "rows_quarantined")
        self.errors = Metrics.counter(NAMESPACE, "chunk_errors")

    def process(self, chunk: ChunkSpec):
        out = steps.read_chunk(chunk, self.configs, self.schemas, self.dataset_schema)
        self.chunks.inc()
        if chunk.ordinal == 0:
            self.files.inc()
        self.rows_in.inc(out.rows_in)
        self.rows_out.inc(out.table.num_rows)
        self.rows_dropped.inc(out.rows_dropped)
        self.rows_quarantined.inc(out.rows_quarantined)
        if out.error:
            self.errors.inc()
        yield out

    def teardown(self):
        # open files are cached per worker between chunks; a long-lived worker (or a driver that
        # runs the DirectRunner in-process, as an Airflow task does) must not keep them open
        connectors.release_all()


class WriteFilesFn(beam.DoFn):
    """Buffers chunks per (source, partition) and writes time-ordered Parquet files.

    Emits a file record per data or quarantine file on the main output and each chunk's summary
    on the ``summary`` output.
    """

    SUMMARY = "summary"

    def __init__(self, staging: str, kv_metadata: dict[str, str], options: writer.WriteOptions,
                 partition_by: str, target_bytes: int, max_buffered_bytes: int):
        self.staging = staging
        self.kv_metadata = kv_metadata
        self.options = options
        self.partition_by = partition_by
        self.target_bytes = target_bytes
        self.max_buffered_bytes = max_buffered_bytes
        self.files_written = Metrics.counter(NAMESPACE, "files_written")
        self.bytes_written = Metrics.counter(NAMESPACE, "bytes_written")

    def start_bundle(self):
        self.buffer = steps.FileBuffer(self.target_bytes, self.max_buffered_bytes)

    def process(self, out: steps.ChunkOutput):
        yield beam.pvalue.TaggedOutput(self.SUMMARY, steps.chunk_summary(out))
        if out.quarantine is not None and out.quarantine.num_rows:
            yield from self._write_quarantine(out)
        if out.table.num_rows == 0:
            return
        for partition, part in steps.partitions(out.table, self.partition_by):
            for ready in self.buffer.add(out.chunk.source_index, out.chunk.sha256, partition,
                                         out.chunk.ordinal, part):
                yield from self._write(ready)

    def finish_bundle(self):
        for ready in self.buffer.drain():
            for record in self._write(ready):
                yield GlobalWindows.windowed_value(record)

    def _write(self, ready):
        """The file's record, or nothing once the run was stopped (it removes its staging)."""
        with STAGING.writing(self.staging) as allowed:
            if not allowed:
                return
            record = steps.write_buffer(ready, f"{self.staging}/data", self.kv_metadata,
                                        self.options)
        self.buffer.observe(record.pop("arrow_bytes"), record["bytes"])
        self.files_written.inc()
        self.bytes_written.inc(record["bytes"])
        yield record

    def _write_quarantine(self, out: steps.ChunkOutput):
        # per recipe entry too: two entries reading one file quarantine apart
        entry = f"-e{out.chunk.source_index}" if out.chunk.source_index else ""
        name = f"quarantine/part-{out.chunk.sha256[:12]}{entry}-{out.chunk.ordinal:06d}.parquet"
        with STAGING.writing(self.staging) as allowed:
            if not allowed:
                return
            written = writer.write_table(
                out.quarantine, f"{self.staging}/{name}", kv_metadata=self.kv_metadata,
                options=writer.WriteOptions(dictionary_columns=("reason", "source_file"),
                                            byte_stream_split_columns=()))
        yield {"path": name, "sha256": written.sha256, "content_sha256": written.content_sha256,
               "rows": written.rows, "bytes": written.bytes, "partition": "quarantine",
               "source_sha256": out.chunk.sha256, "time_min": None, "time_max": None}


class MergeSummariesFn(beam.CombineFn):
    """Exact, associative merge of chunk summaries (row accounting and validation metrics)."""

    def create_accumulator(self):
        return {"sources": {}, "metrics": {}, "qc": {}}

    def add_input(self, accumulator, summary):
        return steps.merge_summaries([accumulator, summary])

    def merge_accumulators(self, accumulators):
        return steps.merge_summaries(accumulators)

    def extract_output(self, accumulator):
        return accumulator


def write_json(value: Any, uri: str, staging: str) -> str:
    with STAGING.writing(staging) as allowed:
        if allowed:
            with FileSystems.create(uri) as handle:
                handle.write(json.dumps(value, sort_keys=True, default=str).encode())
    return uri


#: rows held for writing per process (Arrow bytes), shared out among its worker threads
WRITE_BUFFER_BYTES = 192 * 2**20


@dataclasses.dataclass(frozen=True)
class IngestPlan:
    """Everything the pipeline needs, decided by the driver before it runs."""

    chunks: Sequence[ChunkSpec]
    configs: Sequence[Any]
    schemas: Sequence[pa.Schema]
    dataset_schema: pa.Schema
    checks: Sequence[Any]
    suites: Sequence[dict]
    engine: str
    staging: str
    kv_metadata: dict[str, str]
    write_options: writer.WriteOptions
    partition_by: str
    target_bytes: int
    qc_plan: Any = None
    #: the schema chunks are read into, before QC adds its flag columns
    read_schema: pa.Schema | None = None
    #: bound on rows held for writing per worker (Arrow bytes): bounds a run's memory
    max_buffered_bytes: int = WRITE_BUFFER_BYTES
    #: the recipe's ``splits:`` section (pipelines.splits.SplitConfig) or None
    splits: Any = None
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


def _keyed_by_range(chunk: ChunkSpec, ranges: dict[str, int], counts: dict[str, int]) -> tuple:
    key = steps.chunk_key(chunk)
    position = chunk.ordinal * ranges[key] // max(counts[key], 1)
    return (chunk.source_index, chunk.uri, position), chunk


def _in_order(keyed) -> list[ChunkSpec]:
    return sorted(keyed[1], key=lambda chunk: chunk.ordinal)


@dataclasses.dataclass
class Ingest(beam.PTransform):
    """Chunks in, Parquet files and a run summary (as JSON in the staging folder) out."""

    plan: IngestPlan

    def expand(self, pbegin):
        plan = self.plan
        chunks = pbegin | "CreateChunks" >> beam.Create(list(plan.chunks))
        if plan.workers > 1:
            # the DirectRunner deals the groups out to its workers round-robin, in this order
            chunks = (chunks
                      | "KeyByRange" >> beam.Map(_keyed_by_range,
                                                 chunk_ranges(plan.chunks, plan.workers),
                                                 chunks_per_source(plan.chunks))
                      | "GroupRanges" >> beam.GroupByKey()
                      | "InChunkOrder" >> beam.FlatMap(_in_order))
        else:
            chunks = chunks | "Distribute" >> beam.Reshuffle()
        validated = (
            chunks
            | "Read" >> beam.ParDo(ReadChunkFn(plan.configs, plan.schemas,
                                               plan.read_schema or plan.dataset_schema))
            .with_output_types(steps.ChunkOutput)
            | "QC" >> beam.Map(steps.qc_chunk, plan.qc_plan, plan.dataset_schema)
            .with_output_types(steps.ChunkOutput)
            | "Split" >> beam.Map(steps.split_chunk, plan.splits)
            .with_output_types(steps.ChunkOutput)
            | "Validate" >> beam.Map(steps.validate_chunk, plan.checks, plan.suites, plan.engine)
            .with_output_types(steps.ChunkOutput)
        )
        outputs = (
            validated
            | "Write" >> beam.ParDo(WriteFilesFn(
                plan.staging, plan.kv_metadata, plan.write_options, plan.partition_by,
                plan.target_bytes, plan.max_buffered_bytes,
            )).with_outputs(WriteFilesFn.SUMMARY, main="files")
        )
        files = (
            outputs.files
            | "CollectFiles" >> beam.combiners.ToList()
            | "WriteFileList" >> beam.Map(write_json, f"{plan.staging}/files.json", plan.staging)
        )
        summaries = outputs[WriteFilesFn.SUMMARY]
        unique = {c.id: c for c in plan.checks if c.family == "compound"}
        if unique:
            # a key is unique only across all chunks: each chunk's keys go, by a stable hash
            # bucket, to one place where equal keys meet (engine.duplicate_metrics)
            duplicates = (
                validated
                | "KeysByBucket" >> beam.FlatMap(steps.chunk_keys, tuple(unique.values()))
                | "GroupKeys" >> beam.GroupByKey()
                | "CountDuplicates" >> beam.Map(steps.duplicates_summary, unique)
            )
            summaries = (summaries, duplicates) | "AllSummaries" >> beam.Flatten()
        summary = (
            summaries
            | "MergeSummaries" >> beam.CombineGlobally(MergeSummariesFn())
            | "WriteSummary" >> beam.Map(write_json, f"{plan.staging}/summary.json", plan.staging)
        )
        return files, summary
