"""``haina verify``: is a version folder byte for byte what the catalog and its manifest say?

Every data and quarantine file is read once: its bytes go through SHA-256 as they are read, and
the last blocks are kept so that the Parquet footer (row count, ``haina.*`` keys) is parsed from
memory at the end. Only a footer larger than the kept tail (two blocks, 16 MiB by default) costs
a second, ranged read of the footer alone.

Checks, in the order mismatches are reported:

1. the manifest's sha256 against the catalog's ``versions.manifest_sha256`` and, when the
   ``releases`` table exists, against the hash recorded at release;
2. each file listed in the manifest: present, sha256, size and footer row count as listed, and
   its footer names this dataset and version (an earlier version for files an incremental run
   carried over, listed in the manifest's ``extra.carried_files``);
3. no stray file under ``data/`` or ``quarantine/``;
4. manifest against catalog: the same files with the same hashes, counts and sources; the
   version row's totals equal the files';
5. lineage: every file's ``source_sha256`` is a recorded source of the version's run, and the
   run has its sources recorded; ``lineage.jsonl`` (when present) parses.

``verify_folder`` does 2, 3, the manifest's own totals and the manifest half of 5, for a folder
copied away from its warehouse: without the catalog, an edit of the manifest that keeps it
self-consistent cannot be seen unless the trusted manifest hash is passed in.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from catalog.exceptions import CatalogError, ManifestError
from catalog.releases import lifecycle
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.storage.manifest import MANIFEST_NAME, FileEntry, Manifest
from catalog.store import Catalog, FileRecord

#: read size; two blocks are kept as the tail that holds the footer
BLOCK_BYTES = files_mod.BLOCK_BYTES
#: folders of a version whose every file must be listed in the manifest
CHECKED_FOLDERS = ("data", "quarantine")
LINEAGE_NAME = "lineage.jsonl"
_MAGIC = b"PAR1"


class VerifyError(CatalogError):
    """A version folder cannot be verified at all (no such folder)."""


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One thing that does not hold: which check, where, what was expected and what was found."""

    check: str
    path: str
    expected: Any = None
    actual: Any = None
    note: str = ""

    def __str__(self) -> str:
        text = f"{self.path}: {self.check}"
        if self.expected is not None or self.actual is not None:
            text += f": expected {self.expected}, actual {self.actual}"
        return f"{text} ({self.note})" if self.note else text


@dataclasses.dataclass(frozen=True)
class FileScan:
    """What one pass over a file found."""

    path: str
    exists: bool
    sha256: str | None = None
    bytes: int = 0
    rows: int | None = None
    footer: Mapping[str, str] = dataclasses.field(default_factory=dict)
    error: str | None = None
    bytes_read: int = 0


@dataclasses.dataclass
class VerifyReport:
    target: str
    folder: str
    mode: str  # "catalog" or "folder"
    files: int = 0
    rows: int = 0
    bytes: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    mismatches: list[Mismatch] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    @property
    def first(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok,
                "mismatches": [{**dataclasses.asdict(m), "text": str(m)}
                               for m in self.mismatches]}


# --- one file, one pass ----------------------------------------------------------------------
def scan_file(uri: str, rel: str, *, block_bytes: int = BLOCK_BYTES) -> FileScan:
    """SHA-256, size and footer of ``uri``, reading each byte once."""
    if not files_mod.exists(uri):
        return FileScan(rel, exists=False)
    found = files_mod.digest(uri, keep_tail=True, block_bytes=block_bytes)
    rows, footer, error, extra = _parse_footer(uri, found.tail, found.size)
    return FileScan(rel, True, found.sha256, found.size, rows, footer, error, found.size + extra)


