"""Semantic versions of released datasets, and the bump a difference between releases needs.

The meaning follows TFDS and Croissant, applied to records rather than code:

- PATCH: the same records (same rows, same columns and types): only the encoding of the files
  (compression, row groups) or metadata (descriptions, footer keys, field attributes) differ;
- MINOR: records or columns were added and nothing that existed changed;
- MAJOR: records changed or were removed, columns were removed, retyped or changed units, or the
  split assignment (a ``split`` column) changed: a consumer's existing results may no longer hold.

Pure functions over :class:`catalog.releases.diff.DatasetDiff`; nothing here reads files or the catalog.
"""
from __future__ import annotations

import dataclasses
import enum
import re
from typing import TYPE_CHECKING, NamedTuple

from catalog.exceptions import CatalogError

if TYPE_CHECKING:  # diff imports pyarrow; the type is only needed for annotations
    from catalog.releases.diff import DatasetDiff

#: the first release of a dataset, when none is requested
FIRST_RELEASE = "1.0.0"
#: SemVer 2.0.0 (semver.org, "Is there a suggested regular expression"), ASCII digits only, with
#: the optional leading ``v`` releases have always accepted (``v1.2.0`` is ``1.2.0``)
_SEMVER = re.compile(
    r"v?(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?:-(?P<pre>(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?", re.ASCII)
#: the column whose values assign rows to train/validation/test
SPLIT_COLUMN = "split"


class SemverError(CatalogError, ValueError):
    """A version string is not X.Y.Z, or does not come after the previous release."""


class BumpTooSmallError(SemverError):
    """A requested version understates the difference to the previous release."""

    def __init__(self, message: str, *, required: str, where: str | None = None,
                 fix: str | None = None):
        self.required = required
        super().__init__(message, where=where, fix=fix)


class Bump(enum.IntEnum):
    """How much a release changes; larger values need a larger version bump."""

    PATCH = 1
    MINOR = 2
    MAJOR = 3


@dataclasses.dataclass(frozen=True)
class SemVer:
    """A semantic version; ``<``, ``>`` and ``max`` follow SemVer 2.0.0 precedence (item 11).

    ``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0``: numbers
    compare numerically, a pre-release comes before its release, and build metadata plays no
    part in precedence or equality (``1.0.0+a == 1.0.0+b``).
    """

    major: int
    minor: int
    patch: int
    #: pre-release identifiers, e.g. ``("rc", "1")`` for ``-rc.1``; () for a release
    prerelease: tuple[str, ...] = ()
    #: build metadata identifiers, e.g. ``("sha", "5114f85")``; ignored by comparisons
    build: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text + ("+" + ".".join(self.build) if self.build else "")

    @property
    def is_release(self) -> bool:
        """True for a plain ``MAJOR.MINOR.PATCH`` (what ``haina release`` gives versions)."""
        return not self.prerelease and not self.build

    def precedence(self) -> tuple[int, int, int, tuple[tuple[int, int | str], ...]]:
        """The sort key of item 11: a release sorts after each of its pre-releases, numeric
        identifiers before alphanumeric ones, and more identifiers after fewer equal ones."""
        if not self.prerelease:
            return self.major, self.minor, self.patch, ((2, 0),)
        ids = tuple((0, int(i)) if i.isdigit() else (1, i) for i in self.prerelease)
        return self.major, self.minor, self.patch, ids

    def __lt__(self, other: SemVer) -> bool:
        return self.precedence() < other.precedence()

    def __le__(self, other: SemVer) -> bool:
        return self.precedence() <= other.precedence()

    def __gt__(self, other: SemVer) -> bool:
        return self.precedence() > other.precedence()

    def __ge__(self, other: SemVer) -> bool:
        return self.precedence() >= other.precedence()

    def bumped(self, level: Bump) -> SemVer:
        """The next release at ``level`` (tags are dropped: releases carry none)."""
        if level is Bump.MAJOR:
            return SemVer(self.major + 1, 0, 0)
        if level is Bump.MINOR:
            return SemVer(self.major, self.minor + 1, 0)
        return SemVer(self.major, self.minor, self.patch + 1)


def parse_version(text: str, *, where: str = "version") -> SemVer:
    """Any SemVer 2.0.0 string (pre-release and build tags included; a leading ``v`` is
    allowed) -> :class:`SemVer`; anything else is a :class:`SemverError`."""
    match = _SEMVER.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise SemverError(f"{text!r} is not a semantic version MAJOR.MINOR.PATCH", where=where,
                          fix="write three non-negative integers without leading zeros, "
                              "e.g. 1.0.0 or 2.3.1")
    pre, build = match.group("pre"), match.group("build")
    return SemVer(int(match.group("major")), int(match.group("minor")), int(match.group("patch")),
                  tuple(pre.split(".")) if pre else (), tuple(build.split(".")) if build else ())


