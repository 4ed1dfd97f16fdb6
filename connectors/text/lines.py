"""Bytes to well-formed lines, vectorised with numpy: byte ranges that tile a file on line
boundaries, encodings and over-long lines, and the scan that classifies every line (blank,
comment, unbalanced quote, wrong field count) without a Python loop over lines.

:func:`read_byte_range` returns the lines whose first byte lies in ``[start, stop)`` (the
chunking rule of Beam's text source), so chunks tile a file exactly. :func:`scan_lines` counts
delimiters and quotes per line from their positions; whitespace layouts first squeeze each run
of blanks into one delimiter. Only well-formed lines go on, as one buffer (no copy when the
whole chunk is clean).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from connectors import integrity
from connectors.base import ChunkSpec
from connectors.quarantine import Quarantine
from connectors.text.layout import TextLayout, local_path, split_names

_NL, _CR, _SP, _TAB = 10, 13, 32, 9


def plan_chunks(source_index: int, uri: str, sha256: str, size: int, data_start: int,
                chunk_bytes: int) -> tuple[ChunkSpec, ...]:
    """Byte ranges of at most ``chunk_bytes`` over the data section; at least one chunk."""
    starts = range(data_start, max(size, data_start + 1), chunk_bytes)
    return tuple(
        ChunkSpec(source_index, uri, sha256, i, None, start, min(start + chunk_bytes, size))
        for i, start in enumerate(starts))


# --------------------------------------------------------------------------------------------
# bytes -> well-formed lines
# --------------------------------------------------------------------------------------------

def read_byte_range(uri: str, start: int, stop: int, data_start: int) -> tuple[bytes, int]:
    """Bytes of the lines whose first byte is in ``[start, stop)``, and the first line's offset.

    ``stop < 0`` reads to the end. A line that crosses ``stop`` is read whole; a line that
    crosses ``start`` belongs to the previous chunk.
    """
    with open(local_path(uri), "rb") as handle:
        begin = max(start, data_start)
        if begin > data_start:
            handle.seek(begin - 1)
            if handle.read(1) != b"\n":
                handle.readline()
        begin = handle.tell() if begin > data_start else begin
        handle.seek(begin)
        if stop >= 0 and begin >= stop:
            return b"", begin
        body = handle.read() if stop < 0 else handle.read(stop - begin)
        if body and not body.endswith(b"\n"):
            body += handle.readline()
    return body, begin


@dataclasses.dataclass(frozen=True)
class ScannedLines:
    """Result of :func:`scan_lines`: the well-formed lines and what was wrong with the others."""

    clean: bytes                 # good lines, trimmed, newline-terminated
    good_lines: np.ndarray       # 0-based line index (within the chunk) of each good line
    rows_in: int                 # data lines seen (comments and blank lines are not records)
    bad_lines: np.ndarray        # line index of malformed lines
    bad_reasons: np.ndarray      # reason code per malformed line
    bad_details: list[str]
    bad_raw: list[str]


def line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, before ``\\n``) of every line."""
    newlines = np.flatnonzero(buf == _NL)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [buf.size]])
    if buf.size and buf[-1] == _NL:
        starts, ends = starts[:-1], ends[:-1]
    return starts, ends


def squeeze_whitespace(data: bytes) -> bytes:
    """Runs of blanks become one space; blanks at line ends go (vectorised over bytes)."""
    buf = np.frombuffer(data, np.uint8)
    blank = (buf == _SP) | (buf == _TAB) | (buf == _CR)
    keep = ~(blank & np.concatenate([blank[1:], [False]]))  # the last blank of each run stays
    buf, blank = buf[keep], blank[keep]
    newline = buf == _NL
    at_edge = np.concatenate([[True], newline[:-1]]) | np.concatenate([newline[1:], [True]])
    keep = ~(blank & at_edge)
    out = buf[keep]
    out[blank[keep]] = _SP
    return out.tobytes()


