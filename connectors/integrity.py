"""Is a source file whole, and the kind of file its connector expects? Cheap checks at the edge.

Connectors call these before they open a file and around the library calls that decode it, so
that a damaged or odd input stops with one line naming the file, what is wrong and the fix,
instead of a traceback, a hang, or -- worst -- rows of zeros:

- :func:`check_regular`: a directory, named pipe, device or socket is refused before anything
  opens it (opening a FIFO for reading blocks until a writer appears, i.e. forever).
- :func:`check_whole`: a netCDF-3 file whose header places data past its end, or an HDF5 file
  (netCDF-4) shorter than the end-of-file address in its superblock, is truncated. netCDF-3 is the
  dangerous one: the netCDF library reads the missing bytes as zeros and says nothing.
- :func:`decoding`: library errors raised while decoding a file's bytes (HDF5 checksum and
  inflate errors, impossible header values, undecodable names) become one
  :class:`CorruptSourceError` line.
- :func:`sniff_text` and :func:`transcode_lines`: a text file in the wrong encoding is refused
  up front when the whole file is (a UTF-16 byte-order mark, a binary file), and otherwise only
  the lines that do not decode are set aside for quarantine with the reason ``encoding``.

Every function takes a path or bytes and returns or raises; none keeps state.
"""
from __future__ import annotations

import codecs
import collections
import contextlib
import functools
import math
import os
import stat
import struct
import zlib
from typing import Iterator

import numpy as np

from connectors.exceptions import (
    ConnectorError,
    CorruptSourceError,
    EncodingError,
    NotAFileError,
    SourceNotFoundError,
    TruncatedSourceError,
    UnreadableSourceError,
)

REDOWNLOAD = "re-download it, or remove it from the recipe's uri glob"
#: a data line longer than this is quarantined as ``line_too_long`` (a real record is < 64 KiB)
MAX_LINE_BYTES = 1 << 20
#: how much of a rejected line the quarantine keeps
RAW_KEEP = 200
_CDF = b"CDF"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_HEAD = 64 << 10            # first read of a netCDF-3 header; most are a few KiB
_HEAD_MAX = 8 << 20         # a header that does not parse within this is left to netCDF


# --------------------------------------------------------------------------------- files

