"""``haina release | deprecate | undeprecate | yank | releases | diff``: argument parsing only.

The handlers live in :mod:`pipelines.release_commands` and are imported when a command runs, so
``haina --help`` does not pay for pyarrow or SQLAlchemy.
"""
from __future__ import annotations

import argparse

_HANDLERS = "pipelines.release_commands"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="release a draft version with a semantic version",
                       description="Release NAME@DRAFT (a version id or 'latest-draft'). Without "
                       "--version the bump is proposed from the difference to the previous "
                       "release: PATCH same records, MINOR records/columns added, MAJOR records "
                       "changed or removed, columns removed/retyped, split changed.")
    p.add_argument("ref", metavar="NAME@DRAFT")
    p.add_argument("--version", dest="semver", metavar="X.Y.Z",
                   help="the semantic version to give it (refused if it understates the change)")
    p.add_argument("--notes", metavar="FILE", help="release notes, read from this text file")
    p.add_argument("--dry-run", action="store_true",
                   help="show the difference and the proposed version; release nothing")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip re-hashing the draft's files before releasing")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_release")

    transitions = {
        "deprecate": "mark a release deprecated (still readable; readers are warned)",
        "undeprecate": "undo a deprecation",
        "yank": "yank a release: readers are refused unless they insist; final, --reason needed",
    }
    for action, text in transitions.items():
        p = sub.add_parser(action, help=text)
        p.add_argument("ref", metavar="NAME@VERSION", help="VERSION: a semver, a version id or "
                       "'latest'")
        p.add_argument("--reason", help="why (recorded in the transition and the audit log)")
        p.set_defaults(handler=f"{_HANDLERS}:cmd_transition", action=action)

    p = sub.add_parser("releases", help="list the releases of a dataset and their state changes")
    p.add_argument("name")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_releases")

    p = sub.add_parser("diff", help="what changed between two versions: NAME@A NAME@B")
    p.add_argument("old", metavar="NAME@A")
    p.add_argument("new", metavar="NAME@B")
    p.add_argument("--json", action="store_true", help="print the difference as JSON")
    p.add_argument("--no-stats", dest="stats", action="store_false",
                   help="skip the per-column statistics (they read every data file)")
    p.set_defaults(handler=f"{_HANDLERS}:cmd_diff")