def count_per_line(buf: np.ndarray, byte: int, starts: np.ndarray,
                   ends: np.ndarray) -> np.ndarray:
    """How often ``byte`` occurs in each line.

    Works from the positions of the hits, never a cumulative sum over every byte. Common case
    first: when the hits split into equal groups that each fall inside one line, every line
    holds the same count (sorted positions, groups within lines, total = lines x count) and
    no search is needed.
    """
    where = np.flatnonzero(buf == byte)
    lines = starts.size
    if lines and where.size % lines == 0:
        per = where.size // lines
        grid = where.reshape(lines, per)
        if per == 0 or (np.all(grid[:, 0] >= starts) and np.all(grid[:, -1] < ends)):
            return np.full(lines, per, np.int32)
    line = np.searchsorted(starts, where, side="right") - 1
    return np.bincount(line, minlength=lines).astype(np.int32)


def _blank_lines(data: bytes, buf, starts, ends) -> np.ndarray:
    blank = ends == starts
    first = buf[np.minimum(starts, buf.size - 1)]
    maybe = ~blank & ((first == _SP) | (first == _TAB) | (first == _CR))
    for i in np.flatnonzero(maybe):  # only lines that start with a blank (rare)
        blank[i] = not data[starts[i]:ends[i]].strip()
    return blank


def _comment_lines(buf, starts, ends, prefix: str | None) -> np.ndarray:
    is_comment = np.zeros(starts.size, bool)
    if not prefix or not buf.size:
        return is_comment
    code = prefix.encode()
    is_comment = (ends - starts) >= len(code)
    for k, byte in enumerate(code):  # loop over the prefix's bytes, not over lines
        is_comment &= buf[np.minimum(starts + k, buf.size - 1)] == byte
    return is_comment


def _quoted_delimiters(buf, starts, delimiter: str, quote_char: str | None) -> np.ndarray:
    """Per line: does a delimiter sit after an odd number of the line's quote characters?"""
    lines = np.zeros(starts.size, bool)
    if not quote_char:
        return lines
    quote_count = np.cumsum(buf == ord(quote_char), dtype=np.int64)
    before_line = np.concatenate([[0], quote_count])[starts]
    positions = np.flatnonzero(buf == ord(delimiter))
    line = np.searchsorted(starts, positions, side="right") - 1
    inside = (quote_count[positions] - before_line[line]) % 2 == 1
    lines[line[inside]] = True
    return lines


def _field_counts(data: bytes, buf, starts, ends, layout: TextLayout, data_line):
    """Fields per line and whether quotes are unbalanced, from per-line byte counts.

    Counting delimiters is exact unless a quoted field holds one; lines with quotes whose
    count is off are re-split with the csv module (rare), so quoted delimiters stay legal.
    """
    delimiter = layout.delimiter or " "
    fields = count_per_line(buf, ord(delimiter), starts, ends) + 1
    quotes = np.zeros(starts.size, np.int32)
    if layout.quote_char and data.find(layout.quote_char.encode()) >= 0:
        quotes = count_per_line(buf, ord(layout.quote_char), starts, ends)
    odd = data_line & (quotes % 2 == 1)
    # A delimiter between quotes is not a field boundary. A line whose count is off, or that
    # has a delimiter inside quotes, is re-split with the csv module (the exact rules): a quoted
    # delimiter can make a malformed line count right (`,","` is 2 fields, not 3).
    suspicious = (quotes > 0) & ((fields != len(layout.names))
                                 | _quoted_delimiters(buf, starts, delimiter, layout.quote_char))
    recheck = np.flatnonzero(data_line & ~odd & suspicious)
    for i in recheck:
        line = data[starts[i]:ends[i]].decode("utf-8", "replace")
        fields[i] = len(split_names(line, layout.delimiter, layout.quote_char))
    return fields, odd


