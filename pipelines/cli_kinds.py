"""``haina kinds [KIND]``: the source kinds, and every recipe key of one (argparse only; the
handler is :func:`pipelines.kinds_commands.cmd_kinds`)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "kinds", help="list the source kinds, or every recipe key of one kind",
        description="Without KIND: each source kind and what it reads. With KIND: every key of "
                    "a sources[] entry of that kind, with its type, default, description and an "
                    "example (the same tables as docs/connectors.md). Reads no catalog.")
    p.add_argument("kind", nargs="?", metavar="KIND")
    p.set_defaults(handler="pipelines.kinds_commands:cmd_kinds")
