"""``haina report``: where the validation report of a version (or of a run) is, or open it.

Import-light on purpose (argparse only): ``haina --help`` imports every CLI extension.
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="print the path of the validation report of NAME@VERSION (or of a run id)",
        description="Print the path of the HTML validation report written by the run that made "
                    "NAME@VERSION (VERSION may be 'latest'). A run id (e.g. of a run the gate "
                    "refused, which made no version) is accepted too.")
    p.add_argument("ref", metavar="NAME@VERSION|RUN_ID")
    p.add_argument("--open", action="store_true", help="open the report in a web browser")
    p.set_defaults(handler="pipelines.report_commands:cmd_report")
