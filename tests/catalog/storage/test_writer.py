"""Parquet writer: round trip, streaming checksum, footer metadata, encodings, file names."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.config import OutputConfig
from catalog.exceptions import WriterError
from catalog.storage.writer import WriteOptions, file_name, footer_metadata, write_table
from connectors.base import ColumnInfo

UTC = dt.UTC
META = footer_metadata("argo_t", "v20240101T000000Z-000000", "r20240101T000000Z-000000")
TEMP = ColumnInfo("sea_water_temperature", "variable", units="degree_Celsius",
                  standard_name="sea_water_temperature", source_name="TEMP",
                  source_units="degC", conversion="identity")


def observations(n: int = 250, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    fields = [
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("depth", pa.float64()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
        pa.field("sea_water_temperature", pa.float32(), metadata=TEMP.metadata()),
        pa.field("sea_water_salinity", pa.float32()),
        pa.field("source_file", pa.string()),
    ]
    return pa.table([
        pa.array(start + np.arange(n) * 60_000_000, pa.timestamp("us", tz="UTC")),
        pa.array(np.tile([0.0, 5.0, 10.0], n)[:n]),
        pa.array(np.full(n, -33.5)),
        pa.array(np.full(n, 151.25)),
        pa.array(rng.normal(15, 2, n).astype(np.float32)),
        pa.array(rng.normal(35, 0.5, n).astype(np.float32)),
        pa.array(["/data/argo.nc"] * n),
    ], schema=pa.schema(fields))


def test_round_trip_and_checksum(tmp_path):
    table = observations()
    uri = str(tmp_path / "date=2024-01-01" / "part.parquet")
    written = write_table(table, uri, kv_metadata=META, options=WriteOptions())
    data = open(uri, "rb").read()
    assert written.sha256 == hashlib.sha256(data).hexdigest()
    assert written.bytes == len(data) and written.rows == 250
    assert written.time_min == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert written.time_max == dt.datetime(2024, 1, 1, 4, 9, tzinfo=UTC)  # 249 minutes later
    back = pq.read_table(uri)
    assert back.equals(table)  # values and types
    assert back.schema.field("sea_water_temperature").metadata == TEMP.metadata()


def test_footer_metadata(tmp_path):
    uri = str(tmp_path / "a.parquet")
    table = observations().replace_schema_metadata({"origin": "test"})
    write_table(table, uri, kv_metadata=META, options=WriteOptions())
    kv = pq.ParquetFile(uri).metadata.metadata
    assert kv[b"haina.dataset"] == b"argo_t"
    assert kv[b"haina.version"] == b"v20240101T000000Z-000000"
    assert kv[b"haina.run_id"] == b"r20240101T000000Z-000000"
    assert kv[b"origin"] == b"test"  # the table's own schema metadata is kept
    columns = json.loads(kv[b"haina.columns"])
    assert columns["sea_water_temperature"] == {
        "role": "variable", "units": "degree_Celsius", "standard_name": "sea_water_temperature",
        "source_name": "TEMP", "source_units": "degC", "conversion": "identity"}
    assert columns["sea_water_salinity"] == {}


def _encodings(uri: str) -> dict[str, tuple[str, ...]]:
    meta = pq.ParquetFile(uri).metadata
    group = meta.row_group(0)
    return {group.column(i).path_in_schema: group.column(i).encodings
            for i in range(meta.num_columns)}


def test_encodings(tmp_path):
    uri = str(tmp_path / "a.parquet")
    write_table(observations(), uri, kv_metadata=META, options=WriteOptions())
    enc = _encodings(uri)
    for column in ("sea_water_temperature", "sea_water_salinity"):
        assert "BYTE_STREAM_SPLIT" in enc[column] and "RLE_DICTIONARY" not in enc[column]
    for column in ("depth", "latitude", "longitude", "source_file"):
        assert "RLE_DICTIONARY" in enc[column] and "BYTE_STREAM_SPLIT" not in enc[column]
    stats = pq.ParquetFile(uri).metadata.row_group(0).column(1).statistics
    assert (stats.min, stats.max) == (0.0, 10.0)


def test_explicit_encodings_and_row_groups(tmp_path):
    uri = str(tmp_path / "a.parquet")
    options = WriteOptions(compression="snappy", row_group_rows=100, dictionary_columns=(),
                           byte_stream_split_columns=("latitude",))
    write_table(observations(), uri, kv_metadata=META, options=options)
    meta = pq.ParquetFile(uri).metadata
    assert meta.num_row_groups == 3
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    enc = _encodings(uri)
    assert "BYTE_STREAM_SPLIT" in enc["latitude"]
    assert "BYTE_STREAM_SPLIT" not in enc["sea_water_temperature"]
    assert "RLE_DICTIONARY" not in enc["depth"]


def test_options_from_output_config():
    options = WriteOptions.from_output(OutputConfig(compression="gzip", compression_level=5,
                                                    row_group_rows=10))
    assert (options.compression, options.compression_level, options.row_group_rows) == (
        "gzip", 5, 10)


def test_missing_footer_keys_are_refused(tmp_path):
    with pytest.raises(WriterError, match="haina.run_id"):
        write_table(observations(), str(tmp_path / "a.parquet"),
                    kv_metadata={"haina.dataset": "d", "haina.version": "v"})


def test_failed_write_leaves_no_file(tmp_path):
    uri = tmp_path / "a.parquet"
    with pytest.raises(WriterError, match="a.parquet") as err:
        write_table(observations(), str(uri), kv_metadata=META,
                    options=WriteOptions(compression="no-such-codec"))
    assert err.value.__cause__ is not None
    assert not uri.exists()


@pytest.mark.parametrize("sha, partition, ordinal, seq, expected", [
    ("3f9a1c0b2d4e5f60" + "0" * 48, "date=2024-01-01", 7, 0,
     "date=2024-01-01/part-3f9a1c0b2d4e-000007-000.parquet"),
    ("a" * 64, "", 123456, 12, "part-aaaaaaaaaaaa-123456-012.parquet"),
])
def test_file_name(sha, partition, ordinal, seq, expected):
    assert file_name(sha, partition, ordinal, seq) == expected


def test_file_name_names_the_recipe_entry():
    """Two entries reading one file (a staggered grid's u and v) write apart; entry 0 keeps the
    names earlier versions used."""
    names = {file_name("3f9a1c0b2d4e" * 2, "date=2024-01-01", 7, 0, entry=e) for e in (0, 1, 2)}
    assert sorted(names) == ["date=2024-01-01/part-3f9a1c0b2d4e-000007-000.parquet",
                             "date=2024-01-01/part-3f9a1c0b2d4e-e1-000007-000.parquet",
                             "date=2024-01-01/part-3f9a1c0b2d4e-e2-000007-000.parquet"]
    with pytest.raises(WriterError, match="entry -1"):
        file_name("a" * 64, "", 0, 0, entry=-1)


@pytest.mark.parametrize("sha, partition, ordinal", [
    ("XYZ", "date=2024-01-01", 0), ("a" * 64, "a/b", 0), ("a" * 64, "..", 0), ("a" * 64, "", -1)])
def test_file_name_refuses_bad_input(sha, partition, ordinal):
    with pytest.raises(WriterError):
        file_name(sha, partition, ordinal, 0)


def test_streaming_hash_costs_no_more_than_plain_write(tmp_path):
    """Measurement only (printed, run with -s): write_table vs pq.write_table, same options."""
    n = 1_000_000
    rng = np.random.default_rng(1)
    table = pa.table({f"v{i}": rng.normal(size=n).astype(np.float32) for i in range(4)})
    options = WriteOptions()
    plain = {"compression": "zstd", "compression_level": 3, "use_dictionary": [],
             "column_encoding": {f"v{i}": "BYTE_STREAM_SPLIT" for i in range(4)},
             "write_statistics": True, "row_group_size": options.row_group_rows}
    ours, theirs = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        write_table(table, str(tmp_path / "ours.parquet"), kv_metadata=META, options=options)
        t1 = time.perf_counter()
        pq.write_table(table, str(tmp_path / "plain.parquet"), **plain)
        theirs.append(time.perf_counter() - t1)
        ours.append(t1 - t0)
    print(f"\nwrite_table (with sha256) best {min(ours):.3f}s; "
          f"pq.write_table best {min(theirs):.3f}s (1M rows x 4 float32)")
    assert pq.read_table(str(tmp_path / "ours.parquet")).equals(
        pq.read_table(str(tmp_path / "plain.parquet")))


def test_content_hash_ignores_footer_metadata_but_not_rows(tmp_path):
    """Re-runs of the same rows compare equal by content hash, whatever version id they carry."""
    table = pa.table({"time": pa.array([0, 1, 2], pa.timestamp("us", tz="UTC")),
                      "x": pa.array([1.5, 2.5, 3.5], pa.float32())})
    meta = lambda version: footer_metadata("d", version, "r1")  # noqa: E731
    a = write_table(table, str(tmp_path / "a.parquet"), kv_metadata=meta("v1"))
    b = write_table(table, str(tmp_path / "b.parquet"), kv_metadata=meta("v2"))
    c = write_table(table.slice(0, 2), str(tmp_path / "c.parquet"), kv_metadata=meta("v1"))
    assert a.sha256 != b.sha256
    assert a.content_sha256 == b.content_sha256
    assert c.content_sha256 != a.content_sha256
    data = (tmp_path / "a.parquet").read_bytes()
    footer = int.from_bytes(data[-8:-4], "little") + 8
    assert a.content_sha256 == hashlib.sha256(data[:-footer]).hexdigest()


@pytest.mark.parametrize("station", [
    ["S1"] * 250,                    # constant: written from a one-entry dictionary too
    ["S1", "S2"] * 125,              # several values
    ["S1"] * 249 + ["S2"],           # same length, one different value at the end
    ["S1"] * 249 + [None],           # a null
])
def test_constant_string_columns_write_the_same_bytes_faster(tmp_path, monkeypatch, station):
    """A file's one ``source_file`` goes to Parquet as a one-entry dictionary (no per-row
    hashing); the file must be byte for byte the one the string column gives."""
    from catalog.storage import writer

    table = observations().append_column("station_id", pa.array(station, pa.string()))
    fast = write_table(table, str(tmp_path / "fast.parquet"), kv_metadata=META)
    encoded, footer = writer._constant_as_dictionary(
        table.replace_schema_metadata(writer._merged_schema_metadata(table.schema, META)),
        ["source_file", "station_id"])
    constant = {f.name for f in encoded.schema if pa.types.is_dictionary(f.type)}
    assert constant == ({"source_file", "station_id"} if len(set(station)) == 1
                        else {"source_file"})
    monkeypatch.setattr(writer, "_constant_as_dictionary", lambda t, names: (t, None))
    plain = write_table(table, str(tmp_path / "plain.parquet"), kv_metadata=META)
    assert (tmp_path / "fast.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    assert (fast.sha256, fast.content_sha256) == (plain.sha256, plain.content_sha256)
    back = pq.read_table(tmp_path / "fast.parquet")
    assert back.schema.field("source_file").type == pa.string()
    assert back.equals(table)
    assert back.schema.field("sea_water_temperature").metadata == TEMP.metadata()
    assert pq.ParquetFile(tmp_path / "fast.parquet").metadata.metadata[b"haina.dataset"] == b"argo_t"
