"""Parquet writing for the warehouse: pure functions over Arrow tables, no Beam transforms.

Paths go through Beam's ``FileSystems`` so that the same call writes a local file on the
DirectRunner and an object on GCS/S3 from a Dataflow worker. Every file is hashed while it is
written (the bytes pass through a SHA-256 on their way out), so a checksum never costs a second
read of the file.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from catalog.exceptions import WriterError
from catalog.storage.files import HashingWriter
from catalog.store import FileRecord

#: partition of rows whose ``time`` is null (the name Hive and Spark use)
NULL_PARTITION = "date=__HIVE_DEFAULT_PARTITION__"
#: footer keys every data file must carry so that a file alone says where it belongs
REQUIRED_KEYS = ("haina.dataset", "haina.version", "haina.run_id")
#: the output stream batches pyarrow's many small writes (page headers are a few bytes) into
#: chunks of this size, so the Python-level hashing sink is called rarely
STREAM_BUFFER_BYTES = 4 * 1024 * 1024
_TICKS_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
_HEX = re.compile(r"^[0-9a-f]{12,}$")


@dataclasses.dataclass(frozen=True)
class WriteOptions:
    """How data files are encoded. Columns named here but absent from a table are ignored."""

    compression: str = "zstd"
    compression_level: int | None = 3
    row_group_rows: int = 1_000_000
    #: low-cardinality columns: coordinates repeat across a grid's cells, the URI in every row
    dictionary_columns: tuple[str, ...] = (
        "time", "depth", "latitude", "longitude", "source_file", "platform_id", "station_id")
    #: float columns stored BYTE_STREAM_SPLIT (better zstd ratios on measured values);
    #: None means every float32/float64 column not in ``dictionary_columns``
    byte_stream_split_columns: tuple[str, ...] | None = None

    @classmethod
    def from_output(cls, output: Any) -> WriteOptions:
        """Build from the recipe's ``output:`` section (``catalog.config.OutputConfig``)."""
        return cls(compression=output.compression, compression_level=output.compression_level,
                   row_group_rows=output.row_group_rows)


@dataclasses.dataclass(frozen=True)
class WrittenFile:
    """What writing one file produced; :meth:`record` turns it into a catalog ``FileRecord``."""

    uri: str
    rows: int
    bytes: int
    sha256: str
    time_min: dt.datetime | None = None
    time_max: dt.datetime | None = None
    #: sha256 of the bytes before the Parquet footer: the row groups only. Equal rows written
    #: with equal options give equal content hashes, whatever the footer's metadata (version id,
    #: run id) says, which is what makes re-runs comparable.
    content_sha256: str | None = None

    def record(self, path: str, partition: str, source_sha256: str) -> FileRecord:
        return FileRecord(path=path, sha256=self.sha256, rows=self.rows, bytes=self.bytes,
                          partition=partition, source_sha256=source_sha256,
                          time_min=self.time_min, time_max=self.time_max,
                          content_sha256=self.content_sha256)


# --- footer metadata -------------------------------------------------------------------------
def footer_metadata(dataset: str, version_id: str, run_id: str, **extra: str) -> dict[str, str]:
    """The key-value metadata every data file carries (``extra`` keys get the haina. prefix)."""
    return {"haina.dataset": dataset, "haina.version": version_id, "haina.run_id": run_id,
            **{f"haina.{k}": v for k, v in extra.items()}}


def columns_metadata(schema: pa.Schema) -> dict[str, dict[str, str]]:
    """Per-column CF attributes from the ``haina.*`` field metadata (see ``ColumnInfo``)."""
    out = {}
    for field in schema:
        meta = field.metadata or {}
        out[field.name] = {k.decode().removeprefix("haina."): v.decode() for k, v in meta.items()
                           if k.startswith(b"haina.")}
    return out


def _merged_schema_metadata(schema: pa.Schema, kv_metadata: Mapping[str, str]) -> dict:
    missing = [k for k in REQUIRED_KEYS if k not in kv_metadata]
    if missing:
        raise WriterError(f"footer metadata lacks {missing}", where="write_table",
                          fix="build kv_metadata with catalog.storage.writer.footer_metadata()")
    merged = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()}
    merged["haina.columns"] = json.dumps(columns_metadata(schema), sort_keys=True)
    merged.update(kv_metadata)
    return merged