def _parse_footer(uri: str, tail: bytes, size: int) -> tuple[int | None, dict, str | None, int]:
    """Row count and key-value metadata from the file's tail; the last item is bytes re-read."""
    extra = 0
    if 12 <= size and len(tail) < 8:  # only with blocks under 4 bytes
        tail, extra = _read_range(uri, size - 8, 8), 8
    if size < 12 or tail[-4:] != _MAGIC:
        return None, {}, "not a Parquet file (no PAR1 magic at the end)", extra
    footer_len = struct.unpack("<I", tail[-8:-4])[0]
    if footer_len + 8 > len(tail):
        tail = _read_range(uri, size - footer_len - 8, footer_len + 8)
        extra += footer_len + 8
    try:
        meta = pq.read_metadata(pa.BufferReader(tail))
    except (pa.ArrowException, OSError, ValueError) as err:
        return None, {}, f"unreadable Parquet footer ({err})", extra
    kv = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
    return meta.num_rows, kv, None, extra


def _read_range(uri: str, start: int, length: int) -> bytes:
    if start < 0:
        return b""  # footer length larger than the file: _parse_footer reports it unreadable
    return files_mod.read_range(uri, start, length)


def scan_files(folder: str, rels: Sequence[str], *, workers: int | None = None,
               block_bytes: int = BLOCK_BYTES) -> dict[str, FileScan]:
    """Scan files in parallel threads (hashing and reads release the GIL)."""
    workers = workers or min(8, os.cpu_count() or 1)
    scan = lambda rel: scan_file(uri_mod.join(folder, rel), rel, block_bytes=block_bytes)
    if workers == 1 or len(rels) < 2:
        return {rel: scan(rel) for rel in rels}
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(rels, pool.map(scan, rels), strict=True))


# --- folder listing --------------------------------------------------------------------------
def listed_files(folder: str, subfolders: Iterable[str] = CHECKED_FOLDERS) -> list[str]:
    """Files under ``folder/<subfolder>``, relative to ``folder``, posix separators."""
    return sorted(f"{sub}/{rel}" for sub in subfolders
                  for rel in files_mod.list_files(uri_mod.join(folder, sub)))


# --- checks against the manifest -------------------------------------------------------------
def _read_bytes(uri: str) -> bytes | None:
    if not files_mod.exists(uri):
        return None
    return files_mod.read_bytes(uri)


def load_manifest(folder: str) -> tuple[bytes | None, Manifest | None, Mismatch | None]:
    """The manifest's bytes, the typed manifest, or the mismatch that says why there is none."""
    data = _read_bytes(uri_mod.join(folder, MANIFEST_NAME))
    if data is None:
        return None, None, Mismatch("manifest.missing", MANIFEST_NAME, note="no manifest.json "
                                    "in the version folder")
    try:
        return data, Manifest.from_bytes(data), None
    except ManifestError as err:
        return data, None, Mismatch("manifest.unreadable", MANIFEST_NAME, note=err.reason)


def check_scan(scan: FileScan, entry: FileEntry, source: str) -> list[Mismatch]:
    """The scan of one file against what ``source`` (manifest or catalog) lists for it."""
    if not scan.exists:
        return [Mismatch("file.missing", scan.path, note=f"listed in the {source}, absent from "
                         "the folder")]
    found = []
    for key, actual in (("sha256", scan.sha256), ("bytes", scan.bytes), ("rows", scan.rows)):
        listed = getattr(entry, key)
        if listed != actual:
            found.append(Mismatch(f"file.{key}", scan.path, listed, actual,
                                  f"{source} vs file"))
    if scan.error:
        found.append(Mismatch("file.parquet", scan.path, note=scan.error))
    return found


def check_footer(scan: FileScan, dataset: str | None, version_id: str | None) -> list[Mismatch]:
    if not scan.exists or scan.error:
        return []
    found = []
    for key, want in (("haina.dataset", dataset), ("haina.version", version_id)):
        if want is not None and scan.footer.get(key) != want:
            found.append(Mismatch(f"footer.{key}", scan.path, want, scan.footer.get(key)))
    return found


