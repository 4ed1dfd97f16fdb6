"""The ``haina unlock`` handler (arguments in :mod:`pipelines.cli_lock`)."""
from __future__ import annotations

import socket

from rich.console import Console
from rich.markup import escape

from catalog.exceptions import LockHolderAliveError, LockNotHeldError
from catalog.store import RunRecord, process_is_alive
from pipelines.commands import _catalog


def cmd_unlock(args, console: Console) -> int:
    catalog, _warehouse = _catalog(args)
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
