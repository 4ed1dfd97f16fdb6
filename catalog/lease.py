"""The lease on a dataset lock, who is stale, and the heartbeat that keeps a live run's lease.

A lock row names its holder (run id, host, pid) and carries ``lease_expires_at``. A running
process renews the lease every ``lease / 6`` seconds from a :class:`Heartbeat` thread, so a
lease runs out only when its holder is gone (killed, crashed, its host down or cut off) or
frozen. Why a lease and not a pid probe: a process on another host cannot be probed from here,
so before leases a run that died on another host held its dataset forever.

Who may take a lock over (:func:`stale_reason`, one decision for every caller):

- its run has already ended (it finished but did not release the lock);
- it runs on this host and its pid is gone: no need to wait for the lease;
- its lease has expired: nothing renewed it for a whole lease.

A lock without a lease (taken by a Haina older than leases) is judged by the pid probe alone,
so on another host it is only removed by an operator: ``haina unlock NAME``.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Callable

from catalog.exceptions import CatalogError, DatasetLockedError, InvalidRecordError
from catalog.store import Catalog, LockHolder, RunRecord

#: environment variable that sets the lease in seconds (tests shorten it)
LEASE_ENV = "HAINA_LOCK_LEASE_SECONDS"
#: default lease: six missed renewals (every 10 s) before another run may take over
DEFAULT_LEASE_SECONDS = 60.0
#: renewals per lease: a lease survives five missed heartbeats (a busy database, a GC pause)
RENEWALS_PER_LEASE = 6

log = logging.getLogger(__name__)


def lease_seconds(environ: dict[str, str] | None = None) -> float:
    """The lease of a lock, from ``$HAINA_LOCK_LEASE_SECONDS`` (default 60 s)."""
    text = (os.environ if environ is None else environ).get(LEASE_ENV, "").strip()
    if not text:
        return DEFAULT_LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:  # also refuses nan
        raise InvalidRecordError(
            f"{LEASE_ENV}={text!r} is not a positive number of seconds", where="environment",
            fix=f"unset it (default {DEFAULT_LEASE_SECONDS:g} s) or set e.g. {LEASE_ENV}=60")
    return value


def stale_reason(holder: LockHolder, run: RunRecord | None, now: dt.datetime,
                 is_alive: Callable[[RunRecord], bool]) -> str | None:
    """Why the lock ``holder`` may be taken over at ``now``, or None while it is alive.

    ``run`` is the holder's run row (None when the lock was taken before ``begin_run``);
    ``is_alive`` probes a process (``store.process_is_alive``: the pid, on this host only).
    """
    if run is not None and run.status != "running":
        return f"its run already ended ({run.status}) without releasing the lock"
    probe = run or RunRecord(run_id=holder.run_id, dataset=holder.dataset, host=holder.host,
                             pid=holder.pid, started_at=holder.acquired_at)
    if not is_alive(probe):
        return f"its process (pid {holder.pid} on {holder.host}) is gone"
    if holder.lease_expires_at is not None and holder.lease_expires_at <= now:
        return (f"its lease expired at {holder.lease_expires_at.isoformat(timespec='seconds')} "
                f"(no heartbeat from host {holder.host} since)")
    return None


class Heartbeat:
    """Renews ``run_id``'s lease on ``dataset``'s lock from a daemon thread.

    ``start()`` after taking the lock, ``stop()`` before releasing it. A renewal that finds the
    lock gone (taken over after a long pause, or removed with ``haina unlock``) sets ``lost``
    and stops: the run can no longer commit, because whoever took the lock marked it abandoned.
    A renewal that fails (database unreachable) is retried at the next beat; the lease gives
    it ``RENEWALS_PER_LEASE - 1`` chances.
    """

    def __init__(self, catalog: Catalog, dataset: str, run_id: str, *,
                 lease: float | None = None):
        self.catalog, self.dataset, self.run_id = catalog, dataset, run_id
        self.lease = lease if lease is not None else lease_seconds()
        self.interval = self.lease / RENEWALS_PER_LEASE
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"haina-lease-{run_id}",
                                        daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 30)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                renewed = self.catalog.renew_lock(self.dataset, self.run_id, self.lease)
            except CatalogError as err:  # e.g. the database is unreachable for a moment
                log.warning("lease of %s on %s not renewed: %s", self.run_id, self.dataset, err)
                continue
            if renewed is None:
                self.lost = True
                log.warning("run %s no longer holds the lock of %s", self.run_id, self.dataset)
                return


def locked_error(holder: LockHolder, now: dt.datetime, where: str) -> DatasetLockedError:
    """The error for a lock held by a live run: who, until when its lease runs, and the ways
    out (wait, ``--wait``, the lease, ``haina unlock``). ``now`` is the backend's clock."""
    name = holder.dataset
    if holder.lease_expires_at is None:
        lease = ("; the lock has no lease (taken by a Haina older than leases), so it is "
                 f"only taken over once pid {holder.pid} is gone, which only host "
                 f"{holder.host} can tell")
    else:
        left = (holder.lease_expires_at - now).total_seconds()
        lease = (f"; its lease runs until "
                 f"{holder.lease_expires_at.isoformat(timespec='seconds')} ({max(left, 0):.0f}"
                 f" s from now) and is renewed every few seconds while that run lives")
    return DatasetLockedError(
        f"dataset {name!r} is locked by {holder.describe()}{lease}",
        holder_run_id=holder.run_id, where=where,
        fix=f"wait for that run to finish, or pass --wait SECONDS; a run that died gives the "
            f"lock up when its lease runs out; if you are sure run {holder.run_id} is dead, "
            f"`haina unlock {name} --reason \"...\"` frees the dataset now")
