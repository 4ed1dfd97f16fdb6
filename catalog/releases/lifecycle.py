"""The release lifecycle of versions: draft -> released -> deprecated / yanked, with semvers.

::

    draft ──release──> released ──deprecate──> deprecated ──undeprecate──> released
                          │                        │
                          └──────────yank──────────┴──> yanked   (final; reason required)

A run commits a ``draft``. Releasing gives it a semantic version (table ``releases``: one semver
per version and per dataset, both UNIQUE) proposed from the difference to the previous release
(:mod:`catalog.releases.diff`, :mod:`catalog.releases.semver`). Deprecated versions stay readable with a warning;
yanked ones are refused by :func:`resolve` unless asked for explicitly. Every transition is a
row of ``version_transitions`` and an audit event (``catalog._mutated``) in the same transaction
as the change of ``versions.state``.

Concurrency: each transition is one conditional ``UPDATE versions SET state=... WHERE state IN
(allowed)`` whose RETURNING row says whether this call made it, so of two processes releasing the
same draft exactly one sees the draft (PostgreSQL makes the second wait for the first's row lock
and re-check; SQLite serialises writers with BEGIN IMMEDIATE). Two releases of one semver are
stopped by the UNIQUE (dataset, semver) key. ``latest-draft`` is compared and set the same way:
it names the newest draft only while no newer version is released, checked again inside the
release transaction, so a publisher that comes second does not release an older draft under a
newer number. The loser gets :class:`ReleaseConflictError` (exit 4).

Documents: a release publishes a dataset card and a Croissant file beside its data, written
after the release commits. :func:`complete_releases` writes those of any release that lacks
them (a release killed between its commit and its documents) and is idempotent; ``haina
release`` and ``haina verify`` call it first.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from catalog import faults
from catalog.exceptions import CatalogError
from catalog.releases import resolve as resolve_mod
from catalog.releases import semver as semver_mod
from catalog.sql.backend import UtcDateTime, metadata, versions_t
from catalog.store import Catalog, VersionRecord, utcnow

if TYPE_CHECKING:
    from catalog.releases.diff import DatasetDiff

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
_HASH_BLOCK = 8 * 2**20

releases_t = sa.Table(
    "releases", metadata,
    sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), primary_key=True),
    sa.Column("semver", sa.String(40), primary_key=True),  # UNIQUE per dataset through the key
    sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"),
              nullable=False, unique=True),
    sa.Column("released_at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("bump", sa.String(10), nullable=False),
    sa.Column("previous", sa.String(40)),
    #: the changes since the previous release, as the card lists them (revision 0004)
    sa.Column("changelog", sa.JSON),
    #: when the card and Croissant file were written; NULL until then (revision 0004)
    sa.Column("documented_at", UtcDateTime),
)
transitions_t = sa.Table(
    "version_transitions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(200), sa.ForeignKey("datasets.name"), nullable=False),
    sa.Column("version_id", sa.String(64), sa.ForeignKey("versions.version_id"), nullable=False),
    sa.Column("from_state", sa.String(20), nullable=False),
    sa.Column("to_state", sa.String(20), nullable=False),
    sa.Column("semver", sa.String(40)),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Index("ix_version_transitions_dataset", "dataset", "at"),
)


# --- errors (subclasses of CatalogError, so the CLI prints them as messages) ---------------------
class ReleaseError(CatalogError):
    """A release-lifecycle operation is not possible as asked."""


class TransitionError(ReleaseError):
    """The version is not in a state the action starts from, or a needed reason is missing."""


class ReleaseConflictError(ReleaseError):
    """Another process released the same draft or took the same semver first."""

    exit_code = 4


class YankedVersionError(ReleaseError):
    """A yanked version was asked for without ``allow_yanked``."""


class DeprecatedVersionWarning(UserWarning):
    """A deprecated version was resolved: still readable, but its owner advises against it."""


# --- records -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ReleaseRecord:
    dataset: str
    semver: str
    version_id: str
    released_at: dt.datetime
    actor: str
    notes: str | None
    manifest_sha256: str
    bump: str
    previous: str | None
    changelog: list[str] | None = None
    documented_at: dt.datetime | None = None

    @property
    def parsed(self) -> semver_mod.SemVer:
        return semver_mod.parse(self.semver)

    @property
    def changes(self) -> list[str]:
        """The card's changelog; releases recorded before it was stored get a summary."""
        if self.changelog is not None:
            return list(self.changelog)
        return [f"{self.bump} release after {self.previous}"] if self.previous \
            else ["first release"]


