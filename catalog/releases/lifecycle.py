"""The release lifecycle of versions: draft -> released -> deprecated / yanked, with semvers.

::

    draft ──release──> released ──deprecate──> deprecated ──undeprecate──> released
                          │                        │
                          └──────────yank──────────┴──> yanked   (final; reason required)

A run commits a ``draft``. Releasing gives it a semantic version (table ``releases``: one semver
per version and per dataset, both UNIQUE) proposed from the difference to the previous release
(:mod:`catalog.releases.diff`, :mod:`catalog.releases.semver`). Deprecated versions stay readable with a warning;
yanked ones are refused by :func:`resolve` unless asked for explicitly. This module is the
policy (which moves exist: :mod:`catalog.releases.states`; planning, semvers, documents); the
catalog stores it through its contract: :meth:`~catalog.store.Catalog.record_release` and
:meth:`~catalog.store.Catalog.move_version` change the state, record the transition and audit
it in one transaction.

Concurrency: the backend judges each move on the state it reads inside that transaction, so of
two processes releasing the same draft exactly one sees the draft, and two releases of one
semver cannot both commit. ``latest-draft`` names the newest draft only while no newer version
is released, checked when planning and again inside the release transaction, so a publisher
that comes second does not release an older draft under a newer number. The loser gets
:class:`ReleaseConflictError` (exit 4).

Documents: a release publishes a dataset card and a Croissant file beside its data, written
after the release commits. :func:`complete_releases` writes those of any release that lacks
them (a release killed between its commit and its documents) and is idempotent; ``haina
release`` and ``haina verify`` call it first.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from catalog import faults
from catalog.exceptions import (
    ReleaseConflictError,
    ReleaseError,
    TransitionError,
    YankedVersionError,
)
from catalog.releases import resolve as resolve_mod
from catalog.releases import semver as semver_mod
from catalog.releases import states
from catalog.releases.states import (
    DEPRECATED,
    DRAFT,
    REASON_REQUIRED,
    RELEASED,
    STATES,
    TRANSITIONS,
    YANKED,
)
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.store import (
    Catalog,
    ReleaseRecord,
    TransitionRecord,
    VersionMove,
    VersionRecord,
    utcnow,
)

if TYPE_CHECKING:
    from catalog.releases.diff import DatasetDiff

__all__ = [
    "DEPRECATED", "DRAFT", "REASON_REQUIRED", "RELEASED", "STATES", "TRANSITIONS", "YANKED",
    "DeprecatedVersionWarning", "FileMismatch", "ReleaseConflictError", "ReleaseError",
    "ReleasePlan", "ReleaseRecord", "TransitionError", "TransitionRecord", "YankedVersionError",
    "check_unchanged", "complete_releases", "deprecate", "document_names", "missing_documents",
    "plan_release", "previous_release", "record_release", "release", "release_of", "releases",
    "resolve", "semver_labels", "transition", "transitions", "undeprecate", "write_documents",
    "yank",
]



class DeprecatedVersionWarning(UserWarning):
    """A deprecated version was resolved: still readable, but its owner advises against it."""


@dataclasses.dataclass(frozen=True)
class ReleasePlan:
    """What ``release`` would do: the draft, the release it follows, the difference, the semver."""

    version: VersionRecord
    previous: ReleaseRecord | None
    diff: DatasetDiff | None
    proposal: semver_mod.Proposal
    semver: semver_mod.SemVer


@dataclasses.dataclass(frozen=True)
class FileMismatch:
    """The first file of a version whose bytes differ from the catalog's record."""

    path: str
    expected_sha256: str
    actual_sha256: str | None  # None: the file is missing

    def __str__(self) -> str:
        got = "missing" if self.actual_sha256 is None else f"sha256 {self.actual_sha256}"
        return f"{self.path}: {got}, catalog says {self.expected_sha256}"


# --- queries -----------------------------------------------------------------------------------
def releases(catalog: Catalog, dataset: str) -> list[ReleaseRecord]:
    """Releases of ``dataset``, lowest semver first."""
    return catalog.releases(dataset)


