"""``haina unlock NAME``: an operator frees a dataset whose lock holder is dead."""
from __future__ import annotations

import argparse
import socket

from rich.console import Console
from rich.markup import escape

from catalog.exceptions import LockHolderAliveError, LockNotHeldError
from catalog.store import RunRecord, process_is_alive
from pipelines.cli.common import open_catalog_for


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
    p.set_defaults(handler=cmd_unlock)


def cmd_unlock(args: argparse.Namespace, console: Console) -> int:
    catalog, _warehouse = open_catalog_for(args, read_only=False)
    try:
        holder = catalog.lock_holder(args.name)
        if holder is None:
            catalog.versions(args.name)  # an unknown dataset says so, naming the known ones
            raise LockNotHeldError(f"dataset {args.name!r} is not locked", where="haina unlock",
                                   fix="nothing to unlock; `haina runs NAME` shows its runs")
        probe = RunRecord(run_id=holder.run_id, dataset=args.name, host=holder.host,
                          pid=holder.pid)
        if holder.host == socket.gethostname() and process_is_alive(probe) and not args.force:
            raise LockHolderAliveError(
                f"dataset {args.name!r} is locked by {holder.describe()}, and that process is "
                f"alive on this host", where="haina unlock",
                fix=f"let it finish or stop it (kill {holder.pid}); to unlock anyway, pass "
                    f"--force (the run then cannot commit)")
        removed = catalog.break_lock(args.name, reason=args.reason, run_id=holder.run_id)
    finally:
        catalog.close()
    console.print(f"unlocked [bold]{escape(args.name)}[/]: removed the lock of "
                  f"{escape(removed.describe())}; the run is marked abandoned (audit log: "
                  f"lock.break by {escape(catalog.actor)}); the next run removes its leftovers")
    return 0