@dataclasses.dataclass(frozen=True)
class TransitionRecord:
    id: int
    dataset: str
    version_id: str
    from_state: str
    to_state: str
    semver: str | None
    actor: str
    at: dt.datetime
    reason: str | None


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


def _engine(catalog: Catalog) -> sa.Engine:
    engine = getattr(catalog, "_engine", None)
    if engine is None:
        raise ReleaseError(f"{type(catalog).__name__} does not support releases",
                           where="catalog", fix="use a SQL catalog (sqlite:// or postgresql://)")
    return engine


# --- queries -----------------------------------------------------------------------------------
def releases(catalog: Catalog, dataset: str) -> list[ReleaseRecord]:
    """Releases of ``dataset``, lowest semver first."""
    with _engine(catalog).connect() as conn:
        rows = conn.execute(sa.select(releases_t).where(releases_t.c.dataset == dataset))
        found = [ReleaseRecord(**r._mapping) for r in rows]
    return sorted(found, key=lambda r: r.parsed)


def release_of(catalog: Catalog, version_id: str) -> ReleaseRecord | None:
    with _engine(catalog).connect() as conn:
        row = conn.execute(sa.select(releases_t)
                           .where(releases_t.c.version_id == version_id)).first()
    return ReleaseRecord(**row._mapping) if row is not None else None


def transitions(catalog: Catalog, dataset: str,
                version_id: str | None = None) -> list[TransitionRecord]:
    """State changes of a dataset's versions (or of one version), oldest first."""
    query = sa.select(transitions_t).where(transitions_t.c.dataset == dataset)
    if version_id is not None:
        query = query.where(transitions_t.c.version_id == version_id)
    with _engine(catalog).connect() as conn:
        rows = conn.execute(query.order_by(transitions_t.c.at, transitions_t.c.id))
        return [TransitionRecord(**r._mapping) for r in rows]


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
        with _engine(catalog).connect() as conn:
            _require_newest(conn, version)
    previous = previous_release(catalog, dataset)
    diff = None
    if previous is not None:
        before = catalog.version(dataset, previous.version_id)
        diff = diff_versions(catalog, before, version, stats=stats)
    proposal = semver_mod.propose(previous.parsed if previous else None, diff)
    chosen = proposal.version
    if requested is not None:
        chosen = semver_mod.parse(requested, where="--version")
        semver_mod.check_requested(previous.parsed if previous else None, chosen, proposal)
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
    try:
        with _engine(catalog).begin() as conn:
            from_state = _move(conn, version, "release")
            if newest_only:
                _require_newest(conn, version)
            _require_free(conn, version, semver)
            _require_previous(conn, version.dataset, previous, semver)
            conn.execute(releases_t.insert().values(**dataclasses.asdict(record)))
            _log(catalog, conn, version, "release", from_state, semver, notes)
    except sa.exc.IntegrityError as err:
        raise _conflict(catalog, version, semver) from err
    return record