def scan_lines(data: bytes, layout: TextLayout) -> ScannedLines:
    """Split a chunk into well-formed lines and rejected lines (vectorised over lines)."""
    text = squeeze_whitespace(data) if layout.delimiter is None else data
    if not text:
        empty = np.zeros(0, np.int64)
        return ScannedLines(b"", empty, 0, empty, np.zeros(0, object), [], [])
    buf = np.frombuffer(text, np.uint8)
    starts, ends = line_bounds(buf)
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == _CR))
    data_line = ~_blank_lines(text, buf, starts, ends) & ~_comment_lines(buf, starts, ends,
                                                                          layout.comment)
    fields, odd = _field_counts(text, buf, starts, ends, layout, data_line)
    wrong = data_line & ~odd & (fields != len(layout.names))
    good = data_line & ~odd & ~wrong
    bad = np.flatnonzero(odd | wrong)
    reasons = np.where(odd[bad], "unbalanced_quote", "wrong_field_count")
    return ScannedLines(
        clean=_clean_bytes(text, buf, starts, good, data_line),
        good_lines=np.flatnonzero(good), rows_in=int(data_line.sum()), bad_lines=bad,
        bad_reasons=reasons,
        bad_details=_bad_details(reasons, fields[bad], len(layout.names)),
        bad_raw=_raw_lines(data, bad),
    )


def _raw_lines(data: bytes, lines: np.ndarray) -> list[str]:
    """Original text of the given lines (rejects only; the squeeze keeps line indices)."""
    if not lines.size:
        return []
    starts, ends = line_bounds(np.frombuffer(data, np.uint8))
    return [data[starts[i]:ends[i]].decode("utf-8", "replace").rstrip("\r") for i in lines]


def _clean_bytes(text: bytes, buf, starts, good, data_line) -> bytes:
    if good.all():
        return text  # the common case: no copy
    lengths = np.diff(np.concatenate([starts, [buf.size]]))
    clean = buf[np.repeat(good, lengths)].tobytes()
    return clean if not clean or clean.endswith(b"\n") else clean + b"\n"


def _bad_details(reasons, fields, expected: int) -> list[str]:
    # one string per rejected line (rejects are rare; clean lines never get here)
    return [f"{f} fields, expected {expected}" if r == "wrong_field_count"
            else "a quote character opens a field that never closes" for r, f in
            zip(reasons, fields, strict=True)]


def line_number_at(uri: str, offset: int) -> int:
    """1-based line number of the line starting at byte ``offset`` (reads the prefix)."""
    with open(local_path(uri), "rb") as handle:
        return integrity.line_breaks(handle, offset) + 1


def usable_lines(data: bytes, layout: TextLayout, rejects: Quarantine) -> tuple[bytes, int]:
    """UTF-8 text of a chunk whose lines the scan can trust, and how many lines were emptied.

    Lone CRs become line ends; a line that does not decode as the layout's encoding, or that is
    longer than :data:`integrity.MAX_LINE_BYTES`, is emptied (so line indices hold) and goes to
    ``rejects`` as ``encoding`` / ``line_too_long``. Clean chunks pass without a copy.
    """
    data, bad, raws = integrity.transcode_lines(integrity.normalise_newlines(data),
                                                layout.encoding)
    rejects.add(["encoding"] * len(bad), [f"not valid {layout.encoding}"] * len(bad), bad, raws)
    if len(data) <= integrity.MAX_LINE_BYTES:
        return data, len(bad)
    buf = np.frombuffer(data, np.uint8)
    starts, ends = line_bounds(buf)
    long = np.flatnonzero(integrity.long_lines(starts, ends))
    if not long.size:
        return data, len(bad)
    rejects.add(["line_too_long"] * long.size,
                [f"{ends[i] - starts[i]} bytes, more than {integrity.MAX_LINE_BYTES}"
                 for i in long], long,
                [data[starts[i]:starts[i] + integrity.RAW_KEEP].decode("utf-8", "replace") + "…"
                 for i in long])
    keep = np.ones(buf.size, bool)
    for i in long:  # rare: one slice per over-long line
        keep[starts[i]:ends[i]] = False
    return buf[keep].tobytes(), len(bad) + long.size


def raw_line_getter(data: bytes, good_lines: np.ndarray):
    bounds: list[np.ndarray] = []

    def raw(i: int) -> str:  # called only for rejected rows; line bounds computed once
        if not bounds:
            bounds.extend(line_bounds(np.frombuffer(data, np.uint8)))
        line = good_lines[i]
        return data[bounds[0][line]:bounds[1][line]].decode("utf-8", "replace").rstrip("\r")
    return raw