def parse(text: str, *, where: str = "version") -> SemVer:
    """A release version: ``"1.2.0"`` (or ``"v1.2.0"``) -> ``SemVer(1, 2, 0)``.

    Releases are plain ``MAJOR.MINOR.PATCH``, as ``haina release --version`` has always
    required: a draft is the pre-release stage (``latest-draft``), so a pre-release or build tag
    is refused with its own :class:`SemverError`. Anything else is not a semantic version.
    """
    version = parse_version(text, where=where)
    if not version.is_release:
        raise SemverError(
            f"{text.strip()!r} carries a pre-release or build tag; releases are plain "
            f"MAJOR.MINOR.PATCH", where=where,
            fix=f"release as {version.major}.{version.minor}.{version.patch} (drafts are "
                f"the pre-releases: read one as NAME@latest-draft or by its id)")
    return version


def is_version(text: str) -> bool:
    """True for any SemVer 2.0.0 string (pre-release and build tags included)."""
    return isinstance(text, str) and _SEMVER.fullmatch(text.strip()) is not None


def is_semver(text: str) -> bool:
    """True for a release version (what :func:`parse` accepts): ``1.2.0`` or ``v1.2.0``."""
    return is_version(text) and parse_version(text).is_release


def level_of(previous: SemVer, new: SemVer) -> Bump:
    """Which part ``new`` bumps relative to ``previous`` (it must come after it)."""
    if new <= previous:
        raise SemverError(f"{new} does not come after the previous release {previous}",
                          where="version",
                          fix=f"pick a version greater than {previous}, e.g. "
                              f"{previous.bumped(Bump.PATCH)}")
    if new.major != previous.major:
        return Bump.MAJOR
    if new.minor != previous.minor:
        return Bump.MINOR
    return Bump.PATCH


# --- what a difference requires ----------------------------------------------------------------
class Proposal(NamedTuple):
    """The bump a difference needs, why, and the version it leads to."""

    level: Bump
    reasons: tuple[str, ...]
    version: SemVer

    @property
    def reason(self) -> str:
        return self.reasons[0] if self.reasons else "same records"


def required_bump(diff: DatasetDiff) -> tuple[Bump, tuple[str, ...]]:
    """The least bump ``diff`` needs, with the reasons for that level (most important first)."""
    major = _major_reasons(diff)
    if major:
        return Bump.MAJOR, tuple(major)
    minor = _minor_reasons(diff)
    if minor:
        return Bump.MINOR, tuple(minor)
    return Bump.PATCH, tuple(diff.patch_notes) or ("same records and schema",)


def _major_reasons(diff: DatasetDiff) -> list[str]:
    s = diff.schema
    out = [f"column {c!r} was removed" for c in s.removed]
    out += [f"column {c.name!r} changed type {c.old} -> {c.new}" for c in s.retyped]
    out += [f"column {c.name!r} changed units {c.old} -> {c.new}" for c in s.units]
    for p in diff.partitions:
        split = p.changed_columns.get(SPLIT_COLUMN, 0)
        if split:
            out.append(f"split assignment of {split:,} rows of partition {p.partition} changed")
        if p.changed:
            cols = ", ".join(f"{k} {v:,}" for k, v in sorted(p.changed_columns.items()))
            out.append(f"{p.changed:,} rows of partition {p.partition} changed"
                       + (f" ({cols})" if cols else ""))
        if p.removed:
            out.append(f"{p.removed:,} rows of partition {p.partition} were removed")
    return out


def _minor_reasons(diff: DatasetDiff) -> list[str]:
    out = [f"column {c!r} was added" for c in diff.schema.added]
    out += [f"{p.added:,} rows were added in partition {p.partition}"
            for p in diff.partitions if p.added]
    return out


def propose(previous: SemVer | None, diff: DatasetDiff | None) -> Proposal:
    """The version to release: 1.0.0 first, then the previous one bumped as ``diff`` needs."""
    if previous is None or diff is None:
        return Proposal(Bump.MAJOR, ("first release",), parse(FIRST_RELEASE))
    level, reasons = required_bump(diff)
    return Proposal(level, reasons, previous.bumped(level))


def check_requested(previous: SemVer | None, requested: SemVer, proposal: Proposal) -> None:
    """Refuse a requested version that does not follow ``previous`` or understates the change."""
    if previous is None:
        return  # a first release may start anywhere (0.1.0 for an experimental dataset)
    level = level_of(previous, requested)
    if level < proposal.level:
        needed = previous.bumped(proposal.level)
        raise BumpTooSmallError(
            f"{requested} is a {level.name}, but {proposal.reason}: needs {proposal.level.name} "
            f"({needed})", required=str(needed), where=f"release after {previous}",
            fix=f"release as {needed} (or omit --version to take the proposal)")
