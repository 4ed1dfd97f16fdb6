"""Reading and hashing files wherever they live: one SHA-256 for sources, data files, manifests.

A local path (or ``file://`` URI) is read with the standard library: a whole-file digest is
``hashlib.file_digest``, C code that releases the GIL, so several files hash on several cores.
Any other scheme streams through Beam's ``FileSystems`` in blocks, which is also how a run reads
its sources (the same extras serve both; see :mod:`catalog.storage.filesystems`).

Beam is imported on first remote use, not at import: importing it takes about a second, and this
module is used where that second matters: :mod:`pipelines.prehash` hashes local sources while the
CLI is still importing Beam, and opening a catalog (which checks released files) must stay fast.

:class:`HashingWriter` is the same digest taken on the way out, for files being written.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from typing import Any, TypeAlias, cast

from catalog.storage import uri as uri_mod

#: read size of streamed digests; with ``keep_tail`` the last two reads are kept
BLOCK_BYTES = 8 * 2**20
#: what :func:`open_binary` returns: a raw local file or Beam's buffered reader
BinaryReader: TypeAlias = io.RawIOBase | io.BufferedIOBase


@dataclasses.dataclass(frozen=True)
class FileDigest:
    """What one pass over a file found: its SHA-256, its size and (when asked) its tail."""

    sha256: str
    size: int
    #: the file's last bytes: the last two reads, i.e. its last ``block_bytes + 1`` to
    #: ``2 * block_bytes`` bytes (all of it when smaller); empty unless ``keep_tail``
    tail: bytes = b""


def _beam_filesystems() -> Any:
    """Beam's ``FileSystems``, imported on first remote use (see the module docstring)."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _open_local(path: str) -> BinaryReader:
    return open(path, "rb", buffering=0)  # raw reads straight into the caller's buffers


def open_binary(location: str) -> BinaryReader:
    """A binary reader of ``location`` (local path, ``file://`` or any Beam-served URI)."""
    if uri_mod.is_local(location):
        return _open_local(uri_mod.local_path(location))
    reader = _beam_filesystems().open(location, compression_type="uncompressed")
    return cast(BinaryReader, reader)


def exists(location: str) -> bool:
    """True when ``location`` is an existing file (a local folder is not a file)."""
    if uri_mod.is_local(location):
        return os.path.isfile(uri_mod.local_path(location))
    return bool(_beam_filesystems().exists(location))


def list_files(folder: str) -> list[str]:
    """Files under ``folder`` (recursively), relative to it, posix separators, sorted; [] when
    the folder does not exist. Object stores have no folders: there, a prefix."""
    if uri_mod.is_local(folder):
        root = uri_mod.local_path(folder)
        found = []
        for dirpath, _dirs, names in os.walk(root):
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            found += [name if rel == "." else f"{rel}/{name}" for name in names]
        return sorted(found)
    prefix = uri_mod.join(folder) + "/"
    matches = _beam_filesystems().match([prefix + "**"])[0].metadata_list
    return sorted(m.path[len(prefix):] for m in matches)


def read_bytes(location: str) -> bytes:
    """The whole content of a (small) file, e.g. a manifest; OSError when it cannot be read."""
    with open_binary(location) as src:
        return src.read()


def read_range(location: str, start: int, length: int) -> bytes:
    """``length`` bytes from offset ``start`` (fewer at the end of the file)."""
    with open_binary(location) as src:
        src.seek(start)
        return src.read(length)


def digest(location: str, *, keep_tail: bool = False,
           block_bytes: int = BLOCK_BYTES) -> FileDigest:
    """SHA-256 and size of a file in one pass; OSError when it is missing or unreadable.

    ``keep_tail`` also keeps the last two reads, so that a caller can parse a trailer (the
    Parquet footer) without reading the file's end again. ``block_bytes`` is the read size of
    the streamed pass (a whole-file local digest chooses its own).
    """
    if keep_tail or uri_mod.is_remote(location):
        with open_binary(location) as src:
            return _streamed(src, block_bytes, keep_tail)
    with open(uri_mod.local_path(location), "rb") as src:
        sha = hashlib.file_digest(src, "sha256")
        return FileDigest(sha.hexdigest(), src.tell())


def sha256(location: str) -> str:
    """The SHA-256 hex digest of a file's content (see :func:`digest`)."""
    return digest(location).sha256


def _streamed(src: BinaryReader, block_bytes: int, keep_tail: bool) -> FileDigest:
    """Hash ``src`` in blocks read into two alternating buffers (no copy per block); the two
    buffers are, at the end, the file's last two reads."""
    sha, size = hashlib.sha256(), 0
    buffers = (bytearray(block_bytes), bytearray(block_bytes))
    filled, current = [0, 0], 0
    while n := src.readinto(buffers[current]):
        sha.update(memoryview(buffers[current])[:n])
        size, filled[current], current = size + n, n, current ^ 1
    if not keep_tail:
        return FileDigest(sha.hexdigest(), size)
    # the older kept read is buffers[current], the newest buffers[current ^ 1]
    tail = (bytes(memoryview(buffers[current])[:filled[current]])
            + bytes(memoryview(buffers[current ^ 1])[:filled[current ^ 1]]))
    return FileDigest(sha.hexdigest(), size, tail)


class HashingWriter:
    """A write-only file object that hashes and counts the bytes it forwards to ``raw``.

    Writers hash what they write on its way out, so a checksum never costs a second read.
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self._raw.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._raw.close()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def snapshot(self) -> str:
        """The digest of everything written so far, without ending the hash."""
        return self._sha.copy().hexdigest()
