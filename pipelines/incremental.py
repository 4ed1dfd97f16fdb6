"""Incremental runs: which source files to process, and which output files to carry over.

Source files are compared with the latest version by content (sha256), not by name or mtime:

- unchanged (same URI, same sha256): its output files are carried into the new version by
  reference (a hard link where the filesystem has them, a server-side copy elsewhere), never
  re-read or re-written;
- changed (same URI, new sha256): processed again; its previous output files are left out, so the
  rows from its old content are replaced exactly — output files are per source file, which is what
  makes this exact;
- new: processed;
- removed (in the previous version, no longer matched): kept or dropped as the recipe says.

A changed recipe (its sha256) or ``--full`` processes everything again. A source is a recipe
entry's file (:func:`catalog.store.source_key`): two entries reading one file (a staggered grid)
are two sources. Pure functions: no Beam, no I/O.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from catalog.storage.manifest import FileEntry, Manifest, SourceEntry
from catalog.store import source_key

QUARANTINE = "quarantine"


class IncrementalConfig(BaseModel):
    """The recipe's ``incremental:`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: process only new and changed source files; false re-processes everything every run
    enabled: bool = True
    #: what happens to the rows of a source file that is no longer matched by the recipe's globs
    removed_sources: Literal["keep", "drop"] = "keep"


@dataclasses.dataclass(frozen=True)
class Source:
    """A matched source file: its recipe source index, URI and content fingerprint."""

    index: int
    uri: str
    sha256: str
    size: int

    @property
    def key(self) -> str:
        return source_key(self.index, self.uri)


def _manifest_key(entry: SourceEntry) -> str:
    """A manifest's source entry as a source key (manifests before entries were keyed: 0)."""
    return source_key(entry.index, entry.uri)


@dataclasses.dataclass(frozen=True)
class Delta:
    """What an incremental run does, decided before anything is read."""

    process: tuple[Source, ...]
    #: manifest file entries carried over from the previous version (data and quarantine)
    reuse: tuple[FileEntry, ...]
    #: manifest source entries of the carried-over files (unchanged, and removed-but-kept)
    carried_sources: tuple[SourceEntry, ...]
    new: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]
    #: why everything is processed again, or None for an incremental run
    full_reason: str | None
    previous_version: str | None

    @property
    def nothing_to_do(self) -> bool:
        """No source to process and nothing to drop: the previous version still holds."""
        dropped = self.removed and not any(_manifest_key(s) in self.removed
                                           for s in self.carried_sources)
        return self.previous_version is not None and not self.process and not dropped

    def describe(self) -> str:
        if self.full_reason:
            return f"processing all {len(self.process)} source file(s): {self.full_reason}"
        parts = [f"{len(self.new)} new", f"{len(self.changed)} changed",
                 f"{len(self.unchanged)} unchanged"]
        if self.removed:
            parts.append(f"{len(self.removed)} no longer matched")
        return (f"since {self.previous_version}: " + ", ".join(parts)
                + f" source file(s); {len(self.reuse)} output file(s) carried over")


def full(sources: Sequence[Source], reason: str, previous_version: str | None = None) -> Delta:
    return Delta(process=tuple(sources), reuse=(), carried_sources=(), new=(), changed=(),
                 unchanged=(), removed=(), full_reason=reason, previous_version=previous_version)


def delta(sources: Sequence[Source], previous: Manifest | None, recipe_sha256: str | None,
          config: IncrementalConfig, force_full: bool = False) -> Delta:
    """Compare matched sources with the previous version's manifest."""
    if previous is None:
        return full(sources, "no previous version")
    version = previous.version.id
    if force_full:
        return full(sources, "a full run was requested (--full)", version)
    if not config.enabled:
        return full(sources, "incremental runs are disabled in the recipe", version)
    if previous.run.recipe_sha256 != recipe_sha256:
        return full(sources, f"the recipe changed since {version}", version)
    before = {_manifest_key(s): s for s in previous.sources}
    now = {s.key: s for s in sources}
    new = tuple(u for u in now if u not in before)
    changed = tuple(u for u in now if u in before and before[u].sha256 != now[u].sha256)
    unchanged = tuple(u for u in now if u in before and before[u].sha256 == now[u].sha256)
    removed = tuple(u for u in before if u not in now)
    carried = [before[u] for u in unchanged]
    if config.removed_sources == "keep":
        carried += [before[u] for u in removed]
    carried_shas = {s.sha256 for s in carried}
    reuse = tuple(f for f in previous.files if f.source_sha256 in carried_shas)
    return Delta(process=tuple(now[u] for u in new + changed), reuse=reuse,
                 carried_sources=tuple(carried), new=new, changed=changed, unchanged=unchanged,
                 removed=removed, full_reason=None, previous_version=version)


def same_content(process: Sequence[Source], carried: Sequence[SourceEntry]
                 ) -> tuple[list[Source], list[tuple[Source, str]]]:
    """The sources to ingest, and the copies left out, each with the URI it repeats.

    Identical bytes under two names, matched by one recipe entry, are a copy: ingesting both
    would duplicate every row (and their output files would share a name, since names derive
    from the content's sha256 and the entry). The first file of a content is ingested; a later
    one, or one whose content a carried-over source of the same entry already holds, is recorded
    as a source of the version but not read. Two entries reading one file (or equal bytes) are
    no copies: each reads its own variables (a staggered grid's u and v).
    """
    first = {(s.index, s.sha256): s.uri for s in carried}
    unique, copies = [], []
    for source in process:
        key = (source.index, source.sha256)
        if key in first:
            copies.append((source, first[key]))
        else:
            first[key] = source.uri
            unique.append(source)
    return unique, copies
