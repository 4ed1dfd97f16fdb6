"""The one reading of ``NAME@REF``: which version of a dataset a reference names.

Every command that takes a reference, :func:`catalog.read.open_dataset`, verification and
lineage ask this module, so ``demo@latest`` means the same version everywhere:

- ``latest``: the latest *release* (the highest released semver; a deprecated release only
  when no other is released; never a yanked one). A dataset with no release at all falls back
  to its latest draft, with one notice (:data:`UNRELEASED_NOTICE`) that the caller shows;
- ``latest-draft``: the newest draft (``haina release NAME@latest-draft`` relies on it naming
  a draft: releasing an older draft after a newer version was released is refused there);
- a semantic version (``1.2.0`` or ``v1.2.0``, as :mod:`catalog.releases.semver` parses it);
- anything else: a version id.

Pure functions over the records a catalog returns: no I/O here. The catalog reads (versions,
releases) and the lifecycle policy applied after picking (a yanked version refused, a
deprecated one warned about) are :func:`catalog.releases.lifecycle.resolve`'s, which calls
:func:`pick`. Reading nothing keeps the import graph acyclic: the lifecycle resolves references
itself (releasing ``latest-draft``, yanking ``1.0.0``) and imports this module, while the
release records this module needs are the lifecycle's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from catalog.exceptions import CatalogError, VersionNotFoundError
from catalog.releases import semver as semver_mod
from catalog.store import VersionRecord

LATEST = "latest"
LATEST_DRAFT = "latest-draft"
DRAFT, RELEASED, YANKED = "draft", "released", "yanked"
#: what ``latest`` of a dataset without any release says when it falls back to a draft
UNRELEASED_NOTICE = "{dataset} has no released version; using the latest draft {version_id}"


class InvalidReferenceError(CatalogError, ValueError):
    """A ``NAME@REF`` text that is not one (no ``@``, an empty name or an empty ref)."""


class UnreleasedVersionWarning(UserWarning):
    """``latest`` fell back to a draft because the dataset has no release yet."""


class Release(Protocol):
    """What :func:`pick` needs of a release record (``lifecycle.ReleaseRecord`` has it)."""

    @property
    def semver(self) -> str: ...

    @property
    def version_id(self) -> str: ...


class Reference(NamedTuple):
    """A parsed ``NAME@REF``."""

    name: str
    ref: str

    def __str__(self) -> str:
        return f"{self.name}@{self.ref}"


class Pick(NamedTuple):
    """The version a reference names, and the notice to show when ``latest`` fell back."""

    version: VersionRecord
    notice: str | None = None


def parse_reference(text: str, *, example: str = "haina show demo@latest") -> Reference:
    """``"demo@1.2.0"`` -> ``Reference("demo", "1.2.0")``; a bare ``"demo"`` means
    ``demo@latest``. ``example`` is the command the error suggests."""
    name, sep, ref = text.strip().partition("@")
    if not sep:
        ref = LATEST
    if not name or not ref:
        raise InvalidReferenceError(
            f"{text!r} is not NAME@VERSION", where="version reference",
            fix=f"e.g. `{example}` (VERSION: 'latest', 'latest-draft', a semver such as 1.0.0 "
                f"or a version id); list versions with `haina versions NAME`")
    return Reference(name, ref)


def pick(dataset: str, ref: str, versions: Sequence[VersionRecord],
         releases: Sequence[Release], *, draft_fallback: bool = False) -> Pick:
    """The version of ``dataset`` that ``ref`` names among ``versions`` (oldest first) and
    ``releases``. With ``draft_fallback``, ``latest`` of a dataset that has no release at all
    is its latest draft, with a notice; otherwise that is a :class:`VersionNotFoundError`."""
    if not versions:
        raise VersionNotFoundError(f"dataset {dataset!r} has no version yet",
                                   where=f"{dataset}@{ref}", fix=f"run the recipe of {dataset!r}")
    if ref == LATEST:
        return _latest(dataset, versions, releases, draft_fallback)
    if ref == LATEST_DRAFT:
        return Pick(_latest_draft(dataset, versions))
    if semver_mod.is_semver(ref):
        return Pick(_by_semver(dataset, str(semver_mod.parse(ref)), versions, releases))
    return Pick(_by_id(dataset, ref, versions))


def _latest(dataset: str, versions: Sequence[VersionRecord], releases: Sequence[Release],
            draft_fallback: bool) -> Pick:
    states = {v.version_id: v for v in versions}
    ordered = sorted(releases, key=lambda r: semver_mod.parse(r.semver))
    usable = [r for r in ordered if states[r.version_id].state != YANKED]
    preferred = [r for r in usable if states[r.version_id].state == RELEASED] or usable
    if preferred:
        return Pick(states[preferred[-1].version_id])
    if draft_fallback and not releases:
        draft = _latest_draft(dataset, versions)
        return Pick(draft, UNRELEASED_NOTICE.format(dataset=dataset,
                                                    version_id=draft.version_id))
    raise VersionNotFoundError(
        f"dataset {dataset!r} has no released version"
        + (" (every release was yanked)" if releases else ""), where="ref 'latest'",
        fix=f"release a draft with `haina release {dataset}@latest-draft`, or read "
            f"'latest-draft'")


def _latest_draft(dataset: str, versions: Sequence[VersionRecord]) -> VersionRecord:
    drafts = [v for v in versions if v.state == DRAFT]
    if not drafts:
        raise VersionNotFoundError(f"dataset {dataset!r} has no draft version",
                                   where=f"ref {LATEST_DRAFT!r}", fix="run the dataset's recipe")
    return drafts[-1]


def _by_semver(dataset: str, semver: str, versions: Sequence[VersionRecord],
               releases: Sequence[Release]) -> VersionRecord:
    found = [r.version_id for r in releases if r.semver == semver]
    if not found:
        ordered = sorted(releases, key=lambda r: semver_mod.parse(r.semver))
        known = ", ".join(r.semver for r in ordered) or "none yet"
        raise VersionNotFoundError(f"dataset {dataset!r} has no release {semver} "
                                   f"(releases: {known})", where=f"ref {semver!r}",
                                   fix="pass one of the listed semvers, a version id or 'latest'")
    return _by_id(dataset, found[0], versions)


def _by_id(dataset: str, version_id: str, versions: Sequence[VersionRecord]) -> VersionRecord:
    for version in versions:
        if version.version_id == version_id:
            return version
    known = ", ".join(v.version_id for v in versions[-10:])
    raise VersionNotFoundError(
        f"dataset {dataset!r} has no version {version_id!r} (latest versions: {known})",
        where=f"{dataset}@{version_id}",
        fix="pass one of the listed ids, a released semver, 'latest' or 'latest-draft'")
