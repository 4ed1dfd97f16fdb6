"""``haina unlock NAME``: an operator frees a dataset whose lock holder is dead (argparse only;
the handler is :func:`pipelines.lock_commands.cmd_unlock`)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "unlock", help="remove a dataset's lock whose run is dead; its run is marked abandoned "
                       "(audited)",
        description="Remove the dataset lock of NAME, mark the run holding it abandoned and "
                    "record both in the audit log. For a run that died on another host when "
                    "you cannot wait for its lease to run out; a live run that loses its lock "
                    "cannot commit. A holder alive on this host is refused unless --force.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--reason", help="why (recorded in the audit log and on the run)")
    p.add_argument("--force", action="store_true",
                   help="unlock even though the holder's process is alive on this host")
    p.set_defaults(handler="pipelines.lock_commands:cmd_unlock")
