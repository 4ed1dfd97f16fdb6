"""``haina kinds [KIND]``: the source kinds, and every recipe key of one. Reads no catalog."""
from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape

import connectors
from connectors import reference
from pipelines.cli.common import table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kinds", help="list the source kinds, or every recipe key of one kind",
        description="Without KIND: each source kind and what it reads. With KIND: every key of "
                    "a sources[] entry of that kind, with its type, default, description and an "
                    "example (the same tables as docs/connectors.md). Reads no catalog.")
    p.add_argument("kind", nargs="?", metavar="KIND")
    p.set_defaults(handler=cmd_kinds)


def cmd_kinds(args: argparse.Namespace, console: Console) -> int:
    if args.kind is None:
        console.print(table("source kinds (haina kinds KIND lists its keys)", ["kind", "reads"],
                            [(kind, escape(reference.summary(kind)))
                             for kind in connectors.kinds()]))
        return 0
    # escaped: rich would take `[time, temp]` in a default or an example for markup and drop it
    rows = [tuple(map(escape, (k.name, k.type, k.default, k.description, k.example)))
            for k in reference.keys(args.kind)]
    out = table(escape(f"kind {args.kind}: {reference.summary(args.kind)}"),
                ["key", "type", "default", "description", "example"], rows)
    for column in out.columns:  # wrap long keys and examples rather than cut them with "…"
        column.overflow = "fold"
    console.print(out)
    return 0
