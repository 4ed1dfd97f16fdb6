"""The records of a port table file: lines located with numpy, malformed ones quarantined with
their 1-based line number and text, the rest parsed as strings by ``pyarrow.csv``.

Records are physical lines (``newlines_in_values`` is off); a line whose quoting does not close
on the line (one RE2 pattern over all lines) is quarantined (``bad_quoting``) before pyarrow
sees the text, so one stray quote never swallows the rest of the file.
"""
from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from connectors import integrity
from connectors.exceptions import EncodingError, UnreadableSourceError
from connectors.quarantine import Quarantine
from connectors.text.port_values import mask, normalise_strings

UTF8_BOM = b"\xef\xbb\xbf"


@dataclasses.dataclass(frozen=True)
class _Lines:
    """Physical lines of a text buffer: byte offsets, 1-based numbers, empty flags."""

    starts: np.ndarray   # first byte of each line
    spans: np.ndarray    # bytes up to the next line, newline included
    numbers: np.ndarray  # 1-based line numbers
    empty: np.ndarray    # nothing but an optional carriage return


def split_lines(data: bytes) -> _Lines:
    """Locate lines with numpy (no Python loop): byte offsets and emptiness."""
    arr = np.frombuffer(data, dtype=np.uint8)
    cr = arr == ord("\r")
    lone_cr = cr & ~np.append(arr[1:] == ord("\n"), False)  # a bare CR ends a line, as in pyarrow
    newlines = np.flatnonzero((arr == ord("\n")) | lone_cr)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [arr.size]])
    if starts[-1] == arr.size:  # a trailing newline does not open another line
        starts, ends = starts[:-1], ends[:-1]
    spans = np.diff(np.concatenate([starts, [arr.size]]))
    has_cr = np.zeros(starts.size, dtype=bool)
    nonempty = ends > starts
    has_cr[nonempty] = cr[ends[nonempty] - 1]
    return _Lines(starts=starts, spans=spans, numbers=np.arange(1, starts.size + 1),
                  empty=(ends - starts - has_cr) == 0)


def record_pattern(delimiter: str) -> str:
    """RE2 pattern of one CSV record that keeps every quote on its own line.

    A field is unquoted (not starting with a quote; later quotes are literal, as in pyarrow) or
    quoted (``""`` escapes a quote; text after the closing quote is appended, as in pyarrow).
    A line that does not match would make pyarrow read on into the next lines.
    """
    d = re.escape(delimiter)
    field = f'(?:"(?:[^"]|"")*"[^"{d}]*|(?:[^"{d}][^{d}]*)?)'
    return f"^{field}(?:{d}{field})*$"


def well_formed(texts: pa.Array, delimiter: str) -> np.ndarray:
    """True for lines whose quoting closes on the line (RE2 over all lines at once)."""
    return mask(pc.match_substring_regex(texts, record_pattern(delimiter)))


def line_texts(data: bytes, lines: _Lines) -> pa.Array:
    """All lines as one Arrow string array (zero-copy offsets), line endings trimmed."""
    offsets = np.concatenate([lines.starts, [lines.starts[-1] + lines.spans[-1]]])
    array = pa.LargeStringArray.from_buffers(
        lines.starts.size, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data))
    return pc.utf8_rtrim(array, characters="\r\n").cast(pa.string())


def keep_lines(data: bytes, lines: _Lines, keep: np.ndarray) -> bytes:
    """The buffer with only the kept lines (a byte mask, not a loop over lines)."""
    mask = np.repeat(keep, lines.spans)
    return np.frombuffer(data, dtype=np.uint8)[mask].tobytes()


