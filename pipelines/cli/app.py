"""Haina: ocean and port data to validated, versioned, traceable Parquet datasets.

    haina check RECIPE                 validate a recipe and plan it, without running
    haina run RECIPE [-- BEAM_ARGS]    run it (DirectRunner unless --runner is passed through)
    haina datasets | versions NAME | show NAME@VERSION [--json] | runs NAME
    haina unlock NAME [--reason TEXT]  free a dataset whose lock holder died
    haina kinds [KIND]                 the source kinds, or every recipe key of one

Errors that a user can fix are printed as one message naming the file, the field and the fix,
with a non-zero exit code; anything else is one "internal error" line with exit code 3
(``--debug`` or ``HAINA_DEBUG=1`` shows the traceback, for everything).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import IO, Any

from rich.markup import escape

from catalog.exceptions import CatalogError
from connectors.exceptions import ConnectorError
from expectations.exceptions import ExpectationsError
from pipelines.cli import audit, browse, card, kinds, lineage, lock, release, report, run
from pipelines.cli.common import Handler, console, err_console
from pipelines.exceptions import HainaError
from pipelines.interrupts import Interrupted, handling

__all__ = ["console", "err_console", "main"]

#: the command groups, in the order ``haina --help`` lists their commands
GROUPS = (run, browse, release, lineage, audit, report, card, lock, kinds)


def _quiet_libraries(debug: bool = False) -> None:
    # Beam and GE log at INFO/WARNING about things a user cannot act on (missing cloud SDKs,
    # progress bars); keep the terminal for Haina's own messages.
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("apache_beam", "great_expectations", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not debug:
        # a step that raises inside a pipeline is logged by Beam with its traceback
        # (runners/common.py, at ERROR) before Beam re-raises it; main() prints the error itself
        logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class _DriverStderr:
    """``sys.stderr`` while a command runs: what Haina prints (from the main thread) goes
    through; what other threads print is dropped. Beam's in-process workers print the traceback
    of every failed bundle, then the driver re-raises the error, which is reported in one line
    (``--debug`` keeps everything)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if threading.current_thread() is threading.main_thread():
            return self._stream.write(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _HideTracebacks:
    """stderr without the tracebacks libraries print themselves.

    Beam's worker threads ``print()`` a failed step's traceback to stderr before handing the
    error back (apache_beam/runners/worker/sdk_worker.py); main() reports that error as one
    line, and ``--debug`` shows its traceback.
    """

    def __init__(self, stream: IO[str] | _DriverStderr) -> None:
        self._stream = stream
        self._dropped = False

    def write(self, text: str) -> int:
        dropped, self._dropped = self._dropped, False
        if text.lstrip().startswith("Traceback (most recent call last)"):
            self._dropped = True
            return len(text)
        if dropped and text == "\n":  # the end of the dropped print()
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _debug_wanted(args: argparse.Namespace) -> bool:
    """``--debug`` or ``HAINA_DEBUG=1``: show tracebacks (and Beam's error logs)."""
    return bool(args.debug) or os.environ.get("HAINA_DEBUG", "").strip().lower() in (
        "1", "true", "yes", "on")


def _one_line(err: BaseException) -> str:
    """The first line of an unexpected exception's message (SQL and the like follow it)."""
    lines = str(err).strip().splitlines()
    return lines[0].strip() if lines else ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="haina", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--warehouse", help="warehouse folder or URI (default: $HAINA_WAREHOUSE, "
                        "the recipe's `warehouse`, or ./warehouse)")
    parser.add_argument("--catalog", help="catalog URL (default: $HAINA_CATALOG_URL, the recipe's "
                        "`catalog`, or SQLite inside the warehouse)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parser.add_argument("--actor", help="who acts, recorded in the catalog and audit log "
                        "(default: $HAINA_ACTOR or the login name)")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after the first "--" belongs to Beam's PipelineOptions, untouched
    beam_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = _parser().parse_args(argv)
    args.beam_args = beam_args
    args.debug = _debug_wanted(args)
    _quiet_libraries(args.debug)
    judge = None
    stderr = sys.stderr
    if not args.debug:
        # what Beam's worker threads print, and tracebacks libraries print themselves, are
        # dropped: main() reports the error in one line (--debug keeps everything)
        sys.stderr = _HideTracebacks(_DriverStderr(stderr))
    try:
        if args.command == "run" and "great_expectations" not in sys.modules:
            # Great Expectations imports in a helper process on another core while this one
            # imports Beam and plans (expectations.validation.ge.process); the run closes it
            # when done. Imported here: only `haina run` starts it
            from expectations.validation.ge.process import Judge
            judge = args.judge = Judge().start()
        if args.command == "run":
            # hashlib releases the GIL: source files are hashed while Beam imports
            # (pipelines.prehash; imported here, only `haina run` needs it)
            from pipelines import prehash
            prehash.start(prehash.local_sources(args.recipe))
        # SIGTERM stops a command as Ctrl-C does: cleanly, and said in one line
        with handling():
            handler: Handler = args.handler
            return handler(args, console) or 0
    except (HainaError, ConnectorError, CatalogError, ExpectationsError) as err:
        if args.debug:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", markup=True, soft_wrap=True)
        return getattr(err, "exit_code", 2)
    except Interrupted as err:
        err_console.print(escape(str(err)), soft_wrap=True)
        return err.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was committed by the interrupted step")
        return 130
    except Exception as err:  # noqa: BLE001 - a bug: one line, the traceback on request
        if args.debug:
            raise
        err_console.print(f"[bold red]internal error:[/] {escape(type(err).__name__)}: "
                          f"{escape(_one_line(err))} (run with --debug / HAINA_DEBUG=1 for the "
                          f"traceback)", markup=True, soft_wrap=True)
        return 3
    finally:
        sys.stderr = stderr
        if judge is not None:
            judge.close()


if __name__ == "__main__":
    sys.exit(main())