def release_of(catalog: Catalog, version_id: str) -> ReleaseRecord | None:
    return catalog.release_of(version_id)


def transitions(catalog: Catalog, dataset: str,
                version_id: str | None = None) -> list[TransitionRecord]:
    """State changes of a dataset's versions (or of one version), oldest first."""
    return catalog.transitions(dataset, version_id)


def semver_labels(catalog: Catalog, dataset: str) -> dict[str, str]:
    """version_id -> semver for the released (or once released) versions of ``dataset``."""
    return {r.version_id: r.semver for r in releases(catalog, dataset)}


# --- resolving a reference ---------------------------------------------------------------------
def resolve(catalog: Catalog, dataset: str, ref: str, *, allow_yanked: bool = False,
            warn: Callable[[str], None] | None = None,
            draft_fallback: bool = False) -> VersionRecord:
    """The version ``ref`` names (as :mod:`catalog.releases.resolve` reads it: a version id, a
    semver, ``latest`` or ``latest-draft``), after the lifecycle rules.

    A yanked version raises :class:`YankedVersionError` unless ``allow_yanked``; a deprecated
    one is returned after ``warn(message)`` (default: a :class:`DeprecatedVersionWarning`).
    With ``draft_fallback``, ``latest`` of a dataset without any release is its latest draft,
    after ``warn`` (default: an :class:`~catalog.releases.resolve.UnreleasedVersionWarning`).
    """
    picked = _pick(catalog, dataset, ref, draft_fallback=draft_fallback)
    version = picked.version
    if picked.notice is not None:
        if warn is not None:
            warn(picked.notice)
        else:
            warnings.warn(picked.notice, resolve_mod.UnreleasedVersionWarning, stacklevel=3)
    if version.state == YANKED and not allow_yanked:
        raise YankedVersionError(
            f"{_label(catalog, version)} was yanked: {_last_reason(catalog, version)}",
            where=f"dataset {dataset}",
            fix="use another version (`haina releases NAME` lists them), or pass "
                "allow_yanked=True to read it anyway")
    if version.state == DEPRECATED:
        message = (f"{_label(catalog, version)} is deprecated: "
                   f"{_last_reason(catalog, version) or 'no reason given'}")
        if warn is not None:
            warn(message)
        else:
            warnings.warn(message, DeprecatedVersionWarning, stacklevel=3)
    return version


def _pick(catalog: Catalog, dataset: str, ref: str, *,
          draft_fallback: bool = False) -> resolve_mod.Pick:
    """The catalog's versions and releases of ``dataset``, read by the one resolver."""
    versions = catalog.versions(dataset)  # DatasetNotFoundError names the known datasets
    return resolve_mod.pick(dataset, ref, versions, releases(catalog, dataset),
                            draft_fallback=draft_fallback)


def _lookup(catalog: Catalog, dataset: str, ref: str) -> VersionRecord:
    """The version ``ref`` names, before the lifecycle rules (releasing and transitions act
    on any state, and check it themselves)."""
    return _pick(catalog, dataset, ref).version


def _label(catalog: Catalog, version: VersionRecord) -> str:
    rel = release_of(catalog, version.version_id)
    suffix = f" ({rel.semver})" if rel else ""
    return f"{version.dataset}@{version.version_id}{suffix}"


def _last_reason(catalog: Catalog, version: VersionRecord) -> str:
    moves = transitions(catalog, version.dataset, version.version_id)
    return (moves[-1].reason or "") if moves else ""


# --- planning and recording a release ----------------------------------------------------------
def previous_release(catalog: Catalog, dataset: str) -> ReleaseRecord | None:
    """The release a new one follows: the highest semver, whatever its state (semvers of
    deprecated and yanked releases stay taken)."""
    found = releases(catalog, dataset)
    return found[-1] if found else None