def parse_header(header: bytes, delimiter: str, where: str) -> list[str]:
    """Column names of a header line, with the same quoting rules as the records."""
    parse = pacsv.ParseOptions(delimiter=delimiter)
    header = header if header.endswith(b"\n") else header + b"\n"
    auto = pacsv.ReadOptions(autogenerate_column_names=True)
    try:
        probe = pacsv.read_csv(io.BytesIO(header), parse_options=parse, read_options=auto)
        as_text = pacsv.ConvertOptions(column_types={n: pa.string() for n in probe.column_names})
        row = pacsv.read_csv(io.BytesIO(header), parse_options=parse, convert_options=as_text,
                             read_options=auto)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(f"cannot parse the header line {header[:200]!r}: {err}",
                                    source=where, fix="the first line must hold column names"
                                    ) from err
    names = [row.column(i)[0].as_py().strip() for i in range(row.num_columns)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UnreadableSourceError(
            f"header repeats column name(s) {repeated}", source=where,
            fix="give every column a distinct name in the file's first line")
    return names


@dataclasses.dataclass
class RawTable:
    """A file parsed to strings: good-shape records, their line numbers and raw text, and the
    records already rejected for their shape."""

    table: pa.Table            # one string column per header name, placeholders as nulls
    positions: np.ndarray      # 1-based line number of each table row
    raws: pa.Array             # raw text of each table row
    quarantine: Quarantine     # the records rejected for their shape (or encoding, or length)
    rows_in: int


def load_raw(path: Path, where: str, *, encoding: str, delimiter: str,
             missing: tuple[str, ...]) -> RawTable:
    """Read and split a file, quarantine malformed lines, parse the rest as strings."""
    raw = integrity.normalise_newlines(path.read_bytes().removeprefix(UTF8_BOM))
    data, undecodable, undecodable_raw = integrity.transcode_lines(raw, encoding)
    if undecodable.size and undecodable[0] == 0:
        decode_header(raw[:raw.find(b"\n") + 1 or len(raw)], encoding, where)  # raises
    if data and not data.endswith((b"\n", b"\r")):  # pyarrow cannot skip a header with no line end
        data += b"\n"
    lines = split_lines(data)
    texts = line_texts(data, lines) if lines.starts.size else pa.array([], pa.string())
    formed = well_formed(texts, delimiter)
    if lines.starts.size == 0 or lines.empty[0] or not formed[0]:
        raise UnreadableSourceError("the first line is not a header of column names",
                                    source=where, fix="check the file is a CSV with a header")
    names = parse_header(data[: lines.starts[0] + lines.spans[0]], delimiter, where)
    too_long = integrity.long_lines(lines.starts, lines.starts + lines.spans)
    is_record = ~lines.empty & (lines.numbers > 1)
    formed &= ~too_long
    keep = is_record & formed
    keep[0] = True
    invalid: list[int] = []
    try:
        table = _parse_records(keep_lines(data, lines, keep), names, delimiter, invalid)
    except pa.ArrowInvalid as err:
        raise UnreadableSourceError(f"pyarrow cannot parse the records: {err}", source=where,
                                    fix="check `delimiter:` and that this is a CSV file"
                                    ) from err
    kept_numbers = lines.numbers[keep]
    _check_alignment(table.num_rows, invalid, kept_numbers.size - 1, where)
    bad_shape = kept_numbers[np.asarray(invalid, dtype=np.int64) - 1]
    good = np.setdiff1d(kept_numbers[1:], bad_shape)
    quarantine = Quarantine(where)
    quarantine.add("encoding", f"not valid {encoding}", undecodable + 1, undecodable_raw)
    _quarantine_lines(quarantine, "line_too_long", f"more than {integrity.MAX_LINE_BYTES} bytes",
                      lines.numbers[is_record & too_long],
                      pc.utf8_slice_codeunits(texts, 0, integrity.RAW_KEEP))
    _quarantine_lines(quarantine, "bad_quoting", "a quoted field is not closed on its line "
                      "(quoted line breaks are not supported) or a quote follows a closed quoted "
                      "field", lines.numbers[is_record & ~formed & ~too_long], texts)
    _quarantine_lines(quarantine, "wrong_field_count",
                      f"expected {len(names)} fields as in the header", bad_shape, texts)
    return RawTable(table=normalise_strings(table, missing), positions=good,
                    raws=texts.take(pa.array(good - 1)), quarantine=quarantine,
                    rows_in=int(is_record.sum()) + undecodable.size)


def _check_alignment(rows: int, invalid: list, lines: int, where: str) -> None:
    """Rows and rejected rows must be exactly the kept lines, or positions would be wrong."""
    if rows + len(invalid) != lines or any(n is None for n in invalid):
        raise UnreadableSourceError(
            f"pyarrow returned {rows} rows and {len(invalid)} rejected rows for {lines} lines",
            source=where, fix="report this file: its quoting defeats line-exact parsing")


def decode_header(data: bytes, encoding: str, where: str) -> bytes:
    """UTF-8 bytes of the header line; the records are transcoded line by line."""
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as err:
        raise EncodingError(f"the header line is not valid {encoding} ({integrity.describe(err)})",
                                    source=where,
                                    fix="set `encoding:` to the file's encoding, e.g. latin-1"
                                    ) from err
    return data if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else text.encode()


def _parse_records(data: bytes, names: list[str], delimiter: str, invalid: list[int]) -> pa.Table:
    def on_invalid(row) -> str:
        # called by pyarrow for wrong-shape rows only; row.number is the line in ``data``
        invalid.append(row.number)
        return "skip"

    return pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=False),
    )


def _quarantine_lines(quarantine: Quarantine, reason: str, detail: str, numbers: np.ndarray,
                      texts: pa.Array) -> None:
    """Quarantine whole lines by 1-based number (``texts``: every line's text)."""
    quarantine.add(reason, detail, numbers,
                   texts.take(pa.array(np.asarray(numbers, np.int64) - 1)))
