"""How a text file cuts into columns (:class:`TextLayout`), and reading its header: the first
lines, column names (with units in brackets), and where the data start.
"""
from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

from connectors import integrity
from connectors.exceptions import MissingVariableError

_HEAD_BLOCK = 64 * 2**10
_HEAD_LIMIT = 16 * 2**20
_UNITS_IN_NAME = re.compile(r"^(?P<name>.*?)\s*(\((?P<p>[^()]*)\)|\[(?P<b>[^\[\]]*)\])$")


@dataclasses.dataclass(frozen=True)
class TextLayout:
    """How to cut a text file into typed columns; built from the config and the file's head."""

    names: tuple[str, ...]                  # column names as written (units stripped)
    units: tuple[str | None, ...]           # units per column from the header, if any
    data_start: int                         # byte offset of the first line after the header
    delimiter: str | None = ","             # None: whitespace runs
    quote_char: str | None = '"'
    comment: str | None = None
    encoding: str = "utf-8"
    missing: tuple[str, ...] = ("",)

    def index(self, name: str, uri: str, key: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise MissingVariableError(
                f"column {name!r} (recipe key {key}) is not in the file header",
                source=uri, fix=f"use one of: {', '.join(self.names)}",
            ) from None

    def units_of(self, name: str) -> str | None:
        return self.units[self.names.index(name)]


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri)


def head_lines(uri: str, count: int) -> list[tuple[int, int, bytes]]:
    """The first ``count`` physical lines as (offset, offset of the next line, line text)."""
    data = b""
    with open(local_path(uri), "rb") as handle:
        while data.count(b"\n") < count and len(data) < _HEAD_LIMIT:
            block = handle.read(_HEAD_BLOCK)
            if not block:
                break
            data += block
    lines, offset = [], 0
    # lone CRs end lines too (same length, so offsets hold); a UTF-8 BOM is no part of a name
    for raw in integrity.normalise_newlines(data).split(b"\n")[:count]:
        text = raw.rstrip(b"\r")
        lines.append((offset, offset + len(raw) + 1,
                      text.removeprefix(b"\xef\xbb\xbf") if offset == 0 else text))
        offset += len(raw) + 1
    return lines


def split_names(line: str, delimiter: str | None, quote_char: str | None) -> list[str]:
    """Fields of one header line (one line, so the stdlib csv module is fine here)."""
    if delimiter is None:
        return line.split()
    reader = csv.reader([line.replace("\0", "")], delimiter=delimiter,
                        quotechar=quote_char or "\0", skipinitialspace=True,
                        quoting=csv.QUOTE_MINIMAL if quote_char else csv.QUOTE_NONE)
    return [field.strip() for field in next(reader, [])]


def units_from_names(names: list[str]) -> tuple[list[str], list[str | None]]:
    """``temperature (Celsius)`` / ``sandi.790.A.CTD [psu]`` -> name and units."""
    bare, units = [], []
    for name in names:
        match = _UNITS_IN_NAME.match(name)
        if match and match["name"]:
            bare.append(match["name"])
            units.append((match["p"] if match["p"] is not None else match["b"]).strip() or None)
        else:
            bare.append(name)
            units.append(None)
    return bare, units
