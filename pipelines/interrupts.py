"""Stopping a run on SIGINT or SIGTERM: clean up, say so in one line, exit 128 + the signal number.

Python turns SIGINT (Ctrl-C) into ``KeyboardInterrupt``, but SIGTERM — what ``kill``, systemd,
Kubernetes and schedulers send — ends the process at once by default: the run stayed
``running``, its lock held and its staging folder on disk. :func:`handling` makes both signals
raise :class:`Interrupted` in the main thread, so the runner's cleanup runs for either.

Python delivers signals to the main thread only. The DirectRunner's worker threads are not
interrupted and would go on writing into the staging folder after the runner removed it;
:data:`STAGING` is the gate they write through, which the runner closes (and waits on) before
it removes the folder. Workers in other processes (portable runners) are not gated here.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from collections import Counter
from typing import Iterator

#: the signals a run stops cleanly on
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A run (or command) was stopped by a signal. A ``KeyboardInterrupt``, so that code which
    already stops cleanly on Ctrl-C does the same for SIGTERM."""

    #: Beam re-raises an exception from a DoFn as ``type(exn)(message + step)``, or as a
    #: RuntimeError when that fails, and logs a traceback; a tagged exception passes unchanged
    _tagged_with_step = True

    def __init__(self, signum: int = signal.SIGINT, *, run_id: str | None = None,
                 committed: str | None = None):
        super().__init__(signum)
        self.signum = int(signum)
        self.run_id = run_id
        #: the version the run had committed when the signal came (it stays committed)
        self.committed = committed

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def __str__(self) -> str:
        run = f"run {self.run_id} " if self.run_id else ""
        if self.committed:
            return (f"{run}interrupted by {self.signal_name} after it committed version "
                    f"{self.committed}; that version is complete")
        if self.run_id:
            return (f"{run}interrupted by {self.signal_name}; nothing was committed (the run is "
                    f"marked failed, its lock released and its staging folder removed)")
        return f"interrupted by {self.signal_name}; nothing was committed"


def as_interrupted(err: KeyboardInterrupt, **context) -> Interrupted:
    """``err`` as an :class:`Interrupted` (a plain Ctrl-C is SIGINT) with the run's context."""
    signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
    return Interrupted(signum, **context)


class _Signals:
    """The process's handler state: signals are process-wide, so is this."""

    def __init__(self) -> None:
        self.raised = False  # one Interrupted per process: a second signal must not cut cleanup
        self.shield = 0
        self.pending: int | None = None

    def handle(self, signum: int, _frame) -> None:
        if self.raised:
            return
        if self.shield:
            self.pending = signum
            return
        self.raised = True
        raise Interrupted(signum)


_SIGNALS = _Signals()


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only; a
    no-op elsewhere, where Python cannot install handlers). The previous handlers return after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _SIGNALS
    _SIGNALS = state = _Signals()
    previous = {signum: signal.signal(signum, state.handle) for signum in SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A signal arriving within the block takes effect when the block ends, so that what the
    block does (move a version into place and commit it) is done whole or not at all."""
    state = _SIGNALS
    state.shield += 1
    try:
        yield
    finally:
        state.shield -= 1
        if not state.shield and state.pending is not None and not state.raised:
            signum, state.pending, state.raised = state.pending, None, True
            raise Interrupted(signum)


class StagingGate:
    """Counts the files being written into each staging folder, and closes a folder for good.

    A run closes its folder before removing it: :meth:`close` refuses new writes and waits for
    those under way, so no worker thread recreates the folder after it is gone.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy: Counter[str] = Counter()
        self._closed: set[str] = set()

    @contextlib.contextmanager
    def writing(self, staging: str) -> Iterator[bool]:
        """Yields whether the write may go ahead (False once the run closed its folder)."""
        with self._cond:
            allowed = staging not in self._closed
            if allowed:
                self._busy[staging] += 1
        try:
            yield allowed
        finally:
            if allowed:
                with self._cond:
                    self._busy[staging] -= 1
                    self._cond.notify_all()

    def close(self, staging: str, timeout: float = 60.0) -> bool:
        """Refuse further writes to ``staging``; wait for those under way. False on timeout."""
        with self._cond:
            self._closed.add(staging)
            done = self._cond.wait_for(lambda: self._busy[staging] <= 0, timeout)
            self._busy.pop(staging, None)
            return done


#: the gate every staging write of this process goes through (see the module docstring)
STAGING = StagingGate()
