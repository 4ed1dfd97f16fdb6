"""NMEA 0183 framing of AIS sentences, vectorised over a chunk's lines with pyarrow.

Regex split into sentence fields, checksum, NMEA 4 tag blocks (time ``c:`` and group ``g:``),
the receiver time of USCG NAIS trailers, and the reassembly of multi-sentence messages. A line
that cannot be framed is quarantined with a reason: ``not_nmea``, ``truncated``,
``bad_checksum``, ``orphan_fragment``, ``decode_error``, ``line_too_long``. Decoding the
payloads is :mod:`connectors.ais.nmea`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors import integrity
from connectors.ais.lines import Records, open_source, read_line_range

_SENTENCE = (r"^(?:\\(?P<tag>[^\\]*)\\)?(?P<body>!(?P<talker>[A-Za-z]{2})(?:VDM|VDO),"
             r"(?P<cnt>[0-9]),(?P<num>[0-9]),(?P<seq>[0-9]{0,4}),(?P<chan>[^,*]{0,2}),"
             r"(?P<payload>[^,*]*),(?P<fill>[0-5]))\*(?P<cs>[0-9A-Fa-f]{2})(?P<trail>,[^*]*)?$")
_TAG = r"^(?P<fields>[^*]*)(?:\*(?P<cs>[0-9A-Fa-f]{2}))?$"
_TAG_TIME = r"(?:^|,)c:(?P<c>[0-9]{1,15})(?:,|$)"
_TAG_GROUP = r"(?:^|,)g:(?P<gnum>[0-9]{1,4})-(?P<gtot>[0-9]{1,4})-(?P<gid>[0-9]{1,9})"
_RECEIVER_TIME = r",(?P<t>[0-9]{1,15})$"
ARMOR = r"^[0-9:;<=>?@A-W`a-w]*$"
_HEX = np.array([f"{i:02X}" for i in range(256)], dtype=object)
#: the leading run of continuation fragments after a chunk boundary belongs to the chunk before;
#: bounded so that both chunks agree on the run without reading far
_MAX_RUN = 16
_CONTINUATION = re.compile(rb"^(?:\\[^\\]*\\)?![A-Za-z]{2}VD[MO],([1-9]),([1-9]),")


def _is_continuation(line: bytes) -> bool:
    match = _CONTINUATION.match(line.strip())
    return match is not None and 1 < int(match.group(2)) <= int(match.group(1))


def _leading_run(lines: Sequence[bytes]) -> int:
    n = 0
    while n < min(len(lines), _MAX_RUN) and _is_continuation(lines[n]):
        n += 1
    return n


def nmea_chunk_lines(uri: str, start: int, stop: int) -> tuple[list[bytes], int]:
    """The chunk's lines and the number of its first line.

    A message belongs to the chunk holding its first fragment, so the chunk gives its leading run of
    continuation fragments to the chunk before, and takes the run that follows its own end.
    """
    with open_source(uri) as handle:
        data, first_line, end = read_line_range(handle, start, stop)
        lines = integrity.normalise_newlines(data).split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        if start > 0:
            skip = _leading_run(lines)
            lines, first_line = lines[skip:], first_line + skip
        if lines:
            handle.seek(end)
            after = [handle.readline() for _ in range(_MAX_RUN)]
            lines += [line.rstrip(b"\n") for line in after[:_leading_run(after)]]
    return lines, first_line


def xor_checksums(strings: pa.Array) -> np.ndarray:
    """NMEA checksum (XOR of all bytes) of every string, vectorised with ``reduceat``."""
    strings = pa.array(strings.to_numpy(zero_copy_only=False), pa.string()) \
        if strings.offset else strings
    if len(strings) == 0:
        return np.zeros(0, dtype=np.uint8)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[: len(strings) + 1]
    raw = strings.buffers()[2]
    data = np.frombuffer(raw, dtype=np.uint8)[: offsets[-1]] if raw is not None else \
        np.zeros(0, np.uint8)
    # a trailing zero keeps every start index in range; XOR with 0 changes nothing
    padded = np.append(data, np.uint8(0))
    sums = np.bitwise_xor.reduceat(padded, offsets[:-1])
    return np.where(np.diff(offsets) == 0, 0, sums).astype(np.uint8)


def _checksum_ok(bodies: pa.Array, expected: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    computed = _HEX[xor_checksums(bodies)]
    ok = np.asarray(pc.equal(pc.utf8_upper(expected), pa.array(computed, pa.string())))
    return ok, computed


def _classify(line: str) -> tuple[str, str]:
    """Why a line did not match the sentence pattern (runs on rejected lines only)."""
    body = line
    if line.startswith("\\"):
        end = line.find("\\", 1)
        if end < 0:
            return "truncated", "tag block is not closed by a backslash"
        body = line[end + 1:]
    if not re.match(r"^![A-Za-z]{2}VD[MO],", body):
        return "not_nmea", "not an !AIVDM/!AIVDO sentence"
    star = body.find("*")
    if star < 0 or not re.match(r"[0-9A-Fa-f]{2}", body[star + 1:star + 3]):
        return "truncated", "sentence ends before its *hh checksum"
    if body[:star].count(",") < 6:
        return "truncated", f"sentence has {body[:star].count(',') + 1} of 7 fields"
    return "decode_error", "malformed fields (fragment numbers, channel, fill bits or trailer)"


def frame(lines: list[bytes], first_line: int, rejects: Records) -> dict[str, pa.Array]:
    """Split lines into sentence fields; reject bad lines. Returns one array per field."""
    text = pa.array(b"\n".join(lines).decode("latin-1").split("\n") if lines else [],
                    pa.string())
    text = pc.utf8_trim_whitespace(text)
    positions = pa.array(np.arange(first_line, first_line + len(text), dtype=np.int64))
    keep = pc.greater(pc.utf8_length(text), 0)  # blank lines are not records
    text, positions = text.filter(keep), positions.filter(keep)
    rejects.lines += len(text)
    long = np.asarray(pc.greater(pc.utf8_length(text), integrity.MAX_LINE_BYTES))
    if long.any():  # keep a prefix only: a multi-MiB line would bloat the quarantine
        rejects.add("line_too_long", f"more than {integrity.MAX_LINE_BYTES} bytes",
                    positions.filter(pa.array(long)),
                    pc.utf8_slice_codeunits(text.filter(pa.array(long)), 0, integrity.RAW_KEEP))
        text, positions = text.filter(pa.array(~long)), positions.filter(pa.array(~long))
    parts = pc.extract_regex(text, _SENTENCE)
    matched = parts.is_valid()
    bad = pc.invert(matched)
    unframed = text.filter(bad)
    why = [_classify(line) for line in unframed.to_pylist()]  # rejected lines only
    rejects.add([r for r, _ in why], [d for _, d in why], positions.filter(bad), unframed)
    fields = {name: parts.field(name).filter(matched) for name in
              ("tag", "body", "talker", "cnt", "num", "seq", "chan", "payload", "fill", "cs",
               "trail")}
    fields["raw"], fields["position"] = text.filter(matched), positions.filter(matched)
    ok, computed = _checksum_ok(pc.utf8_slice_codeunits(fields["body"], 1), fields["cs"])
    rejects.add("bad_checksum", _checksum_details(fields["cs"], computed, ok),
                fields["position"].filter(pa.array(~ok)), fields["raw"].filter(pa.array(~ok)))
    fields = {k: v.filter(pa.array(ok)) for k, v in fields.items()}
    return _check_fragments(_tag_blocks(fields, rejects), rejects)


def _checksum_details(expected: pa.Array, computed: np.ndarray, ok: np.ndarray) -> list[str]:
    exp = np.asarray(expected.to_numpy(zero_copy_only=False), dtype=object)[~ok]
    return [f"checksum *{e} does not match the computed {c}" for e, c in zip(exp, computed[~ok], strict=True)]


def _tag_blocks(fields: dict[str, pa.Array], rejects: Records) -> dict[str, pa.Array]:
    """Check NMEA 4 tag-block checksums; extract ``c:`` (unix time) and ``g:`` (group)."""
    tag = pc.extract_regex(fields["tag"], _TAG)
    has_tag = np.asarray(pc.not_equal(fields["tag"], ""))
    parsed = np.asarray(tag.is_valid())
    has_cs = np.asarray(pc.not_equal(tag.field("cs"), ""))
    cs_ok, _ = _checksum_ok(tag.field("fields"), tag.field("cs"))
    malformed = has_tag & ~parsed
    bad_cs = has_tag & parsed & has_cs & ~cs_ok
    for mask, reason, detail in ((malformed, "decode_error", "malformed tag block"),
                                 (bad_cs, "bad_checksum", "tag block checksum does not match")):
        rejects.add(reason, detail, fields["position"].filter(pa.array(mask)),
                    fields["raw"].filter(pa.array(mask)))
    keep = pa.array(~(malformed | bad_cs))
    fields["tag"] = tag.field("fields")  # without its *hh
    fields = {k: v.filter(keep) for k, v in fields.items()}
    fields["time"] = _message_time(fields)
    group = pc.extract_regex(fields["tag"], _TAG_GROUP)
    fields["group"] = pc.if_else(group.is_valid(), group.field("gid"), pa.scalar(None, pa.string()))
    return fields


def _message_time(fields: dict[str, pa.Array]) -> pa.Array:
    """Tag-block ``c:`` time, else the receiver's unix time at the end of a USCG NAIS trailer.

    ``c:`` is seconds in NMEA 4.10 but milliseconds in some feeds; values past 1e11 (year 5138 in
    seconds) can only be milliseconds.
    """
    tag_time = pc.extract_regex(fields["tag"], _TAG_TIME)
    rx_time = pc.extract_regex(pc.fill_null(fields["trail"], ""), _RECEIVER_TIME)
    secs = pc.coalesce(
        pc.if_else(tag_time.is_valid(), tag_time.field("c"), pa.scalar(None, pa.string())),
        pc.if_else(rx_time.is_valid(), rx_time.field("t"), pa.scalar(None, pa.string())))
    secs = pc.cast(secs, pa.int64())
    micros = pc.if_else(pc.greater(secs, 10**11), pc.multiply(secs, 1000),
                        pc.multiply(secs, 1_000_000))
    return pc.cast(micros, pa.timestamp("us", tz="UTC"))


def _check_fragments(fields: dict[str, pa.Array], rejects: Records) -> dict[str, pa.Array]:
    cnt, num = pc.cast(fields["cnt"], pa.int8()), pc.cast(fields["num"], pa.int8())
    bad = np.asarray(pc.or_(pc.less(cnt, 1), pc.or_(pc.less(num, 1), pc.greater(num, cnt))))
    rejects.add("decode_error", "fragment number outside 1..fragment count",
                fields["position"].filter(pa.array(bad)), fields["raw"].filter(pa.array(bad)))
    fields = {k: v.filter(pa.array(~bad)) for k, v in fields.items()}
    fields["cnt"], fields["num"] = cnt.filter(pa.array(~bad)), num.filter(pa.array(~bad))
    fields["fill"] = pc.cast(fields["fill"], pa.int8())
    return fields


# --- multi-sentence reassembly -------------------------------------------------------------------

def _fragment_keys(fields: dict[str, pa.Array]) -> list[tuple]:
    """A stream of fragments: the tag-block group when there is one, else talker + sequence id +
    channel + count (as receivers interleave messages by sequence id and channel)."""
    cols = [fields[k].to_pylist() for k in ("group", "talker", "seq", "chan", "cnt")]
    return [("g", g, c) if g is not None else (t, s, ch, c) for g, t, s, ch, c in zip(*cols, strict=True)]


def assemble(fields: dict[str, pa.Array], rejects: Records) -> dict[str, pa.Array]:
    """Join multi-sentence messages; single sentences pass through untouched (vectorised)."""
    multi = np.asarray(pc.greater(fields["cnt"], 1))
    single = {k: v.filter(pa.array(~multi)) for k, v in fields.items()}
    if not multi.any():
        return single
    many = {k: v.filter(pa.array(multi)) for k, v in fields.items()}
    groups, orphans = _group_fragments(_fragment_keys(many), many["num"].to_pylist(),
                                       many["cnt"].to_pylist())
    orphans_arr = pa.array(np.asarray(orphans, dtype=np.int64), pa.int64())
    rejects.add("orphan_fragment", "fragment of a multi-sentence message whose other fragments "
                "are missing or out of order", many["position"].take(orphans_arr),
                many["raw"].take(orphans_arr))
    rejects.merged += sum(len(g) - 1 for g in groups)
    joined = _join_groups(many, groups)
    out = {k: pa.concat_arrays([single[k], joined[k]]) for k in joined}
    return {k: v.take(pc.sort_indices(out["position"])) for k, v in out.items()}


def _group_fragments(keys: list[tuple], nums: list[int], cnts: list[int]
                     ) -> tuple[list[list[int]], list[int]]:
    # The one loop over lines in framing: only multi-sentence fragments reach it.
    pending: dict[tuple, list[int]] = {}
    groups: list[list[int]] = []
    orphans: list[int] = []
    for i, (key, num) in enumerate(zip(keys, nums, strict=True)):
        parts = pending.get(key)
        if num == 1:
            if parts:
                orphans.extend(parts)
            parts = pending[key] = [i]
        elif parts is not None and len(parts) + 1 == num:
            parts.append(i)
        else:
            orphans.append(i)
            continue
        if len(parts) == cnts[i]:
            groups.append(pending.pop(key))
    for parts in pending.values():
        orphans.extend(parts)
    return groups, sorted(orphans)


def _join_groups(many: dict[str, pa.Array], groups: list[list[int]]) -> dict[str, pa.Array]:
    payload, raw, time = (many[k].to_pylist() for k in ("payload", "raw", "time"))
    fill = many["fill"].to_pylist()
    position = many["position"].to_pylist()
    times = [next((time[i] for i in g if time[i] is not None), None) for g in groups]
    return {
        "payload": pa.array(["".join(payload[i] for i in g) for g in groups], pa.string()),
        "raw": pa.array(["\n".join(raw[i] for i in g) for g in groups], pa.string()),
        "fill": pa.array([fill[g[-1]] for g in groups], pa.int8()),
        "position": pa.array([position[g[0]] for g in groups], pa.int64()),
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
    }
