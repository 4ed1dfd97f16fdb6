"""Line-aligned byte ranges of a text file, and the tally of one chunk's records: what both AIS
kinds share.

A chunk is the byte range ``[start, stop)``; a line belongs to the range its first byte is in
(the rule of Beam's text source), so the chunks of a file tile its lines exactly and each
line's 1-based number is known for the quarantine.
"""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, ClassVar

from pydantic import Field, field_validator

from connectors import integrity
from connectors.base import ChunkSpec
from connectors.config import SourceConfig
from connectors.exceptions import SourceNotFoundError, UnreadableSourceError
from connectors.quarantine import Quarantine

_MiB = 1 << 20


class AisConfig(SourceConfig):
    """Keys both AIS kinds share: a fixed schema (no ``variables``) and the chunk size."""

    reference_omit: ClassVar[tuple[str, ...]] = ("variables",)  # a fixed schema: refused

    chunk_bytes: int = Field(
        default=64 * _MiB, ge=4096,
        description="byte size of one chunk; files up to this size are read as one chunk",
        examples=[16777216])

    @field_validator("variables")
    @classmethod
    def _no_variables(cls, value: dict) -> dict:
        if value:
            raise ValueError("AIS sources have a fixed vessel-position schema; remove "
                             f"'variables' (got {sorted(value)})")
        return value


class Records(Quarantine):
    """The quarantine of one chunk, plus the count of its records (``rows_in``)."""

    def __init__(self, source_file: str):
        super().__init__(source_file)
        self.lines = 0   # non-blank lines read (NMEA) or data lines (CSV)
        self.merged = 0  # fragments joined onto the first fragment of their message


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def byte_chunks(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[start, stop)`` byte ranges; a line belongs to the range its first byte is in."""
    if size <= chunk_bytes:
        return [(0, size)]
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


def _first_line_start(handle: BinaryIO, start: int) -> int:
    """Offset of the first line that starts at or after ``start`` (like Beam's text source)."""
    if start <= 0:
        return 0
    handle.seek(start - 1)
    handle.readline()
    return handle.tell()


def read_line_range(handle: BinaryIO, start: int, stop: int, *, at_line_start: bool = False
                    ) -> tuple[bytes, int, int]:
    """The lines starting in ``[start, stop)``: their bytes, the 1-based number of the first one,
    and the offset just past them. ``at_line_start``: ``start`` is known to begin a line (the
    end of a header, which may end with a lone CR)."""
    begin = start if at_line_start else _first_line_start(handle, start)
    if begin >= stop:
        return b"", 0, begin
    # line numbers of a mid-file chunk need the line breaks before it (a C-speed scan)
    first_line = integrity.line_breaks(handle, begin) + 1
    handle.seek(begin)
    data = handle.read(stop - begin)
    if data and not data.endswith(b"\n"):
        data += handle.readline()
    return data, first_line, begin + len(data)


def open_source(uri: str) -> BinaryIO:
    """The file for binary reading, or an error naming what happened to it since planning."""
    try:
        return open(local_path(uri), "rb")
    except FileNotFoundError as err:
        raise SourceNotFoundError("file vanished between planning and reading", source=uri,
                                  fix="re-run the pipeline on a stable copy") from err
    except OSError as err:
        raise UnreadableSourceError(f"cannot open file: {err}", source=uri,
                                    fix="check the path and its permissions") from err


def plan_chunks(config: AisConfig, uri: str, sha256: str, size: int) -> tuple[ChunkSpec, ...]:
    return tuple(ChunkSpec(source_index=0, uri=uri, sha256=sha256, ordinal=i, start=a, stop=b)
                 for i, (a, b) in enumerate(byte_chunks(size, config.chunk_bytes)))
