"""Haina: ocean and port data to validated, versioned, traceable Parquet datasets.

    haina check RECIPE                 validate a recipe and plan it, without running
    haina run RECIPE [-- BEAM_ARGS]    run it (DirectRunner unless --runner is passed through)
    haina datasets | versions NAME | show NAME@VERSION [--json] | runs NAME
    haina unlock NAME [--reason TEXT]  free a dataset whose lock holder died

Errors that a user can fix are printed as one message naming the file, the field and the fix,
with a non-zero exit code; tracebacks are for bugs (``--debug`` shows them for everything).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings
from typing import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Wide enough for file names and conversions when output is piped (logs, CI, cron mail).
_WIDTH = None if sys.stdout.isatty() else 132
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)


def _quiet_libraries() -> None:
    # Beam and GE log at INFO/WARNING about things a user cannot act on (missing cloud SDKs,
    # progress bars); keep the terminal for Haina's own messages.
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("apache_beam", "great_expectations", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="haina", description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", help="warehouse folder or URI (default: $HAINA_WAREHOUSE, "
                        "the recipe's `warehouse`, or ./warehouse)")
    parser.add_argument("--catalog", help="catalog URL (default: $HAINA_CATALOG_URL, the recipe's "
                        "`catalog`, or SQLite inside the warehouse)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parser.add_argument("--actor", help="who acts, recorded in the catalog and audit log "
                        "(default: $HAINA_ACTOR or the login name)")

    p = sub.add_parser("check", help="validate and plan a recipe without running it")
    p.add_argument("recipe")
    p = sub.add_parser("run", help="run a recipe; arguments after -- go to Beam")
    p.add_argument("recipe")
    p.add_argument("--full", action="store_true",
                   help="process every source file, not only new and changed ones")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="if another run of the dataset holds its lock, wait this long for it "
                        "(default: fail at once)")
    p.add_argument("--workers", default="auto", type=_workers, metavar="N",
                   help="DirectRunner worker threads (default: auto, one per CPU core)")
    p.epilog = ("Beam pipeline options go after --, e.g. "
                "haina run recipe.yaml -- --runner=FlinkRunner --flink_master=localhost:8081")
    sub.add_parser("datasets", help="list datasets")
    p = sub.add_parser("versions", help="list the versions of a dataset")
    p.add_argument("name")
    p = sub.add_parser("runs", help="list the runs of a dataset")
    p.add_argument("name")
    p = sub.add_parser("show", help="show one version: NAME@VERSION (VERSION may be 'latest')")
    p.add_argument("ref")
    p.add_argument("--json", action="store_true", help="print the version's manifest as JSON")
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue  # a capability not installed in this build
        module.register(sub)
    return parser


#: modules that add subcommands: each has ``register(subparsers)``, which only declares
#: arguments and sets ``handler="module:function"``, so ``haina --help`` stays fast
EXTENSIONS: tuple[str, ...] = ("pipelines.cli_release", "pipelines.cli_lineage",
                               "pipelines.cli_audit", "pipelines.cli_report",
                               "pipelines.cli_card", "pipelines.cli_lock")


def _handler(args):
    target = getattr(args, "handler", None) or f"pipelines.commands:cmd_{args.command}"
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not 'auto' or a positive whole number")
    return count


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after the first "--" belongs to Beam's PipelineOptions, untouched
    beam_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    args = _parser().parse_args(argv)
    args.beam_args = beam_args
    _quiet_libraries()
    from pipelines.exceptions import HainaError
    from connectors.exceptions import ConnectorError
    from catalog.exceptions import CatalogError
    from expectations.exceptions import ExpectationsError

    judge = None
    if args.command == "run" and "great_expectations" not in sys.modules:
        # Great Expectations imports in a helper process on another core while this one
        # imports Beam and plans (expectations.ge_process); the run closes it when done
        from expectations.ge_process import Judge
        judge = args.judge = Judge().start()
    if args.command == "run":
        # hashlib releases the GIL: source files are hashed while Beam imports (pipelines.prehash)
        from pipelines import prehash
        prehash.start(prehash.local_sources(args.recipe))
    try:
        # imported late: Beam and GE take seconds to import
        return _handler(args)(args, console) or 0
    except (HainaError, ConnectorError, CatalogError, ExpectationsError) as err:
        if args.debug:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", markup=True, soft_wrap=True)
        return getattr(err, "exit_code", 2)
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was committed by the interrupted step")
        return 130
    finally:
        if judge is not None:
            judge.close()


def table(title: str, columns: Sequence[str], rows) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*["" if v is None else str(v) for v in row])
    return out


if __name__ == "__main__":
    sys.exit(main())
