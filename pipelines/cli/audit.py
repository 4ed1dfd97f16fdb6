"""``haina audit verify | audit log`` (the tamper-evident log of catalog changes) and ``haina
verify`` (a version's files against its manifest, the catalog and its lineage). Read-only,
except that ``verify`` first writes the card and Croissant file of a release interrupted after
its commit."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from catalog.audit import log as audit
from catalog.exceptions import DatasetNotFoundError
from catalog.store import Catalog
from pipelines.cli.common import (
    err_console,
    human_bytes,
    open_catalog_for,
    parse_ref,
    resolve_ref,
    table,
    warn_to,
)
from pipelines.cli.release import complete_documents, missing_documents
from pipelines.exceptions import HainaError

if TYPE_CHECKING:  # imports Beam's filesystems; only annotations need it here
    from catalog.storage.verify import VerifyReport


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_audit(subparsers)
    _register_verify(subparsers)


def _register_audit(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="the tamper-evident log of every catalog change")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad "
                                      "entry when it was edited, deleted, inserted or reordered")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_audit_verify)
    p = sub.add_parser("log", help="list audit entries, oldest first")
    p.add_argument("--action", help="e.g. version.commit, or version.* (wildcard *)")
    p.add_argument("--target", help="e.g. a dataset name, a run id, NAME@VERSION (wildcard *)")
    # dest differs from the global --actor, which names who acts, not whom to list
    p.add_argument("--actor", dest="filter_actor", metavar="ACTOR",
                   help="only entries by this actor (wildcard *)")
    p.add_argument("--since", help="ISO date or time (2026-11-01, 2026-11-01T12:00Z), or an age: "
                                   "30m, 12h, 7d")
    p.add_argument("--limit", type=int, help="only the most recent N entries")
    p.add_argument("--json", action="store_true", help="print entries as a JSON array")
    p.set_defaults(handler=cmd_audit_log)


def _register_verify(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify", help="re-hash a version's files and check them against its manifest, the "
                       "catalog and its lineage; exit 1 naming the first mismatch")
    p.add_argument("ref", nargs="?", metavar="NAME@VERSION",
                   help="the version to verify (VERSION may be 'latest')")
    p.add_argument("--folder", help="verify a version folder on its own (e.g. a copy), against "
                                    "its manifest only")
    p.add_argument("--manifest-sha256", help="with --folder: the trusted sha256 of manifest.json")
    p.add_argument("--workers", type=int, help="files hashed in parallel (default: CPUs, max 8)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=cmd_verify)


#: exit code of a verification that found a problem (1, like a failed quality gate)
EXIT_MISMATCH = 1
#: rows of problems printed; the first is what matters, the rest give the extent
_SHOWN = 30
_AGE = re.compile(r"^(\d+)\s*([mhd])$")
_AGE_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


# --- haina audit verify ----------------------------------------------------------------------
def cmd_audit_verify(args: argparse.Namespace, console: Console) -> int:
    catalog, warehouse = open_catalog_for(args, read_only=True)
    head_file = audit.head_file_of(catalog) or audit.head_file_uri(warehouse.root)
    report = audit.verify_chain(catalog, head_file=head_file)
    if args.json:
        console.print_json(json.dumps(_chain_json(report)))
        return 0 if report.ok else EXIT_MISMATCH
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    if report.ok:
        console.print(f"[bold green]audit log intact[/]: {report.entries} entries, head seq "
                      f"{report.last_seq} hash {report.last_hash}; checked against the "
                      f"audit_head row and {escape(str(report.head_file))}")
        return 0
    console.print(f"[bold red]audit log tampered[/]: first bad entry: "
                  f"{escape(str(report.first))}", soft_wrap=True)
    console.print(table(f"{len(report.problems)} problem(s)", ["seq", "problem"],
                        [(p.seq, p.problem) for p in report.problems[:_SHOWN]]))
    console.print("Fix: restore the audit tables from a backup and find out who changed them; "
                  "the log cannot be repaired in place without hiding the change")
    return EXIT_MISMATCH


def _chain_json(report: audit.ChainReport) -> dict[str, Any]:
    return {"ok": report.ok, "entries": report.entries, "last_seq": report.last_seq,
            "last_hash": report.last_hash, "head_row": report.head_row,
            "head_file": report.head_file, "head_file_seq": report.head_file_seq,
            "problems": [{"seq": p.seq, "problem": p.problem} for p in report.problems],
            "notes": report.notes}


# --- haina audit log -------------------------------------------------------------------------
def parse_since(text: str | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """``7d`` / ``12h`` / ``30m`` ago, or an ISO date or time (UTC when no offset is given)."""
    if not text:
        return None
    now = now or dt.datetime.now(dt.UTC)
    age = _AGE.match(text.strip())
    if age:
        return now - dt.timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise HainaError(f"--since {text!r} is neither an ISO date/time nor an age. Fix: e.g. "
                         f"--since 2026-11-01, --since 2026-11-01T12:00Z or --since 7d") from err
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def cmd_audit_log(args: argparse.Namespace, console: Console) -> int:
    catalog, _ = open_catalog_for(args, read_only=True)
    if args.limit is not None and args.limit < 1:
        raise HainaError(f"--limit {args.limit} must be at least 1. Fix: e.g. --limit 50")
    found = audit.entries(catalog, action=args.action, target=args.target,
                          actor=args.filter_actor, since=parse_since(args.since),
                          limit=args.limit)
    if args.json:
        console.print(json.dumps([e.as_json() for e in found], ensure_ascii=False),
                      markup=False, highlight=False, soft_wrap=True)
        return 0
    rows = [(e.seq, audit.iso(e.at)[:19] + "Z", e.actor, e.action, e.target, _short(e.details))
            for e in found]
    console.print(table(f"Audit log ({len(found)} entries)",
                        ["seq", "at (UTC)", "actor", "action", "target", "details"], rows))
    return 0


def _short(details: dict[str, Any], width: int = 70) -> str:
    text = json.dumps(details, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


# --- haina verify ----------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    # imported here: verification reads files through Beam's filesystems (seconds to import)
    from catalog.storage import verify as verify_mod

    if bool(args.ref) == bool(args.folder):
        raise HainaError("pass either NAME@VERSION or --folder PATH. Fix: e.g. `haina verify "
                         "demo@latest`, or `haina verify --folder /copy/of/version`")
    if args.manifest_sha256 and not args.folder:
        raise HainaError("--manifest-sha256 only applies with --folder. Fix: drop it; with "
                         "NAME@VERSION the catalog supplies the manifest hash")
    if args.workers is not None and args.workers < 1:
        raise HainaError(f"--workers {args.workers} must be at least 1. Fix: e.g. --workers 4")
    if args.folder:
        report = verify_mod.verify_folder(args.folder, manifest_sha256=args.manifest_sha256,
                                          workers=args.workers)
    else:
        ref = parse_ref(args.ref, "verify")
        catalog, _ = open_catalog_for(args, read_only=True)
        out = err_console if args.json else console
        _complete_releases(args, catalog, ref.name, out)
        version = resolve_ref(catalog, ref, warn=warn_to(out))
        report = verify_mod.verify_version(catalog, ref.name, version.version_id,
                                           workers=args.workers)
    if args.json:
        console.print(json.dumps(report.as_json(), default=str), markup=False, highlight=False,
                      soft_wrap=True)
    else:
        _print_report(console, report)
    return 0 if report.ok else EXIT_MISMATCH


def _complete_releases(args: argparse.Namespace, catalog: Catalog, name: str,
                       console: Console) -> None:
    """A release interrupted after its commit gets its card and Croissant file here: the
    only write of ``haina verify``, through a writable catalog opened for it alone."""
    try:
        if not missing_documents(catalog, name):
            return
    except DatasetNotFoundError:
        return  # resolving the reference names the unknown dataset itself
    writable, _ = open_catalog_for(args, read_only=False)
    try:
        complete_documents(writable, name, console)
    finally:
        writable.close()


def _print_report(console: Console, report: VerifyReport) -> None:
    from catalog.storage.verify import first_line  # Beam: see cmd_verify

    if report.mode == "folder":
        console.print(f"[bold]manifest-only check[/] of folder {escape(report.folder)} (no "
                      "catalog)", soft_wrap=True)
    for note in report.notes:
        console.print(f"[dim]note: {escape(note)}[/]", soft_wrap=True)
    speed = report.bytes_read / 2**20 / report.seconds if report.seconds else 0.0
    stats = (f"{report.files} file(s), {report.rows:,} rows, {human_bytes(report.bytes)} read "
             f"in {report.seconds:.2f} s ({speed:.0f} MiB/s)")
    if report.ok:
        checked = ("sha256, sizes and row counts against the manifest; no missing or stray "
                   "file; manifest totals and lineage")
        if report.mode == "catalog":
            checked = ("sha256, sizes and row counts against the manifest and the catalog; "
                       "manifest hash against the catalog (and releases); no missing or stray "
                       "file; lineage to the run's sources")
        console.print(f"[bold green]verified[/] {escape(report.target)}: {stats}. Checked: "
                      f"{checked}", soft_wrap=True)
        return
    console.print(f"[bold red]verification failed[/] {escape(report.target)}: "
                  f"{escape(first_line(report))}", soft_wrap=True)
    rows = [(m.check, m.path, _cell(m.expected), _cell(m.actual), m.note)
            for m in report.mismatches[:_SHOWN]]
    console.print(table(f"{len(report.mismatches)} mismatch(es); {stats}",
                        ["check", "path", "expected", "actual", "note"], rows))
    console.print("Fix: restore the named files from a backup or re-run the recipe to make a "
                  "new version; never edit a published version in place")


def _cell(value: object) -> str:
    return "" if value is None else str(value)