# --- encodings -------------------------------------------------------------------------------
def _encodings(schema: pa.Schema, options: WriteOptions) -> tuple[list[str], dict[str, str]]:
    names = set(schema.names)
    chosen = options.byte_stream_split_columns
    if chosen is None:
        chosen = tuple(f.name for f in schema
                       if (pa.types.is_float32(f.type) or pa.types.is_float64(f.type))
                       and f.name not in options.dictionary_columns)
    bss = [c for c in chosen if c in names]
    # pyarrow refuses a column that is both dictionary-encoded and given a column_encoding
    dictionary = [c for c in options.dictionary_columns if c in names and c not in bss]
    return dictionary, dict.fromkeys(bss, "BYTE_STREAM_SPLIT")


def _writer_kwargs(schema: pa.Schema, options: WriteOptions) -> dict[str, Any]:
    dictionary, column_encoding = _encodings(schema, options)
    kwargs: dict[str, Any] = {"compression": options.compression, "use_dictionary": dictionary,
                              "write_statistics": True}
    if column_encoding:
        kwargs["column_encoding"] = column_encoding
    if options.compression_level is not None and options.compression not in ("none", "snappy"):
        kwargs["compression_level"] = options.compression_level
    return kwargs


# --- writing ---------------------------------------------------------------------------------
def write_table(table: pa.Table, uri: str, *, kv_metadata: Mapping[str, str],
                options: WriteOptions = WriteOptions()) -> WrittenFile:
    """Write ``table`` as one Parquet file at ``uri``, hashing the bytes as they go out."""
    table = table.replace_schema_metadata(_merged_schema_metadata(table.schema, kv_metadata))
    kwargs = _writer_kwargs(table.schema, options)
    encoded, footer = _constant_as_dictionary(table, kwargs["use_dictionary"])
    if footer is not None:
        kwargs["store_schema"] = False  # the footer gets the original schema (added below)
    sink = HashingWriter(FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED))
    try:
        with pa.output_stream(sink, buffer_size=STREAM_BUFFER_BYTES) as stream:
            with pq.ParquetWriter(stream, encoded.schema, **kwargs) as writer:
                writer.write_table(encoded, row_group_size=options.row_group_rows)
                if footer is not None:
                    writer.add_key_value_metadata(footer)
                # row groups are complete; only the footer is still to come
                stream.flush()
                content_sha256 = sink.snapshot()
    except (OSError, pa.ArrowException, ValueError, TypeError) as err:
        sink.close()
        _remove_partial(uri)
        raise WriterError(f"could not write Parquet file ({err})", where=uri,
                          fix="check the table's schema against the write options and that "
                              "the destination is writable") from err
    sink.close()
    tmin, tmax = time_range(table)
    return WrittenFile(uri=uri, rows=table.num_rows, bytes=sink.size, sha256=sink.hexdigest(),
                       time_min=tmin, time_max=tmax, content_sha256=content_sha256)


def _constant_as_dictionary(table: pa.Table, dictionary: Sequence[str]
                            ) -> tuple[pa.Table, dict[str, str] | None]:
    """``table`` with its constant dictionary-encoded string columns as Arrow dictionaries.

    A file's ``source_file`` (and a station file's ``station_id``) holds one value. Parquet's
    dictionary encoder would hash every row's string to find that out (7 ms of a 38 ms write
    on the benchmark grid); handed a one-entry Arrow dictionary it writes the same pages
    directly. The footer keeps the table's own schema, with the column as a string, so the
    file is byte for byte the one the string column gives. Returns the table to write and
    the footer's key-value metadata (None when no column qualifies; write as usual).
    """
    constant = {name: _constant_value(table.column(name)) for name in dictionary
                if pa.types.is_string(table.schema.field(name).type)}
    constant = {name: value for name, value in constant.items() if value is not None}
    if not constant:
        return table, None
    encoded = table
    for name, value in constant.items():
        index = encoded.schema.get_field_index(name)
        values = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(table.num_rows, dtype=np.int32)), pa.array([value], pa.string()))
        field = encoded.schema.field(index)
        encoded = encoded.set_column(index, field.with_type(values.type), values)
    footer = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    footer["ARROW:schema"] = base64.b64encode(table.schema.serialize().to_pybytes()).decode()
    return encoded.replace_schema_metadata(None), footer


