"""catalog.storage.files: one SHA-256 of a file, wherever it lives, with size (and tail) in one pass."""
from __future__ import annotations

import hashlib
import io

import pytest
from apache_beam.io.filesystems import FileSystems
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.storage import files


def _content(size: int) -> bytes:
    return bytes((i * 7919 + 13) % 251 for i in range(size))


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096, 100_003])
@pytest.mark.parametrize("keep_tail", [False, True])
def test_digest_is_the_sha256_and_size_of_the_bytes(tmp_path, size, keep_tail):
    data = _content(size)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    found = files.digest(str(path), keep_tail=keep_tail, block_bytes=4096)
    assert (found.sha256, found.size) == (hashlib.sha256(data).hexdigest(), size)
    assert files.sha256(str(path)) == found.sha256
    assert files.digest(path.as_uri(), keep_tail=keep_tail, block_bytes=4096) == files.FileDigest(
        found.sha256, size, found.tail)  # file:// is the same local file


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 5000), block=st.integers(1, 700))
def test_the_kept_tail_is_the_last_two_reads(tmp_path_factory, size, block):
    data = _content(size)
    path = tmp_path_factory.mktemp("tail") / "x.bin"
    path.write_bytes(data)
    found = files.digest(str(path), keep_tail=True, block_bytes=block)
    last = size % block or block  # a raw local file fills every read but the last
    expected = min(size, last + block) if size else 0
    assert found.tail == data[size - expected:]
    assert found.sha256 == hashlib.sha256(data).hexdigest()


def test_a_reader_from_beams_filesystems_streams_the_same_digest(tmp_path):
    """Remote URIs are read through Beam's FileSystems; its reader of a local file feeds the
    same block loop (no remote store is reachable from the tests)."""
    data = _content(50_000)
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    with FileSystems.open(str(path), compression_type="uncompressed") as reader:
        streamed = files._streamed(reader, 4096, keep_tail=True)
    local = files.digest(str(path), keep_tail=True, block_bytes=4096)
    assert streamed.sha256 == local.sha256 and streamed.size == local.size == 50_000
    assert data.endswith(streamed.tail) and len(streamed.tail) > 4096


def test_missing_files_raise_oserror_and_do_not_exist(tmp_path):
    assert not files.exists(str(tmp_path / "nope"))
    assert not files.exists(str(tmp_path))  # a folder is not a file
    with pytest.raises(FileNotFoundError):
        files.digest(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError):
        files.read_bytes(str(tmp_path / "nope"))


def test_read_bytes_and_read_range(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"0123456789")
    assert files.exists(str(path)) and files.exists(path.as_uri())
    assert files.read_bytes(str(path)) == b"0123456789"
    assert files.read_range(str(path), 7, 8) == b"789"
    assert files.read_range(path.as_uri(), 2, 3) == b"234"


def test_hashing_writer_hashes_what_it_forwards():
    raw = io.BytesIO()
    sink = files.HashingWriter(raw)
    sink.write(b"abc")
    middle = sink.snapshot()
    sink.write(memoryview(b"defg"))
    assert (middle, sink.tell()) == (hashlib.sha256(b"abc").hexdigest(), 7)
    assert sink.hexdigest() == hashlib.sha256(b"abcdefg").hexdigest()
    assert raw.getvalue() == b"abcdefg"


def test_list_files_is_recursive_relative_and_posix(tmp_path):
    for rel in ("b/c/x.parquet", "a.json", ".hidden", "b/y"):
        (tmp_path / "v" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "v" / rel).write_bytes(b"x")
    expected = [".hidden", "a.json", "b/c/x.parquet", "b/y"]
    assert files.list_files(str(tmp_path / "v")) == expected
    assert files.list_files(str(tmp_path / "v") + "/") == expected
    assert files.list_files((tmp_path / "v").as_uri()) == expected
    assert files.list_files(str(tmp_path / "nope")) == []
