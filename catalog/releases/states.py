"""The states a version moves through, the moves allowed, and what to say when one is refused.

::

    draft ──release──> released ──deprecate──> deprecated ──undeprecate──> released
                          │                        │
                          └──────────yank──────────┴──> yanked   (final; reason required)

Policy lives in :mod:`catalog.releases.lifecycle`; every catalog backend checks the same rules
inside its own transaction and raises the errors built here, so that SQLite, PostgreSQL and the
in-memory backend refuse a move with the same words.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from catalog.exceptions import ReleaseConflictError, ReleaseError, TransitionError
from catalog.store import VersionRecord

DRAFT, RELEASED, DEPRECATED, YANKED = "draft", "released", "deprecated", "yanked"
STATES = (DRAFT, RELEASED, DEPRECATED, YANKED)
#: action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "release": (frozenset({DRAFT}), RELEASED),
    "deprecate": (frozenset({RELEASED}), DEPRECATED),
    "undeprecate": (frozenset({DEPRECATED}), RELEASED),
    "yank": (frozenset({RELEASED, DEPRECATED}), YANKED),
}
#: actions that need a reason: a yank tells every reader why their data went away
REASON_REQUIRED = frozenset({"yank"})


def state_error(dataset: str, version_id: str, action: str, state: str | None) -> ReleaseError:
    """The version is ``state``, which ``action`` does not start from."""
    allowed, _ = TRANSITIONS[action]
    where = f"{dataset}@{version_id}"
    if action == "release" and state in (RELEASED, DEPRECATED, YANKED):
        return ReleaseConflictError(
            f"version {version_id} is already {state}, so it cannot be released again",
            where=where, fix="release a new draft; `haina releases NAME` lists the releases")
    return TransitionError(
        f"cannot {action} a version that is {state}: {action} needs "
        f"{' or '.join(sorted(allowed))}", where=where,
        fix="check the state with `haina versions NAME`" + (
            "; a yank is final" if state == YANKED else ""))


def semver_taken(dataset: str, semver: str, holder: str) -> ReleaseConflictError:
    return ReleaseConflictError(
        f"semver {semver} is already taken by version {holder}", where=f"dataset {dataset}",
        fix="list the releases with `haina releases NAME` and pick the next free version")


def previous_moved(dataset: str, highest: str | None, previous: str | None,
                   semver: str) -> ReleaseConflictError:
    return ReleaseConflictError(
        f"the latest release is now {highest}, not {previous} as when {semver} was "
        f"planned", where=f"dataset {dataset}",
        fix="another release happened meanwhile; run `haina release` again to re-plan")


def newer_released(dataset: str, version_id: str, newer_id: str, newer_state: str,
                   newer_semver: str | None) -> ReleaseConflictError:
    """``latest-draft`` named a draft older than a version released meanwhile."""
    label = f"{newer_id} ({newer_semver})" if newer_semver else newer_id
    return ReleaseConflictError(
        f"the latest draft {version_id} is older than version {label}, which is "
        f"already {newer_state}: another publisher released the newest draft first",
        where=f"dataset {dataset}",
        fix=f"check `haina releases {dataset}`; to release the older draft anyway, "
            f"name it: `haina release {dataset}@{version_id}`")


def released_meanwhile(dataset: str, version_id: str) -> ReleaseConflictError:
    return ReleaseConflictError(
        f"version {version_id} was released by another process meanwhile",
        where=f"dataset {dataset}",
        fix="list the releases with `haina releases NAME`; release another draft")


def newest_conflict(version: VersionRecord, versions: Sequence[VersionRecord],
                    semvers: Mapping[str, str]) -> ReleaseConflictError | None:
    """The error when ``version`` is older than a version no longer a draft (``latest-draft``
    then named a draft another publisher has overtaken); None when it is the newest.

    ``versions`` are the dataset's versions, ``semvers`` version id -> released semver.
    """
    newer = [v for v in versions
             if v.state != DRAFT and v.version_id != version.version_id
             and (v.created_at, v.version_id) > (version.created_at, version.version_id)]
    if not newer:
        return None
    last = max(newer, key=lambda v: v.created_at)
    return newer_released(version.dataset, version.version_id, last.version_id, last.state,
                          semvers.get(last.version_id))