def check_stray(folder: str, expected: Iterable[str]) -> list[Mismatch]:
    known = set(expected)
    return [Mismatch("file.stray", rel, note="in the folder but in no manifest entry")
            for rel in listed_files(folder) if rel not in known]


def check_manifest_totals(manifest: Manifest) -> list[Mismatch]:
    data = manifest.data_files
    rows, size = sum(f.rows or 0 for f in data), sum(f.bytes or 0 for f in data)
    found = []
    written = manifest.rows.written if manifest.rows is not None else None
    if written is not None and written != rows:
        found.append(Mismatch("manifest.rows", MANIFEST_NAME, rows, written,
                              "rows.written vs the sum of its data files"))
    if manifest.bytes is not None and manifest.bytes != size:
        found.append(Mismatch("manifest.bytes", MANIFEST_NAME, size, manifest.bytes,
                              "bytes vs the sum of its data files"))
    return found


def check_manifest_lineage(manifest: Manifest) -> list[Mismatch]:
    sources = {s.sha256 for s in manifest.sources}
    found = []
    if manifest.files and not sources:
        found.append(Mismatch("lineage.sources", MANIFEST_NAME, note="the manifest lists files "
                              "but no sources"))
    for f in manifest.files:
        if f.source_sha256 not in sources:
            found.append(Mismatch("lineage.file_source", f.path, "a manifest source",
                                  f.source_sha256, "source_sha256 is not one of the "
                                  "manifest's sources"))
    return found


def check_lineage_file(folder: str) -> tuple[list[Mismatch], list[str]]:
    data = _read_bytes(uri_mod.join(folder, LINEAGE_NAME))
    if data is None:
        return [], [f"no {LINEAGE_NAME} in the folder (optional)"]
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError as err:
            return [Mismatch("lineage.jsonl", LINEAGE_NAME, note=f"line {number} is not "
                             f"JSON ({err})")], []
    return [], []


def _manifest_entries(manifest: Manifest | None) -> dict[str, FileEntry]:
    return {f.path: f for f in manifest.files} if manifest is not None else {}


def _folder_checks(report: VerifyReport, folder: str, entries: Mapping[str, FileEntry],
                   manifest: Manifest | None, *, dataset: str | None,
                   version_id: str | None, workers: int | None, block_bytes: int,
                   source: str) -> dict[str, FileScan]:
    scans = scan_files(folder, sorted(entries), workers=workers, block_bytes=block_bytes)
    carried = manifest.carried_files if manifest is not None else {}
    for rel, scan in scans.items():
        report.mismatches += check_scan(scan, entries[rel], source)
        # a file carried over unchanged from an earlier version keeps that version's footer
        report.mismatches += check_footer(scan, dataset, None if rel in carried else version_id)
    report.mismatches += check_stray(folder, entries)
    if manifest is not None:
        report.mismatches += check_manifest_totals(manifest)
        report.mismatches += check_manifest_lineage(manifest)
    lineage_problems, notes = check_lineage_file(folder)
    report.mismatches += lineage_problems
    report.notes += notes
    _totals(report, scans.values(), entries)
    return scans


def _totals(report: VerifyReport, scans: Iterable[FileScan],
            entries: Mapping[str, FileEntry]) -> None:
    for scan in scans:
        report.files += scan.exists
        report.bytes_read += scan.bytes_read
        report.bytes += scan.bytes
        if not entries[scan.path].is_quarantine:
            report.rows += scan.rows or 0