def plan_release(catalog: Catalog, dataset: str, ref: str, *, requested: str | None = None,
                 stats: bool = False) -> ReleasePlan:
    """Diff the draft ``ref`` against the previous release and settle its semver.

    Without ``requested`` the proposal is taken; a requested version must come after the
    previous release and bump at least as much as the difference needs.
    """
    from catalog.releases.diff import diff_versions  # pyarrow and pandas: only when releasing

    version = _lookup(catalog, dataset, ref)
    _require_state(catalog, version, "release")
    if ref == "latest-draft":
        _require_newest(catalog, version)
    previous = previous_release(catalog, dataset)
    diff = None
    if previous is not None:
        before = catalog.version(dataset, previous.version_id)
        diff = diff_versions(catalog, before, version, stats=stats)
    proposal = semver_mod.propose(semver_mod.parse(previous.semver) if previous else None, diff)
    chosen = proposal.version
    if requested is not None:
        chosen = semver_mod.parse(requested, where="--version")
        semver_mod.check_requested(semver_mod.parse(previous.semver) if previous else None, chosen, proposal)
    return ReleasePlan(version, previous, diff, proposal, chosen)


def release(catalog: Catalog, dataset: str, ref: str, *, requested: str | None = None,
            notes: str | None = None, verify: bool = True) -> tuple[ReleaseRecord, ReleasePlan]:
    """Plan (see :func:`plan_release`) and record the release of draft ``ref``.

    ``verify`` first checks that the draft's files still have the hashes the catalog recorded,
    so what is released is exactly what was validated.
    """
    plan = plan_release(catalog, dataset, ref, requested=requested)
    if verify:
        mismatch = check_unchanged(catalog, plan.version)
        if mismatch is not None:
            raise ReleaseError(f"a file of the draft changed after it was committed: {mismatch}",
                               where=f"{dataset}@{plan.version.version_id}",
                               fix="re-run the recipe to make a new draft and release that")
    record = record_release(catalog, plan.version, str(plan.semver), notes=notes,
                            bump=plan.proposal.level.name if plan.previous else "FIRST",
                            previous=plan.previous.semver if plan.previous else None,
                            changelog=(list(plan.proposal.reasons) if plan.previous
                                       else ["first release"]),
                            newest_only=ref == "latest-draft")
    faults.point("after-release-commit")  # a crash here leaves a release without documents
    return record, plan


def record_release(catalog: Catalog, version: VersionRecord, semver: str, *,
                   notes: str | None = None, bump: str = "FIRST",
                   previous: str | None = None, changelog: list[str] | None = None,
                   newest_only: bool = False) -> ReleaseRecord:
    """In one transaction: the draft becomes ``released`` with ``semver``; its transition and
    audit event are written. Raises :class:`ReleaseConflictError` when another process got
    there first (this draft released, this semver taken, or a newer release than ``previous``;
    with ``newest_only`` (a ``latest-draft`` release) also a newer version released).
    """
    semver = str(semver_mod.parse(semver))
    record = ReleaseRecord(dataset=version.dataset, semver=semver, version_id=version.version_id,
                           released_at=utcnow(), actor=catalog.actor, notes=notes,
                           manifest_sha256=version.manifest_sha256, bump=bump, previous=previous,
                           changelog=changelog)
    catalog.record_release(record, _move(version, "release", semver, notes),
                           newest_only=newest_only)
    return record


def _move(version: VersionRecord, action: str, semver: str | None,
          reason: str | None) -> VersionMove:
    allowed, target = TRANSITIONS[action]
    return VersionMove(action=action, dataset=version.dataset, version_id=version.version_id,
                       from_states=allowed, to_state=target, semver=semver, reason=reason)


def _require_newest(catalog: Catalog, version: VersionRecord) -> None:
    """``latest-draft`` must not name a draft older than a released version: that happens when
    another publisher released the newest draft first, and releasing this one would publish
    older data under a newer number."""
    error = states.newest_conflict(version, catalog.versions(version.dataset),
                                   semver_labels(catalog, version.dataset))
    if error is not None:
        raise error


# --- other transitions -------------------------------------------------------------------------
def deprecate(catalog: Catalog, dataset: str, ref: str, reason: str | None = None) -> str:
    """``released`` -> ``deprecated`` (still readable, readers are warned); returns the new state."""
    return transition(catalog, dataset, ref, "deprecate", reason)


