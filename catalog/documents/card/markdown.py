"""The dataset card as GitHub-flavoured Markdown (``CARD.md``): text only, the HTML card has the
plots. A pure function of the manifest and the scanned stats."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog.documents.card.stats import CardStats
from catalog.documents.card.text import (
    coverage_rows,
    qc_label,
    schema_rows,
    validation_rows,
    version_line,
)
from catalog.documents.manifest_view import attributions, licence_url
from catalog.storage.manifest import Manifest, Owner, RowCounts


def render_markdown(manifest: Manifest, stats: CardStats, *, release: str | None = None,
                    changelog: Sequence[str] | None = None) -> str:
    """The card as GitHub-flavoured Markdown (no images: the HTML card has the plots)."""
    ds = manifest.dataset
    out = [f"# {ds.title or ds.name}", "", f"`{ds.name}` · "
           + version_line(manifest, release), ""]
    if ds.description:
        out += [ds.description.strip(), ""]
    out += _md_licence(manifest)
    out += ["## Coverage", ""] + _md_table(["", ""], coverage_rows(stats))
    out += ["## Schema", ""] + _md_table(
        ["column", "type", "units", "standard_name", "from", "conversion"], schema_rows(manifest))
    out += _md_counts(manifest, stats)
    out += ["## Validation", ""]
    rows = validation_rows(manifest)
    out += _md_table(["suite", "result", "expectations met", "unexpected values"], rows) \
        if rows else ["Validation was not run for this version.", ""]
    out += _md_changelog(changelog, release)
    out += _md_provenance(manifest)
    return "\n".join(out).rstrip() + "\n"


def _md_licence(manifest: Manifest) -> list[str]:
    ds = manifest.dataset
    owner = ds.owner or Owner()
    url = licence_url(ds.licence)
    licence = f"[{ds.licence}]({url})" if url else str(ds.licence)
    out = ["## Licence and attribution", "", f"- Licence: {licence}",
           f"- Owner: {owner.name or 'unknown'}"
           + (f" <{owner.email}>" if owner.email else "")]
    if ds.classification:
        out.append(f"- Classification: {ds.classification}")
    notes = attributions(manifest)
    out += [f"- Required attribution: {n}" for n in notes] or ["- Required attribution: none"]
    return out + [""]


def _md_counts(manifest: Manifest, stats: CardStats) -> list[str]:
    out: list[str] = []
    rows = manifest.rows or RowCounts()
    out += ["## Rows", ""] + _md_table(["in", "written", "dropped (fill)", "quarantined"], [(
        f"{rows.read or 0:,}", f"{rows.written or 0:,}", f"{rows.dropped or 0:,}",
        f"{rows.rejected or 0:,}")])
    if stats.splits:
        out += ["## Splits", ""] + _md_table(["split", "rows"], [
            (k, f"{v:,}") for k, v in sorted(stats.splits.items())])
    if stats.qc:
        out += ["## QC flags", ""] + _md_table(["column", "flag", "rows"], [
            (col, qc_label(flag, col), f"{n:,}") for col, counts in stats.qc.items()
            for flag, n in sorted(counts.items())])
    return out


def _md_changelog(changelog: Sequence[str] | None, release: str | None) -> list[str]:
    if changelog is None:
        return []
    title = "## Changes since the previous release"
    return [title, ""] + ([f"- {c}" for c in changelog] or ["- no changes"]) + [""]


def _md_provenance(manifest: Manifest) -> list[str]:
    run = manifest.run
    out = ["## Provenance", "", (f"- Run {run.id} with Haina {run.code_version} "
                                 f"on {run.runner}, recipe sha256 "
                                 f"`{run.recipe_sha256}`")]
    out += [f"- Source `{s.uri}` ({s.kind}, {s.size:,} bytes, sha256 "
            f"`{(s.sha256 or '')[:16]}…`)" for s in manifest.sources]
    return out + [""]



def _md_cell(value: Any) -> str:
    return ("" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return lines + [""]