def verify_folder(folder: str, *, manifest_sha256: str | None = None,
                  workers: int | None = None, block_bytes: int = BLOCK_BYTES) -> VerifyReport:
    """Manifest-only verification of a version folder, wherever it was copied."""
    started = time.monotonic()
    report = VerifyReport(target=folder, folder=folder, mode="folder")
    _require_folder(folder)
    data, manifest, problem = load_manifest(folder)
    if problem is not None or data is None or manifest is None:
        report.mismatches.append(problem or Mismatch("manifest.missing", MANIFEST_NAME))
        return report
    if manifest_sha256 is not None:
        report.mismatches += _manifest_hash(data, manifest_sha256, "--manifest-sha256")
    else:
        report.notes.append("manifest-only: without the catalog the manifest's own hash, the "
                            "catalog's file records, the run's sources and releases were not "
                            "checked (pass the trusted manifest sha256 to check the manifest)")
    version, dataset = manifest.version.id, manifest.dataset.name
    _folder_checks(report, folder, _manifest_entries(manifest), manifest, dataset=dataset,
                   version_id=version, workers=workers, block_bytes=block_bytes,
                   source="manifest")
    report.target = f"{dataset}@{version} (folder {folder})"
    report.seconds = time.monotonic() - started
    return report


def _require_folder(folder: str) -> None:
    if uri_mod.is_local(folder) and not os.path.isdir(uri_mod.local_path(folder)):
        raise VerifyError("no such version folder", where=folder,
                          fix="pass the folder that holds manifest.json (a version folder)")


def _manifest_hash(data: bytes, expected: str | None, where: str) -> list[Mismatch]:
    actual = hashlib.sha256(data).hexdigest()
    if actual == expected:
        return []
    return [Mismatch("manifest.sha256", MANIFEST_NAME, expected, actual, f"{where} vs file")]


# --- checks against the catalog --------------------------------------------------------------
def verify_version(catalog: Catalog, dataset: str, ref: str = "latest", *,
                   workers: int | None = None, block_bytes: int = BLOCK_BYTES) -> VerifyReport:
    """Full verification of ``dataset@ref`` against its manifest and the catalog."""
    started = time.monotonic()
    # a yanked or deprecated version is verified as any other: that is how one checks it
    version = lifecycle.resolve(catalog, dataset, ref, allow_yanked=True, draft_fallback=True,
                                warn=lambda _message: None)
    folder = version.path
    report = VerifyReport(target=f"{dataset}@{version.version_id}", folder=folder, mode="catalog")
    _require_folder(folder)
    data, manifest, problem = load_manifest(folder)
    if problem is not None or data is None:
        report.mismatches.append(problem or Mismatch("manifest.missing", MANIFEST_NAME))
    else:
        report.mismatches += _manifest_hash(data, version.manifest_sha256, "catalog version row")
        report.mismatches += _release_hashes(catalog, version.version_id, data)
    records = {f.path: f for f in catalog.files(version.version_id)}
    entries = _manifest_entries(manifest) or {p: FileEntry.of(f) for p, f in records.items()}
    scans = _folder_checks(report, folder, entries, manifest, dataset=dataset,
                           version_id=version.version_id, workers=workers,
                           block_bytes=block_bytes,
                           source="manifest" if manifest is not None else "catalog")
    report.mismatches = _dedupe(report.mismatches
                                + _catalog_checks(catalog, version, records, manifest, scans))
    report.seconds = time.monotonic() - started
    return report


def _catalog_checks(catalog: Catalog, version: Any, records: Mapping[str, FileRecord],
                    manifest: Manifest | None,
                    scans: Mapping[str, FileScan]) -> list[Mismatch]:
    found = []
    for rel, record in sorted(records.items()):
        scan = scans.get(rel) or scan_file(uri_mod.join(version.path, rel), rel)
        found += [m for m in check_scan(scan, FileEntry.of(record), "catalog")
                  if m.check != "file.parquet"]  # already reported from the manifest's side
    found += _manifest_vs_catalog(records, manifest)
    found += _version_totals(version, records)
    found += _run_lineage(catalog, version, records, manifest)
    return found


def _dedupe(items: list[Mismatch]) -> list[Mismatch]:
    seen, out = set(), []
    for m in items:
        key = (m.check, m.path)
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


_COMPARED = ("sha256", "rows", "bytes", "partition", "source_sha256")