def undeprecate(catalog: Catalog, dataset: str, ref: str, reason: str | None = None) -> str:
    """``deprecated`` -> ``released``, undoing a deprecation."""
    return transition(catalog, dataset, ref, "undeprecate", reason)


def yank(catalog: Catalog, dataset: str, ref: str, reason: str) -> str:
    """``released``/``deprecated`` -> ``yanked``: readers are refused unless they insist.
    Final; the files are kept (they are immutable) and the semver stays taken."""
    return transition(catalog, dataset, ref, "yank", reason)


def transition(catalog: Catalog, dataset: str, ref: str, action: str,
               reason: str | None = None) -> str:
    reason = (reason or "").strip() or None
    if action in REASON_REQUIRED and reason is None:
        raise TransitionError(f"{action} needs a reason", where=f"{dataset}@{ref}",
                              fix=f"say why, e.g. `haina {action} {dataset}@{ref} --reason "
                                  f"\"salinity offset in July\"`")
    version = _lookup(catalog, dataset, ref)
    rel = release_of(catalog, version.version_id)
    catalog.move_version(_move(version, action, rel.semver if rel else None, reason))
    return TRANSITIONS[action][1]


def _require_state(catalog: Catalog, version: VersionRecord, action: str) -> None:
    if version.state not in TRANSITIONS[action][0]:
        raise states.state_error(version.dataset, version.version_id, action, version.state)


# --- documents: the card and Croissant file of a release ----------------------------------------
def document_names() -> tuple[str, ...]:
    """The files a release writes into its version folder, besides the data."""
    from catalog.documents import croissant
    from catalog.documents.card import writer as card  # pyarrow and Beam: only for documents

    return (card.MD_NAME, card.HTML_NAME, croissant.CROISSANT_NAME)


def missing_documents(version: VersionRecord) -> list[str]:
    return [name for name in document_names()
            if not files_mod.exists(uri_mod.join(version.path, name))]


def write_documents(catalog: Catalog, version: VersionRecord, record: ReleaseRecord) -> list[str]:
    """Write the release's card (Markdown, HTML) and Croissant file, then record that they are
    written (``releases.documented_at``, audited). Safe to repeat: it rewrites the same files."""
    from catalog.documents import croissant
    from catalog.documents.card import writer as card  # pyarrow and Beam: only for documents

    md_path, html_path = card.write_card(catalog, version, release=record.semver,
                                         changelog=record.changes)
    jsonld = croissant.write_croissant(catalog, version, release=record.semver)
    catalog.mark_documented(record.dataset, record.semver, list(document_names()))
    return [md_path, html_path, jsonld]


def complete_releases(catalog: Catalog, dataset: str) -> list[tuple[ReleaseRecord, list[str]]]:
    """Write the documents of every release of ``dataset`` that lacks them: never written (a
    release killed after its commit) or since removed. Returns what it wrote; idempotent."""
    versions = {v.version_id: v for v in catalog.versions(dataset)}
    done = []
    for record in releases(catalog, dataset):
        version = versions[record.version_id]
        if record.documented_at is None or missing_documents(version):
            done.append((record, write_documents(catalog, version, record)))
    return done


# --- immutability ------------------------------------------------------------------------------
def _sha256(uri: str) -> str | None:
    """The file's SHA-256, or None when it is missing or unreadable (a mismatch to report)."""
    try:
        return files_mod.sha256(uri)
    except OSError:
        return None


def check_unchanged(catalog: Catalog, version: VersionRecord) -> FileMismatch | None:
    """Recompute the sha256 of the version's manifest and files (streamed); the first that
    differs from the catalog, or None when all match. Released files are never rewritten, so a
    mismatch means the warehouse was modified outside Haina."""
    from catalog.storage.manifest import MANIFEST_NAME  # pyarrow and Beam: only when hashing

    expected = [(MANIFEST_NAME, version.manifest_sha256)]
    expected += [(f.path, f.sha256) for f in catalog.files(version.version_id)]
    for rel, sha in expected:
        actual = _sha256(uri_mod.join(version.path, rel))
        if actual != sha:
            return FileMismatch(rel, sha, actual)
    return None
