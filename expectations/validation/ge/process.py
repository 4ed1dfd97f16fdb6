"""Great Expectations in a helper process, started when a run starts.

A run needs GE only at its end, to judge the merged metrics with GE's expectation classes
(:func:`expectations.validation.judgement.suite_results`). Importing GE costs ~6 s of CPU and ~270 MB, paid
once per run. :class:`Judge` starts ``python -m expectations.validation.ge.process`` as the run begins, so
that import happens on another core while the driver plans and the pipeline works, and the
driver's own memory stays free of it. At the end the driver sends one request (suites and merged
metrics, JSON) and receives the suite results in GE's JSON form
(``ExpectationSuiteValidationResult.to_json_dict()``), which the gate, the report and the
manifest read.

The helper is an optimisation, never a dependency: if it cannot start, dies, or answers
garbage, the same results are computed in the driver (and the reason is logged). A failure of
the suites themselves (say, kwargs GE rejects) is not the helper's fault: it comes back as the
same :class:`~expectations.exceptions.ExpectationsError` the driver would have raised.

The helper never outlives its run: it asks the kernel to kill it when its parent dies (Linux's
``PR_SET_PDEATHSIG``; elsewhere a thread watches the parent pid), so even a driver killed with
SIGKILL leaves no helper behind. It is started with the driver's pid to check against, since
the parent may already be gone when the helper gets to ask.

Protocol: one JSON line in (``{"suites": [...], "metrics": {...}}``), one JSON line out
(``{"results": [...]}`` or ``{"error": {"type", "message", "where", "fix"}}``).
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any

from expectations import exceptions

log = logging.getLogger(__name__)

#: how long the driver waits for the helper's answer (its import included)
TIMEOUT_SECONDS = 300.0
#: prctl(2) option: the signal the kernel sends a process when its parent thread exits
_PR_SET_PDEATHSIG = 1
#: how often the helper checks its parent where the kernel cannot be asked (not Linux)
_PARENT_POLL_SECONDS = 0.5


def evaluate(suites: list[dict], metrics: dict) -> list[dict]:
    """Suite results as GE's JSON dicts, computed in this process."""
    from expectations.validation.judgement import suite_results  # imports GE: not in the driver

    return [result.to_json_dict() for result in suite_results(suites, metrics)]


class Judge:
    """A GE helper process for one run; use as a context manager or call :meth:`close`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._answered: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None

    def start(self) -> Judge:
        """Launch the helper (it starts importing GE at once). Failure to launch is not fatal."""
        try:
            self._stderr = tempfile.TemporaryFile()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "expectations.validation.ge.process", str(os.getpid())],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        except OSError as err:
            log.warning("could not start the Great Expectations helper (%s); results will be "
                        "computed in this process", err)
            self._process = None
        return self

    def results(self, suites: list[dict], metrics: dict) -> list[dict]:
        """GE's suite results for ``metrics``: from the helper if it is alive, else computed here."""
        if not suites:
            return []
        if self._process is not None:
            answer = self._ask(self._process, {"suites": suites, "metrics": metrics})
            if answer is not None:
                return answer
        return evaluate(suites, metrics)

    def _ask(self, process: subprocess.Popen, request: dict) -> list[dict] | None:
        """One request per helper (``process``, this Judge's); :meth:`close` ends it."""
        self._answered = process
        self._process = None
        try:
            out = _exchange(process, json.dumps(request).encode() + b"\n", TIMEOUT_SECONDS)
            reply = json.loads(out.decode() or "null")
        except (OSError, ValueError, subprocess.TimeoutExpired) as err:
            process.kill()
            log.warning("the Great Expectations helper failed (%s%s); computing results in this "
                        "process", err, self._stderr_tail())
            return None
        if isinstance(reply, dict) and isinstance(reply.get("results"), list):
            return reply["results"]
        if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
            raise _rebuild(reply["error"])
        log.warning("the Great Expectations helper exited with %s without an answer%s; computing "
                    "results in this process", process.returncode, self._stderr_tail())
        return None

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().decode(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("WARNING:root:")]
        return f"; its last words: {lines[-1]}" if lines else ""

    def close(self) -> None:
        for process in (self._process, self._answered):
            if process is not None:  # it has nothing left to do: no need to wait for its exit
                process.kill()
                process.wait()
        self._process = self._answered = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Judge:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _exchange(process: subprocess.Popen, request: bytes, timeout: float) -> bytes:
    """Send the request and read the one-line reply, without waiting for the helper to exit
    (a Python process that imported GE takes about half a second to shut down)."""
    stdin, stdout = process.stdin, process.stdout
    if stdin is None or stdout is None:
        raise OSError("the Great Expectations helper was started without pipes")
    stdin.write(request)
    stdin.close()
    ready, _, _ = select.select([stdout], [], [], timeout)
    if not ready:
        raise subprocess.TimeoutExpired(process.args, timeout)
    return stdout.readline()


def _rebuild(error: dict) -> Exception:
    cls = getattr(exceptions, str(error.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, exceptions.ExpectationsError)):
        cls = exceptions.ExpectationsError
    return cls(str(error.get("message")), where=error.get("where"), fix=error.get("fix"))


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` (the driver that started it) dies, however it dies.

    Linux signals the helper when the *thread* that started it ends: :class:`Judge` is started
    and closed by the thread that runs the run, which lives as long as the run does.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols include libc's
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent_pid:  # the parent died before prctl: nobody to serve
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """The helper: import GE first, then answer one request from stdin on stdout."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        die_with_parent(int(argv[0]))
    reply_to = sys.stdout
    sys.stdout = sys.stderr  # whatever GE prints must not corrupt the reply
    import expectations.validation.judgement  # noqa: F401  (the import is the point: do it before waiting)

    request = json.loads(sys.stdin.readline())
    try:
        reply: dict = {"results": evaluate(request["suites"], request["metrics"])}
    except exceptions.ExpectationsError as err:
        reply = {"error": {"type": type(err).__name__, "message": err.reason,
                           "where": err.where, "fix": err.fix}}
    reply_to.write(json.dumps(reply, default=str) + "\n")
    reply_to.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