def _require_newest(conn: sa.Connection, version: VersionRecord) -> None:
    """``latest-draft`` must not name a draft older than a released version: that happens when
    another publisher released the newest draft first, and releasing this one would publish
    older data under a newer number."""
    newer = conn.execute(
        sa.select(versions_t.c.version_id, versions_t.c.state, releases_t.c.semver)
        .join(releases_t, releases_t.c.version_id == versions_t.c.version_id, isouter=True)
        .where(versions_t.c.dataset == version.dataset, versions_t.c.state != DRAFT,
               versions_t.c.version_id != version.version_id,
               sa.or_(versions_t.c.created_at > version.created_at,
                      sa.and_(versions_t.c.created_at == version.created_at,
                              versions_t.c.version_id > version.version_id)))
        .order_by(versions_t.c.created_at.desc()).limit(1)).first()
    if newer is not None:
        label = f"{newer.version_id} ({newer.semver})" if newer.semver else newer.version_id
        raise ReleaseConflictError(
            f"the latest draft {version.version_id} is older than version {label}, which is "
            f"already {newer.state}: another publisher released the newest draft first",
            where=f"dataset {version.dataset}",
            fix=f"check `haina releases {version.dataset}`; to release the older draft anyway, "
                f"name it: `haina release {version.dataset}@{version.version_id}`")


def _require_free(conn: sa.Connection, version: VersionRecord, semver: str) -> None:
    holder = conn.execute(sa.select(releases_t.c.version_id).where(
        releases_t.c.dataset == version.dataset, releases_t.c.semver == semver)).scalar()
    if holder is not None:
        raise _taken(version, semver, holder)


def _taken(version: VersionRecord, semver: str, holder: str) -> ReleaseConflictError:
    return ReleaseConflictError(
        f"semver {semver} is already taken by version {holder}", where=f"dataset {version.dataset}",
        fix="list the releases with `haina releases NAME` and pick the next free version")


def _require_previous(conn: sa.Connection, dataset: str, previous: str | None,
                      semver: str) -> None:
    taken = [semver_mod.parse(s) for s in conn.execute(
        sa.select(releases_t.c.semver).where(releases_t.c.dataset == dataset)).scalars()]
    highest = str(max(taken)) if taken else None
    if highest != previous:
        raise ReleaseConflictError(
            f"the latest release is now {highest}, not {previous} as when {semver} was "
            f"planned", where=f"dataset {dataset}",
            fix="another release happened meanwhile; run `haina release` again to re-plan")


def _conflict(catalog: Catalog, version: VersionRecord, semver: str) -> ReleaseConflictError:
    """The error for a UNIQUE violation: the race was lost after our own checks passed."""
    with _engine(catalog).connect() as conn:
        holder = conn.execute(sa.select(releases_t.c.version_id).where(
            releases_t.c.dataset == version.dataset, releases_t.c.semver == semver)).scalar()
    if holder is not None and holder != version.version_id:
        return _taken(version, semver, holder)
    return ReleaseConflictError(
        f"version {version.version_id} was released by another process meanwhile",
        where=f"dataset {version.dataset}",
        fix="list the releases with `haina releases NAME`; release another draft")


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
    with _engine(catalog).begin() as conn:
        from_state = _move(conn, version, action)
        _log(catalog, conn, version, action, from_state, rel.semver if rel else None, reason)
    return TRANSITIONS[action][1]


def _move(conn: sa.Connection, version: VersionRecord, action: str) -> str:
    """Change ``versions.state`` if it is one ``action`` starts from; return the old state."""
    allowed, target = TRANSITIONS[action]
    # FOR UPDATE: on PostgreSQL a concurrent transition waits here for ours to commit, then
    # reads the state we left (SQLite ignores it; BEGIN IMMEDIATE already serialises writers)
    current = conn.execute(sa.select(versions_t.c.state).with_for_update()
                           .where(versions_t.c.version_id == version.version_id)).scalar()
    moved = None
    if current in allowed:  # the WHERE repeats the check so that the statement alone is safe
        moved = conn.execute(
            versions_t.update()
            .where(versions_t.c.version_id == version.version_id,
                   versions_t.c.state.in_(allowed))
            .values(state=target).returning(versions_t.c.version_id)).first()
    if moved is None:
        raise _state_error(version, action, current)
    return current