def _manifest_vs_catalog(records: Mapping[str, FileRecord],
                         manifest: Manifest | None) -> list[Mismatch]:
    if manifest is None:
        return []
    entries = _manifest_entries(manifest)
    found = [Mismatch("catalog.file_missing", p, note="in the manifest, not in the catalog's "
                      "files table") for p in sorted(set(entries) - set(records))]
    found += [Mismatch("manifest.file_missing", p, note="in the catalog's files table, not in "
                       "the manifest") for p in sorted(set(records) - set(entries))]
    for path in sorted(set(entries) & set(records)):
        want = FileEntry.of(records[path])
        found += [Mismatch(f"catalog.{key}", path, getattr(want, key),
                           getattr(entries[path], key), "catalog vs manifest")
                  for key in _COMPARED if getattr(entries[path], key) != getattr(want, key)]
    return found


def _version_totals(version: Any, records: Mapping[str, FileRecord]) -> list[Mismatch]:
    data = [f for f in records.values() if f.partition != "quarantine"]
    totals = {"rows": sum(f.rows for f in data), "bytes": sum(f.bytes for f in data),
              "file_count": len(data)}
    return [Mismatch(f"catalog.version_{key}", f"versions/{version.version_id}", value,
                     getattr(version, key), "sum of the catalog's files vs the version row")
            for key, value in totals.items() if getattr(version, key) != value]


def _run_lineage(catalog: Catalog, version: Any, records: Mapping[str, FileRecord],
                 manifest: Manifest | None) -> list[Mismatch]:
    """Every file traced to a source, every source to the run that read it.

    An incremental version carries files of earlier versions: their sources were read by earlier
    runs, which the manifest names per source (``run_id``); those runs' records are the proof.
    """
    own = catalog.sources(version.run_id)
    where = f"runs/{version.run_id}"
    if not own:
        return [Mismatch("lineage.run_sources", where, note="the run that made the version has "
                         "no sources recorded")]
    listed = manifest.sources if manifest is not None else ()
    runs = {version.run_id} | {s.run_id for s in listed if s.run_id}
    recorded = {(s.run_id, s.source_index, s.uri): s
                for run in sorted(runs) for s in catalog.sources(run)}
    known = {s.sha256 for s in recorded.values()}
    found = [Mismatch("lineage.file_source", path, "a source of the run", f.source_sha256,
                      "source_sha256 is not among the sources its runs recorded")
             for path, f in sorted(records.items()) if f.source_sha256 not in known]
    if manifest is not None:
        claimed = sorted((s.uri, s.sha256, s.size) for s in listed)
        proven = sorted((s.uri, s.sha256, s.size) for s in (
            recorded.get((entry.run_id or version.run_id, entry.index, entry.uri))
            for entry in listed) if s is not None)
        missing = {(s.uri, s.sha256, s.size) for s in own} - set(claimed)
        if claimed != proven or missing:
            found.append(Mismatch("lineage.manifest_sources", MANIFEST_NAME,
                                  _short_sources(sorted(set(proven) | missing)),
                                  _short_sources(claimed),
                                  "the manifest's sources vs the runs' sources in the catalog"))
    return found


def _short_sources(items: Sequence[tuple]) -> str:
    return ", ".join(f"{uri} ({(sha or '')[:12]})" for uri, sha, _size in items) or "none"


def _release_hashes(catalog: Catalog, version_id: str, data: bytes) -> list[Mismatch]:
    """The manifest hash recorded at release, when the version was released."""
    release = catalog.release_of(version_id)
    if release is None or not release.manifest_sha256:
        return []
    return _manifest_hash(data, release.manifest_sha256, "releases table")


def first_line(report: VerifyReport) -> str:
    """One sentence naming the first mismatch, for the CLI and logs."""
    first = report.first
    return "all checks passed" if first is None else f"first mismatch: {first}"