def local_path(uri: str) -> str | None:
    """The filesystem path of a local URI (plain or ``file://``), None for remote URIs."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return None if "://" in uri else uri


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _glob_example(directory: str) -> str:
    """``DIR/*.nc``, with the most common file extension found in the directory."""
    suffixes: collections.Counter[str] = collections.Counter()
    try:
        with os.scandir(directory) as entries:
            for _, entry in zip(range(1000), entries, strict=False):  # the first 1000 only
                if entry.is_file() and "." in entry.name:
                    suffixes[entry.name.rsplit(".", 1)[1]] += 1
    except OSError:
        pass
    ext = suffixes.most_common(1)[0][0] if suffixes else "nc"
    return f"{directory.rstrip('/')}/*.{ext}"


def check_regular(uri: str) -> None:
    """Refuse a URI that is missing, a directory, or not a regular file; never opens it."""
    path = local_path(uri)
    if path is None:
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as err:
        raise SourceNotFoundError("file does not exist", source=uri,
                                  fix="check the recipe's uri glob and that the file was not "
                                      "moved or deleted") from err
    except OSError as err:
        raise UnreadableSourceError(f"cannot stat the file: {err.strerror}", source=uri,
                                    fix="check the path and its permissions") from err
    if stat.S_ISDIR(mode):
        raise NotAFileError("URI is a directory", source=uri,
                            fix=f"use a glob like {_glob_example(path)}")
    if not stat.S_ISREG(mode):
        raise NotAFileError(f"not a regular file: it is {_kind_of(mode)}, and reading it could "
                            "block forever", source=uri,
                            fix="copy the data into a regular file and point uri at that")


# --------------------------------------------------------------------------------- netCDF-3

_NC_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_STREAMING = (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


class _ClassicHeader:
    """Cursor over a netCDF-3 header (CDF-1, -2 and -5 layouts, big-endian)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 4
        self.count = ">Q" if data[3] == 5 else ">I"      # NON_NEG: 8 bytes in CDF-5
        self.offset = ">I" if data[3] == 1 else ">Q"     # OFFSET: 8 bytes from CDF-2 on

    def take(self, fmt: str | None = None) -> int:
        fmt = fmt or self.count
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def skip_padded(self, nbytes: int) -> None:
        self.pos += -(-nbytes // 4) * 4
        if self.pos > len(self.data):
            raise struct.error("header runs past the bytes read")

    def skip_attributes(self) -> None:
        self.take(">I")  # NC_ATTRIBUTE tag, or ZERO when absent
        for _ in range(self.take()):
            self.skip_padded(self.take())            # name
            nc_type = self.take(">I")
            self.skip_padded(self.take() * _NC_TYPE_BYTES[nc_type])


def classic_data_end(header: bytes) -> int | None:
    """The file size a netCDF-3 header promises (end of its last data byte), None if unknown.

    Raises ``struct.error``/``KeyError``/``IndexError`` when the bytes given end inside the header
    or hold an impossible value (a type code that does not exist).
    """
    cursor = _ClassicHeader(header)
    numrecs = cursor.take()
    cursor.take(">I")
    dims = []
    for _ in range(cursor.take()):
        cursor.skip_padded(cursor.take())
        dims.append(cursor.take())
    cursor.skip_attributes()
    cursor.take(">I")
    fixed: list[tuple[int, int]] = []  # (offset, size) of each fixed-size variable
    record: list[tuple[int, int]] = []
    for _ in range(cursor.take()):
        cursor.skip_padded(cursor.take())
        dim_ids = [cursor.take() for _ in range(cursor.take())]
        cursor.skip_attributes()
        itemsize, _, begin = (_NC_TYPE_BYTES[cursor.take(">I")], cursor.take(),
                              cursor.take(cursor.offset))
        is_record = bool(dim_ids) and dims[dim_ids[0]] == 0
        size = math.prod(dims[i] for i in dim_ids[is_record:]) * itemsize
        (record if is_record else fixed).append((begin, size))
    if numrecs in _STREAMING:  # streaming: record count not in header
        record = []
    # records interleave; each slot is padded to 4 bytes unless there is one record variable
    recsize = sum(-(-s // 4) * 4 if len(record) > 1 else s for _, s in record)
    ends = [b + s for b, s in fixed] + [b + (numrecs - 1) * recsize + s for b, s in record
                                         if numrecs > 0]
    return max(ends, default=None)


def _classic_needed(handle, size: int, uri: str) -> int | None:
    """Bytes a netCDF-3 header says the file holds; reads more of the header only if needed."""
    limit = _HEAD
    while True:
        handle.seek(0)
        header = handle.read(limit)
        try:
            return classic_data_end(header)
        except (struct.error, KeyError, IndexError) as err:
            if len(header) >= size or limit >= _HEAD_MAX:
                if size <= _HEAD_MAX:
                    raise CorruptSourceError(
                        f"netCDF-3 header is truncated or corrupt (it does not parse within the "
                        f"file's {size} bytes)", source=uri, fix=REDOWNLOAD) from err
                return None  # a header larger than we read: leave the check to netCDF
            limit *= 8


# --------------------------------------------------------------------------------- HDF5

def _superblock_at(handle, size: int) -> int | None:
    """Offset of the HDF5 signature: 0, or 512, 1024, 2048 ... after a user block."""
    offset = 0
    while offset + 8 <= size:
        handle.seek(offset)
        if handle.read(8) == _HDF5:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def hdf5_end_of_file(block: bytes) -> int | None:
    """The end-of-file address stored in an HDF5 superblock (``block`` starts at its signature).

    Superblock versions 0 and 1 keep it after the base and free-space addresses, versions 2 and
    3 after the base and superblock-extension addresses. HDF5 itself refuses a file shorter than
    this (``truncated file``), so a file at least this long is whole. None when undefined.
    """
    version = block[8]
    if version in (0, 1):
        size_of_offsets, base = block[13], 24 + 4 * version
    elif version in (2, 3):
        size_of_offsets, base = block[9], 12
    else:
        return None
    fmt = {2: "<H", 4: "<I", 8: "<Q"}.get(size_of_offsets)
    if fmt is None:
        raise struct.error(f"size of offsets {size_of_offsets} is not 2, 4 or 8")
    (eof,) = struct.unpack_from(fmt, block, base + 2 * size_of_offsets)
    return None if eof == (1 << (8 * size_of_offsets)) - 1 else eof


# --------------------------------------------------------------------------------- wholeness

def needed_size(path: str, uri: str | None = None) -> tuple[str, int | None, int]:
    """``(container, bytes the file's header needs, bytes the file has)``.

    ``container`` is ``"netcdf3"``, ``"hdf5"`` or ``"other"`` (then nothing is needed).
    """
    uri = uri or path
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        magic = handle.read(4)
        if magic[:3] == _CDF and magic[3:] in (b"\x01", b"\x02", b"\x05"):
            return "netcdf3", _classic_needed(handle, size, uri), size
        at = _superblock_at(handle, size)
        if at is None:
            return "other", None, size
        handle.seek(at)
        block = handle.read(64)
    try:
        eof = hdf5_end_of_file(block)
    except (struct.error, IndexError) as err:
        raise CorruptSourceError("HDF5 superblock is truncated or corrupt", source=uri,
                                 fix=REDOWNLOAD) from err
    return "hdf5", eof, size


def check_whole(uri: str) -> None:
    """Refuse a netCDF-3 or HDF5 file that is shorter than its own header says."""
    path = local_path(uri)
    if path is None:
        return
    container, needed, size = needed_size(path, uri)
    if needed is not None and size < needed:
        label = "netCDF-3 header" if container == "netcdf3" else "HDF5 superblock"
        hint = " (or the header itself is corrupt)" if needed > 4 * size + (1 << 20) else ""
        raise TruncatedSourceError(
            f"file is truncated: its {label} needs {needed} bytes, the file has {size}"
            f" ({needed - size} missing){hint}", source=uri, fix=REDOWNLOAD)


def check_file(uri: str) -> None:
    """What every binary connector checks before it opens a file: regular, and whole."""
    check_regular(uri)
    check_whole(uri)


# --------------------------------------------------------------------------------- decode errors

#: what netCDF4/HDF5/h5py/xarray raise for damaged bytes (HDF error, bad header values,
#: undecodable names, failed inflate, impossible shapes); never raised by Haina itself
LIBRARY_ERRORS = (OSError, RuntimeError, ValueError, KeyError, IndexError, TypeError,
                  OverflowError, MemoryError, EOFError, struct.error, zlib.error)


def describe(err: BaseException) -> str:
    if isinstance(err, UnicodeDecodeError):
        bad = err.object[err.start:err.start + 1].hex().upper()
        return f"a name or text attribute is not valid {err.encoding.upper()}: byte 0x{bad}"
    text = " ".join(str(err).split()) or type(err).__name__
    text = text if len(text) <= 200 else text[:199] + "…"
    return text if isinstance(err, (OSError, RuntimeError)) else f"{type(err).__name__}: {text}"


@contextlib.contextmanager
def decoding(uri: str, what: str = "file") -> Iterator[None]:
    """Turn a library's error while decoding ``uri`` into one :class:`CorruptSourceError` line.

    Haina's own named errors pass through. ``what`` names the part being decoded, e.g.
    ``variable 'TEMP'``. The cause stays chained (``haina --debug`` shows its traceback).
    """
    try:
        yield
    except ConnectorError:
        raise
    except FileNotFoundError as err:
        raise SourceNotFoundError("file vanished while it was read", source=uri,
                                  fix="re-run on a stable copy of the file") from err
    except PermissionError as err:
        raise UnreadableSourceError(f"permission denied: {err.strerror}", source=uri,
                                    fix="make the file readable by this user") from err
    except LIBRARY_ERRORS as err:
        raise CorruptSourceError(f"{what} is corrupt ({describe(err)})", source=uri,
                                 fix=REDOWNLOAD) from err
    except AttributeError as err:
        if not str(err).startswith("NetCDF:"):  # netCDF4 reports a bad attribute this way
            raise
        raise CorruptSourceError(f"{what} is corrupt ({describe(err)})", source=uri,
                                 fix=REDOWNLOAD) from err


def guarded_plan(method):
    """Decorate a binary connector's ``plan(config, uri, ...)``: check the file, then plan it
    with library errors translated by :func:`decoding`."""
    @functools.wraps(method)
    def plan(self, config, uri, *args, **kwargs):
        check_file(uri)
        with decoding(uri):
            return method(self, config, uri, *args, **kwargs)
    return plan


def guarded_read(method):
    """Decorate a binary connector's ``read(config, chunk, ...)`` with :func:`decoding`."""
    @functools.wraps(method)
    def read(self, config, chunk, *args, **kwargs):
        with decoding(chunk.uri):
            return method(self, config, chunk, *args, **kwargs)
    return read


# --------------------------------------------------------------------------------- text

_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_BINARY = ((_CDF, "a netCDF-3 file", "use kind: netcdf_grid, netcdf_dsg or argo"),
           (_HDF5, "an HDF5/netCDF-4 file", "use kind: netcdf_grid, netcdf_dsg or argo"),
           (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip)"),
           (b"PK\x03\x04", "a zip archive", "unzip it first"),
           (b"PAR1", "a Parquet file", "it is already columnar: read it with pyarrow"))
_SNIFF = 8 << 10


def is_ascii_compatible(encoding: str) -> bool:
    """True when ASCII text encodes to the same bytes (utf-8, latin-1, cp1252; not utf-16)."""
    probe = "\n\r,;\t\"' #0123456789.+-:AZaz"
    try:
        return probe.encode(encoding) == probe.encode("ascii")
    except (LookupError, UnicodeError):
        return False


def check_encoding_name(value: str) -> str:
    """Recipe validator of ``encoding:``: a known, ASCII-compatible codec name."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown encoding {value!r}; use a Python codec name such as "
                         "'utf-8', 'latin-1' or 'cp1252'") from None
    if not is_ascii_compatible(value):
        raise ValueError(f"{value!r} is not ASCII-compatible, which line-by-line reading needs; "
                         f"convert the file to UTF-8 (iconv -f {value} -t UTF-8 IN > OUT) and "
                         "drop `encoding:`")
    return value


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def sniff_text(head: bytes, encoding: str, uri: str) -> int:
    """Refuse a file that cannot be the text the recipe describes; return the BOM's length.

    A UTF-16/32 byte-order mark, a binary signature or NUL bytes mean the whole file is wrong,
    so one line says so; a UTF-8 byte-order mark is skipped (0 or 3 is returned).
    """
    for bom, name in _BOMS:
        if head.startswith(bom):
            raise EncodingError(
                f"file is {name} (byte-order mark {bom.hex(' ').upper()}); text sources are "
                f"read line by line and need an ASCII-compatible encoding", source=uri,
                fix=f"convert it: iconv -f {name} -t UTF-8 FILE > FILE.utf8")
    for magic, what, fix in _BINARY:
        if head.startswith(magic):
            raise UnreadableSourceError(f"file is {what}, not text", source=uri, fix=fix)
    if head.startswith(codecs.BOM_UTF8):
        if not _is_utf8(encoding):
            raise EncodingError(f"file starts with a UTF-8 byte-order mark but the recipe says "
                                f"encoding: {encoding}", source=uri,
                                fix="set encoding: utf-8 (or remove encoding:)")
        return len(codecs.BOM_UTF8)
    sample = head[:_SNIFF]
    nuls = sample.count(0)
    if nuls > max(16, len(sample) // 100):  # a stray NUL from line noise is one bad line only
        guess = (" (every other byte is NUL: UTF-16 without a byte-order mark?)"
                 if nuls * 3 >= len(sample) else "")
        raise EncodingError(f"file is not text: {nuls} NUL byte(s) in its first "
                            f"{len(sample)} bytes{guess}", source=uri,
                            fix="check that uri names the right file; convert UTF-16 to UTF-8 "
                                "with iconv")
    return 0


def read_head(uri: str, nbytes: int = _SNIFF) -> bytes:
    path = local_path(uri)
    if path is None:
        return b""
    with open(path, "rb") as handle:
        return handle.read(nbytes)


def check_text(uri: str, encoding: str = "utf-8") -> int:
    """What every text connector checks at plan time: a regular file that looks like text."""
    check_regular(uri)
    return sniff_text(read_head(uri), encoding, uri)


def normalise_newlines(data: bytes) -> bytes:
    """Lone carriage returns (old Mac line ends, mixed files) become ``\\n``; same length, so
    byte offsets and line numbers stay valid. CRLF is left for the readers to trim."""
    if b"\r" not in data:
        return data
    buf = np.frombuffer(data, np.uint8).copy()
    cr = np.flatnonzero(buf == 13)
    lone = cr[(cr + 1 >= buf.size) | (buf[np.minimum(cr + 1, buf.size - 1)] != 10)]
    if not lone.size:
        return data
    buf[lone] = 10
    return buf.tobytes()


def line_breaks(handle, end: int) -> int:
    """Line breaks (``\\n``, ``\\r\\n`` or a lone ``\\r``) in the first ``end`` bytes of a file."""
    handle.seek(0)
    count, remaining, last = 0, end, b""
    while remaining > 0:
        block = handle.read(min(8 << 20, remaining))
        if not block:
            break
        count += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
        if last == b"\r" and block[:1] == b"\n":
            count -= 1  # a CRLF split across two blocks
        last, remaining = block[-1:], remaining - len(block)
    return count


def transcode_lines(data: bytes, encoding: str) -> tuple[bytes, np.ndarray, list[str]]:
    """UTF-8 bytes of ``data`` with every line that does not decode as ``encoding`` emptied.

    Returns the bytes (same number of lines, so line indices stay valid), the 0-based indices
    of the emptied lines and their raw text (bad bytes shown as ``\\xNN``), for quarantine with
    reason ``encoding``. Clean data is decoded once, with no per-line work.
    """
    utf8 = _is_utf8(encoding)
    if utf8 and data.isascii():
        return data, np.zeros(0, np.int64), []
    try:
        text = data.decode(encoding)
        return (data if utf8 else text.encode("utf-8")), np.zeros(0, np.int64), []
    except UnicodeDecodeError:
        pass
    parts, bad, raws, pos = [], [], [], 0
    while pos < len(data):  # one decode call per bad line, not per line
        try:
            segment = data[pos:].decode(encoding)
            parts.append(segment.encode("utf-8"))
            break
        except UnicodeDecodeError as err:
            start = data.rfind(b"\n", 0, pos + err.start) + 1
            stop = data.find(b"\n", pos + err.start)
            stop = len(data) if stop < 0 else stop
            parts.append(data[pos:start].decode(encoding).encode("utf-8"))
            bad.append(start)
            raws.append(data[start:stop].decode(encoding, "backslashreplace")[:RAW_KEEP])
            pos = stop  # keep the line break: the emptied line still counts as a line
    starts = np.asarray(bad, np.int64)
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
    lines = np.searchsorted(newlines, starts)
    return b"".join(parts), lines, raws


def long_lines(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of lines longer than :data:`MAX_LINE_BYTES`."""
    return (np.asarray(ends) - np.asarray(starts)) > MAX_LINE_BYTES

