"""``haina release | deprecate | undeprecate | yank | releases | diff``: the release lifecycle
of a dataset's versions, and what changed between two of them.

The difference (:mod:`catalog.releases.diff`) reads Parquet with pyarrow and pandas: it is
imported inside the handlers that need it, so ``haina --help`` does not pay for it.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from catalog.releases import lifecycle as release_mod
from catalog.store import Catalog
from pipelines.cli.common import open_catalog_for, parse_ref, resolve_ref, table, warn_to
from pipelines.exceptions import HainaError

if TYPE_CHECKING:  # pyarrow and pandas; only annotations need them here
    from catalog.releases.diff import ColumnStats, DatasetDiff


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="release a draft version with a semantic version",
                       description="Release NAME@DRAFT (a version id or 'latest-draft'). Without "
                       "--version the bump is proposed from the difference to the previous "
                       "release: PATCH same records, MINOR records/columns added, MAJOR records "
                       "changed or removed, columns removed/retyped, split changed.")
    p.add_argument("ref", metavar="NAME@DRAFT")
    p.add_argument("--version", dest="semver", metavar="X.Y.Z",
                   help="the semantic version to give it (refused if it understates the change)")
    p.add_argument("--notes", metavar="FILE", help="release notes, read from this text file")
    p.add_argument("--dry-run", action="store_true",
                   help="show the difference and the proposed version; release nothing")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip re-hashing the draft's files before releasing")
    p.set_defaults(handler=cmd_release)

    transitions = {
        "deprecate": "mark a release deprecated (still readable; readers are warned)",
        "undeprecate": "undo a deprecation",
        "yank": "yank a release: readers are refused unless they insist; final, --reason needed",
    }
    for action, text in transitions.items():
        p = sub.add_parser(action, help=text)
        p.add_argument("ref", metavar="NAME@VERSION", help="VERSION: a semver, a version id or "
                       "'latest'")
        p.add_argument("--reason", help="why (recorded in the transition and the audit log)")
        p.set_defaults(handler=cmd_transition, action=action)

    p = sub.add_parser("releases", help="list the releases of a dataset and their state changes")
    p.add_argument("name")
    p.set_defaults(handler=cmd_releases)

    p = sub.add_parser("diff", help="what changed between two versions: NAME@A NAME@B")
    p.add_argument("old", metavar="NAME@A")
    p.add_argument("new", metavar="NAME@B")
    p.add_argument("--json", action="store_true", help="print the difference as JSON")
    p.add_argument("--no-stats", dest="stats", action="store_false",
                   help="skip the per-column statistics (they read every data file)")
    p.set_defaults(handler=cmd_diff)


#: reasons and partitions shown before "... and N more"
_SHOWN = 12


def _read_notes(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as err:
        raise HainaError(f"--notes {path}: cannot read the release notes ({err}). Fix: pass a "
                         f"UTF-8 text file, e.g. --notes CHANGES.md") from err


# --- release -----------------------------------------------------------------------------------
def cmd_release(args: argparse.Namespace, console: Console) -> int:
    name, ref = parse_ref(args.ref, "release")
    notes = _read_notes(args.notes)
    catalog, warehouse = open_catalog_for(args, read_only=False)
    if args.dry_run:
        plan = release_mod.plan_release(catalog, name, ref, requested=args.semver)
        _print_plan(console, plan)
        console.print(f"dry run: would release {name}@{plan.version.version_id} as "
                      f"{plan.semver}")
        return 0
    # the card and Croissant files go into the warehouse after the catalog says "released":
    # a read-only warehouse must be refused before that, not half-way
    warehouse.require_writable("nothing was released")
    complete_documents(catalog, name, console)  # of a release killed after its commit
    record, plan = release_mod.release(catalog, name, ref, requested=args.semver, notes=notes,
                                       verify=args.verify)
    _print_plan(console, plan)
    _write_release_documents(catalog, record, console)
    console.print(f"[bold green]released[/] {name}@{record.semver} "
                  f"({record.version_id}, manifest sha256 {record.manifest_sha256[:12]}…)")
    console.print(f"next: haina diff {name}@{plan.previous.semver} {name}@{record.semver}"
                  if plan.previous else f"next: haina show {name}@{record.version_id}")
    return 0


def _write_release_documents(catalog: Catalog, record: release_mod.ReleaseRecord,
                             console: Console) -> None:
    """The dataset card (Markdown, HTML) and Croissant JSON-LD that publish a release."""
    version = catalog.version(record.dataset, record.version_id)
    md_path, html_path, jsonld = release_mod.write_documents(catalog, version, record)
    console.print(f"dataset card: {html_path} (and {md_path}); Croissant: {jsonld}")


def missing_documents(catalog: Catalog, name: str) -> list[release_mod.ReleaseRecord]:
    """The releases of ``name`` whose card or Croissant file is not written (a release killed
    after its commit, or files removed): what :func:`complete_documents` would write. Reads
    only, so ``haina verify`` opens a writable catalog only when there is something to do."""
    versions = {v.version_id: v for v in catalog.versions(name)}
    return [r for r in release_mod.releases(catalog, name)
            if r.documented_at is None or release_mod.missing_documents(versions[r.version_id])]


def complete_documents(catalog: Catalog, name: str, console: Console) -> None:
    """Write the card and Croissant file of releases that lack them (a release killed after
    its commit), and say so; ``haina release`` and ``haina verify`` start with this."""
    for record, paths in release_mod.complete_releases(catalog, name):
        console.print(f"completed release {name}@{record.semver}: wrote its "
                      f"{', '.join(Path(p).name for p in paths)} (the release had been "
                      f"interrupted after its commit, or they were removed)")


def _print_plan(console: Console, plan: release_mod.ReleasePlan) -> None:
    previous = plan.previous.semver if plan.previous else "none"
    console.print(f"previous release: {previous}; required bump: "
                  f"[bold]{plan.proposal.level.name if plan.previous else 'first release'}[/]"
                  f" -> {plan.semver}")
    reasons = plan.proposal.reasons
    for reason in reasons[:_SHOWN]:
        console.print(f"  - {reason}")
    if len(reasons) > _SHOWN:
        console.print(f"  … and {len(reasons) - _SHOWN} more")
    if plan.diff is not None:
        _print_partitions(console, plan.diff, only_changed=True)


# --- transitions -------------------------------------------------------------------------------
def cmd_transition(args: argparse.Namespace, console: Console) -> int:
    name, ref = parse_ref(args.ref, args.action)
    if args.action in release_mod.REASON_REQUIRED and not (args.reason or "").strip():
        raise HainaError(f"{args.action} {args.ref}: a reason is required; readers are told "
                         f"why the version went away. Fix: haina {args.action} {args.ref} "
                         f"--reason \"what is wrong with it\"")
    catalog, warehouse = open_catalog_for(args, read_only=False)
    warehouse.require_writable("nothing was changed")
    state = release_mod.transition(catalog, name, ref, args.action, args.reason)
    console.print(f"{args.ref} is now [bold]{state}[/]"
                  + (f": {args.reason}" if args.reason else ""))
    return 0


def cmd_releases(args: argparse.Namespace, console: Console) -> int:
    catalog, _ = open_catalog_for(args, read_only=True)
    states = {v.version_id: v.state for v in catalog.versions(args.name)}
    rows = [(r.semver, r.version_id, states.get(r.version_id, "?"), r.bump, r.previous or "",
             r.released_at.isoformat(timespec="seconds"), r.actor,
             (r.notes or "").splitlines()[0][:60] if r.notes else "")
            for r in release_mod.releases(catalog, args.name)]
    console.print(table(f"Releases of {args.name}", ["semver", "version", "state", "bump",
                                                      "after", "released (UTC)", "by", "notes"],
                        rows))
    moves = [(m.at.isoformat(timespec="seconds"), m.semver or "", m.version_id,
              f"{m.from_state} -> {m.to_state}", m.actor, m.reason or "")
             for m in release_mod.transitions(catalog, args.name)]
    console.print(table("State changes", ["at (UTC)", "semver", "version", "change", "by",
                                          "reason"], moves))
    return 0


# --- diff --------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace, console: Console) -> int:
    from catalog.releases.diff import diff_versions  # pyarrow and pandas: kept off --help

    ref_a, ref_b = parse_ref(args.old, "diff"), parse_ref(args.new, "diff")
    catalog, _ = open_catalog_for(args, read_only=True)
    # inspecting a yanked version is allowed: a diff is how one finds out what was wrong
    warn = warn_to(console) if not args.json else (lambda _m: None)
    old = resolve_ref(catalog, ref_a, warn=warn)
    new = resolve_ref(catalog, ref_b, warn=warn)
    diff = diff_versions(catalog, old, new, stats=args.stats)
    if args.json:
        console.print(json.dumps(diff.to_json(), indent=2), markup=False, highlight=False,
                      soft_wrap=True)
        return 0
    print_diff(console, diff, str(ref_a), str(ref_b))
    return 0


def print_diff(console: Console, diff: DatasetDiff, label_a: str, label_b: str) -> None:
    t = diff.totals
    console.print(f"[bold]{label_a}[/] ({diff.a}) -> [bold]{label_b}[/] ({diff.b}): rows "
                  f"{t['rows_a']:,} -> {t['rows_b']:,}; added {t['added']:,}, removed "
                  f"{t['removed']:,}, changed {t['changed']:,}")
    console.print(f"rows are matched on key columns {', '.join(diff.key_columns) or '(none)'}")
    _print_schema(console, diff)
    _print_partitions(console, diff, only_changed=False)
    files = [("added", p) for p in diff.files_added] + [("removed", p) for p in diff.files_removed]
    if files:
        console.print(table("Files", ["", "path"], files))
    if diff.drift:
        console.print(table("Column statistics (A -> B)", ["column", "min", "max", "mean",
                                                            "null %", "flags"],
                            [_drift_row(d.column, d.a, d.b) for d in diff.drift]))
    for note in diff.patch_notes:
        console.print(f"note: {note}")


def _print_schema(console: Console, diff: DatasetDiff) -> None:
    s = diff.schema
    rows: list[tuple[str, str, str | None, str | None]] = [
        ("added", c, "", "") for c in s.added]
    rows += [("removed", c, "", "") for c in s.removed]
    rows += [("retyped", c.name, c.old, c.new) for c in s.retyped]
    rows += [("units", c.name, c.old, c.new) for c in s.units]
    rows += [("metadata", c.name, c.old, "") for c in s.metadata]
    if rows:
        console.print(table("Schema changes", ["change", "column", "A", "B"], rows))
    else:
        console.print("schema: unchanged")


def _print_partitions(console: Console, diff: DatasetDiff, *, only_changed: bool) -> None:
    parts = [p for p in diff.partitions
             if not only_changed or p.added or p.removed or p.changed]
    rows = [(p.partition, f"{p.rows_a:,}", f"{p.rows_b:,}", f"{p.added:,}", f"{p.removed:,}",
             f"{p.changed:,}", f"{p.unchanged:,}", p.method,
             ", ".join(f"{k} {v:,}" for k, v in sorted(p.changed_columns.items())))
            for p in parts[:_SHOWN * 4]]
    if rows:
        console.print(table("Rows per partition", ["partition", "A", "B", "added", "removed",
                                                   "changed", "unchanged", "how",
                                                   "changed columns"], rows))
    if len(parts) > _SHOWN * 4:
        console.print(f"… and {len(parts) - _SHOWN * 4} more partitions (--json lists all)")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _pair(a: str | None, b: str | None) -> str:
    a, b = a or "(absent)", b or "(absent)"
    return a if a == b else f"{a} -> {b}"


def _flags(s: ColumnStats) -> str:
    return " ".join(f"{k}:{100 * v:.1f}%" for k, v in (s.flags or {}).items())


def _drift_row(column: str, a: ColumnStats | None,
               b: ColumnStats | None) -> tuple[str, ...]:
    def cell(show: Callable[[ColumnStats], str]) -> str:
        return _pair(show(a) if a else None, show(b) if b else None)

    has_flags = any(s is not None and s.flags is not None for s in (a, b))
    return (column, cell(lambda s: _fmt(s.min)), cell(lambda s: _fmt(s.max)),
            cell(lambda s: _fmt(s.mean)), cell(lambda s: f"{100 * s.null_fraction:.2f}"),
            cell(_flags) if has_flags else "")
