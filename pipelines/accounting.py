"""Row accounting of a run: every input row is in the output, dropped as fill, or quarantined.

The pipeline's merged summary (:func:`pipelines.beam.steps.merge_summaries`) holds exact counts
per source; these functions total them and refuse a run whose numbers do not balance, before
anything is committed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from catalog.store import source_key
from pipelines.exceptions import RunError, SourceReadError
from pipelines.plan import EntryPlan

#: a source's merged record in the run summary (steps.chunk_summary)
SourceCounts = Mapping[str, Any]
#: the counts a run row in the catalog keeps
CATALOG_COUNTS = ("rows_in", "rows_out", "rows_dropped", "rows_rejected")


def check_read_errors(sources: Mapping[str, SourceCounts]) -> None:
    """Refuse a run in which a connector failed on a chunk, naming each distinct error once."""
    errors = [e for rec in sources.values() for e in rec["errors"]]
    if not errors:
        return
    distinct = sorted(set(errors))
    raise SourceReadError(f"{distinct[0]} (no version was committed)" if len(distinct) == 1
                          else "sources failed while reading; no version was committed:"
                          "\n  - " + "\n  - ".join(distinct))


def totals(sources: Mapping[str, SourceCounts]) -> dict[str, int]:
    """The run's counts summed over its sources (``rows_rejected`` is the catalog's name for
    the quarantined rows)."""
    keys = ("rows_in", "rows_out", "rows_dropped", "rows_quarantined", "chunks")
    counts = {k: sum(rec[k] for rec in sources.values()) for k in keys}
    counts["source_files"] = len(sources)
    counts["rows_rejected"] = counts["rows_quarantined"]
    return counts


def catalog_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts a run row records."""
    return {k: counts[k] for k in CATALOG_COUNTS}


def check_accounting(sources: Mapping[str, SourceCounts], entries: Sequence[EntryPlan],
                     files: Sequence[Mapping[str, Any]]) -> None:
    """Every input row is in the output, dropped as fill, or quarantined — and the files agree."""
    expected_chunks = {source_key(i, p.uri): len(p.chunks) for i, p in entries}
    for uri, n_chunks in expected_chunks.items():
        got = sources.get(uri, {}).get("chunks", 0)
        if got != n_chunks:
            raise RunError(f"{uri}: {got} of {n_chunks} chunks were processed; no version was "
                           f"committed. Fix: re-run; if it repeats, report it as a bug")
    for uri, rec in sources.items():
        if rec["rows_in"] != rec["rows_out"] + rec["rows_dropped"] + rec["rows_quarantined"]:
            raise RunError(f"{uri}: row accounting does not balance: rows in {rec['rows_in']} != "
                           f"out {rec['rows_out']} + dropped {rec['rows_dropped']} + quarantined "
                           f"{rec['rows_quarantined']}; no version was committed")
    written = sum(f["rows"] for f in files if f["partition"] != "quarantine")
    out = sum(rec["rows_out"] for rec in sources.values())
    if written != out:
        raise RunError(f"data files hold {written} rows but {out} were produced; no version was "
                       f"committed")


def quarantine_stats(sources: Mapping[str, SourceCounts]) -> dict[str, dict[str, Any]]:
    """Quarantined rows by reason, and each source's reasons (for the validation report)."""
    by_source = {uri: rec["quarantine_reasons"] for uri, rec in sources.items()
                 if rec["quarantine_reasons"]}
    by_reason: dict[str, int] = {}
    for reasons in by_source.values():
        for reason, n in reasons.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {"by_reason": by_reason, "by_source": by_source}