def _state_error(version: VersionRecord, action: str, state: str | None) -> ReleaseError:
    allowed, _ = TRANSITIONS[action]
    where = f"{version.dataset}@{version.version_id}"
    if action == "release" and state in (RELEASED, DEPRECATED, YANKED):
        return ReleaseConflictError(
            f"version {version.version_id} is already {state}, so it cannot be released again",
            where=where, fix="release a new draft; `haina releases NAME` lists the releases")
    return TransitionError(
        f"cannot {action} a version that is {state}: {action} needs "
        f"{' or '.join(sorted(allowed))}", where=where,
        fix="check the state with `haina versions NAME`" + (
            "; a yank is final" if state == YANKED else ""))


def _require_state(catalog: Catalog, version: VersionRecord, action: str) -> None:
    if version.state not in TRANSITIONS[action][0]:
        raise _state_error(version, action, version.state)


def _log(catalog: Catalog, conn: sa.Connection, version: VersionRecord, action: str,
         from_state: str, semver: str | None, reason: str | None) -> None:
    to_state = TRANSITIONS[action][1]
    conn.execute(transitions_t.insert().values(
        dataset=version.dataset, version_id=version.version_id, from_state=from_state,
        to_state=to_state, semver=semver, actor=catalog.actor, at=utcnow(), reason=reason))
    target = f"{version.dataset}@{semver or version.version_id}"
    details: dict[str, Any] = {"version_id": version.version_id, "from_state": from_state,
                               "to_state": to_state, "semver": semver, "reason": reason}
    catalog._mutated(conn, f"version.{action}", target, details)


# --- documents: the card and Croissant file of a release ----------------------------------------
def document_names() -> tuple[str, ...]:
    """The files a release writes into its version folder, besides the data."""
    from catalog.documents import card, croissant

    return (card.MD_NAME, card.HTML_NAME, croissant.CROISSANT_NAME)


def missing_documents(version: VersionRecord) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    return [name for name in document_names()
            if not FileSystems.exists(_join(version.path, name))]


def write_documents(catalog: Catalog, version: VersionRecord, record: ReleaseRecord) -> list[str]:
    """Write the release's card (Markdown, HTML) and Croissant file, then record that they are
    written (``releases.documented_at``, audited). Safe to repeat: it rewrites the same files."""
    from catalog.documents import card, croissant

    md_path, html_path = card.write_card(catalog, version, release=record.semver,
                                         changelog=record.changes)
    jsonld = croissant.write_croissant(catalog, version, release=record.semver)
    with _engine(catalog).begin() as conn:
        conn.execute(releases_t.update()
                     .where(releases_t.c.dataset == record.dataset,
                            releases_t.c.semver == record.semver)
                     .values(documented_at=utcnow()))
        catalog._mutated(conn, "release.documents", f"{record.dataset}@{record.semver}",
                         {"version_id": record.version_id, "files": list(document_names())})
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
# Beam's filesystems (any URI scheme) are imported on use: this module is imported by every
# catalog open (its tables join create_all), which must stay fast.
def _sha256(uri: str) -> str | None:
    from apache_beam.io.filesystems import FileSystems

    digest = hashlib.sha256()
    try:
        with FileSystems.open(uri, compression_type="uncompressed") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
    except (OSError, FileNotFoundError):
        return None
    return digest.hexdigest()


def _join(folder: str, rel: str) -> str:
    if "://" not in folder:
        return os.path.join(folder, rel)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(folder, rel)


def check_unchanged(catalog: Catalog, version: VersionRecord) -> FileMismatch | None:
    """Recompute the sha256 of the version's manifest and files (streamed); the first that
    differs from the catalog, or None when all match. Released files are never rewritten, so a
    mismatch means the warehouse was modified outside Haina."""
    from catalog.storage.manifest import MANIFEST_NAME

    expected = [(MANIFEST_NAME, version.manifest_sha256)]
    expected += [(f.path, f.sha256) for f in catalog.files(version.version_id)]
    for rel, sha in expected:
        actual = _sha256(_join(version.path, rel))
        if actual != sha:
            return FileMismatch(rel, sha, actual)
    return None
