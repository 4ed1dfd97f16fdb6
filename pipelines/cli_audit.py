"""Subcommands ``haina audit verify|log`` and ``haina verify`` (arguments only; see
``pipelines.audit_commands`` for what they do). Import-light: argparse only."""
from __future__ import annotations

import argparse

_COMMANDS = "pipelines.audit_commands"


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_audit(subparsers)
    _register_verify(subparsers)


def _register_audit(subparsers: argparse._SubParsersAction) -> None:
    audit = subparsers.add_parser("audit", help="the tamper-evident log of every catalog change")
    sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = sub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad "
                                      "entry when it was edited, deleted, inserted or reordered")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=f"{_COMMANDS}:cmd_audit_verify")
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
    p.set_defaults(handler=f"{_COMMANDS}:cmd_audit_log")


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
    p.set_defaults(handler=f"{_COMMANDS}:cmd_verify")