def _constant_value(column: pa.ChunkedArray) -> str | None:
    """The value of a column that holds one non-null value in every row, else None (a length
    check first: different strings usually differ in length, and that costs nothing)."""
    if len(column) == 0 or column.null_count:
        return None
    lengths = pc.min_max(pc.binary_length(column))
    if lengths["min"].as_py() != lengths["max"].as_py():
        return None
    first = column[0]
    return first.as_py() if pc.all(pc.equal(column, first)).as_py() else None


def _remove_partial(uri: str) -> None:
    # a half-written file must not be mistaken for output; it is in staging, so a failure to
    # delete it only costs space until gc
    try:
        if FileSystems.exists(uri):
            FileSystems.delete([uri])
    except OSError:
        pass


def time_range(table: pa.Table) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Min and max of the ``time`` column as UTC datetimes (None when absent or all null)."""
    if "time" not in table.schema.names:
        return None, None
    col = table.column("time")
    if not pa.types.is_timestamp(col.type):
        return None, None
    ticks = pc.min_max(col.cast(pa.int64()))
    if not ticks["min"].is_valid:
        return None, None
    unit = col.type.unit
    return (_tick_to_datetime(ticks["min"].as_py(), unit),
            _tick_to_datetime(ticks["max"].as_py(), unit))


def _tick_to_datetime(value: int, unit: str) -> dt.datetime:
    # integer arithmetic: nanoseconds truncate to the microseconds a datetime can hold
    micros = value * 1_000_000 // (_TICKS_PER_DAY[unit] // 86_400)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)


# --- partitioning and ordering ---------------------------------------------------------------
def _time_ticks(table: pa.Table, where: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``time`` as int64 ticks (nulls as 0), its validity mask, and its unit."""
    if "time" not in table.schema.names:
        raise WriterError("table has no 'time' column", where=where,
                          fix="partition or sort only tables in the observation schema")
    col = table.column("time")
    if not pa.types.is_timestamp(col.type):
        raise WriterError(f"column 'time' is {col.type}, not a timestamp", where=where,
                          fix="convert time to timestamp[us, tz=UTC] in the connector")
    ticks = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
    valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
    return ticks, valid, col.type.unit


#: partition key -> NumPy calendar unit of its folders
PERIODS: dict[str, Literal["D", "M", "Y"]] = {"date": "D", "month": "M", "year": "Y"}


def split_by_date(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """Split by the UTC date of ``time`` into ``("date=YYYY-MM-DD", rows)``, dates ascending."""
    return split_by_period(table, "date")


def split_by_period(table: pa.Table, period: str = "date") -> list[tuple[str, pa.Table]]:
    """Split by the UTC date, month or year of ``time`` (``PERIODS``), periods ascending.

    Folders are ``date=YYYY-MM-DD``, ``month=YYYY-MM`` or ``year=YYYY``. Rows keep their input
    order within a partition; null times go to ``<period>=__HIVE_DEFAULT_PARTITION__`` (last).
    Vectorised: one stable argsort of the period numbers, then one ``take`` per partition.
    """
    if period not in PERIODS:
        raise WriterError(f"unknown partition period {period!r}", where="split_by_period",
                          fix=f"use one of {sorted(PERIODS)}")
    if table.num_rows == 0:
        return []
    ticks, valid, unit = _time_ticks(table, "split_by_period")
    # floor division keeps times before 1970 on the right day; nulls sort after every period
    days = np.floor_divide(ticks, _TICKS_PER_DAY[unit])
    if period != "date":
        days = days.astype("datetime64[D]").astype(f"datetime64[{PERIODS[period]}]").view(np.int64)
    keys = np.where(valid, days, np.iinfo(np.int64).max)
    if keys.min() == keys.max():  # the common case of a chunk within one period: no copy
        return [(_partition_name(keys[0], period), table)]
    order = np.argsort(keys, kind="stable")
    values, starts = np.unique(keys[order], return_index=True)
    groups = np.split(order, starts[1:])
    return [(_partition_name(k, period), table.take(idx))
            for k, idx in zip(values, groups, strict=True)]


def _partition_name(key: np.int64, period: str = "date") -> str:
    if key == np.iinfo(np.int64).max:
        return f"{period}=__HIVE_DEFAULT_PARTITION__"
    return f"{period}={np.datetime64(int(key), PERIODS[period])}"


@dataclasses.dataclass(frozen=True)
class _Span:
    first: int
    last: int
    ordered: bool  # ascending and without nulls


def _span(table: pa.Table) -> _Span:
    ticks, valid, _ = _time_ticks(table, "sort_by_time")
    ordered = bool(valid.all()) and bool(np.all(ticks[1:] >= ticks[:-1]))
    return _Span(int(ticks[0]), int(ticks[-1]), ordered)


def _chained(spans: Sequence[_Span], order: Sequence[int]) -> bool:
    # Concatenating in `order` equals a stable sort when each table ends before the next starts;
    # a tie at the seam is fine only if the earlier table also came earlier in the input.
    return all(spans[a].last < spans[b].first or (spans[a].last == spans[b].first and a < b)
               for a, b in zip(order, order[1:], strict=False))  # consecutive pairs


def sort_by_time(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate and order by ``time`` (stable; null times last).

    Cheap path: when every table is already sorted and, ordered by their first time, they do not
    overlap, the result is a concatenation (no row is copied). Otherwise one stable sort.
    """
    if not tables:
        raise WriterError("no tables to sort", where="sort_by_time",
                          fix="pass at least one (possibly empty) table")
    nonempty = [t for t in tables if t.num_rows] or [tables[0]]
    if len(nonempty) == 1 and nonempty[0].num_rows == 0:
        return nonempty[0]
    spans = [_span(t) for t in nonempty]  # one vectorised check per table
    order = sorted(range(len(nonempty)), key=lambda i: (spans[i].first, i))
    if all(s.ordered for s in spans) and _chained(spans, order):
        return _concat([nonempty[i] for i in order])
    combined = _concat(nonempty)
    # Arrow's sort_indices is a stable sort and puts nulls at the end by default (the
    # null_placement argument moved into sort_keys in pyarrow 25, so it is left at its default)
    indices = pc.sort_indices(combined, sort_keys=[("time", "ascending")])
    return combined.take(indices)


def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid as err:
        raise WriterError(f"tables do not share one schema ({err})", where="sort_by_time",
                          fix="cast every chunk to the plan's schema before combining") from err


def file_name(source_sha256: str, partition: str, first_ordinal: int, seq: int,
              entry: int = 0) -> str:
    """Deterministic relative path of a data file, e.g.
    ``date=2024-01-01/part-3f9a1c0b2d4e-000007-000.parquet`` (no folder when ``partition`` is "").

    The same source, chunk and sequence always give the same name, so a retried worker
    overwrites its own output instead of adding a duplicate. ``entry`` is the recipe's
    ``sources[]`` index: a later entry reading the same file (a staggered grid) writes
    ``part-<sha>-e<entry>-...``; entry 0 keeps the name earlier versions used.
    """
    if not _HEX.match(source_sha256):
        raise WriterError(f"source sha256 {source_sha256!r} is not lowercase hex of 12+ digits",
                          where="file_name", fix="pass the source's sha256 hexdigest")
    if "/" in partition or partition in (".", ".."):
        raise WriterError(f"partition {partition!r} is not a single folder name",
                          where="file_name", fix="pass e.g. 'date=2024-01-01' or ''")
    if first_ordinal < 0 or seq < 0 or entry < 0:
        raise WriterError(f"ordinal {first_ordinal}, seq {seq} and entry {entry} must be >= 0",
                          where="file_name", fix="pass the chunk ordinal and file sequence")
    tag = f"-e{entry}" if entry else ""
    name = f"part-{source_sha256[:12]}{tag}-{first_ordinal:06d}-{seq:03d}.parquet"
    return f"{partition}/{name}" if partition else name
