"""The warehouse folder layout, publishing staged files, and garbage collection.

::

    <root>/catalog.db                                   SQLite catalog (local roots)
    <root>/_staging/<run_id>/                           a run's files while it writes
    <root>/_runs/<run_id>/                              validation report, run summary
    <root>/datasets/<dataset>/versions/<version_id>/    published files + manifest.json

The catalog is the truth: a version folder exists for readers only once its row is committed.
Publishing is therefore "move, then commit": a crash in between leaves a folder no row points
to, which :meth:`Warehouse.gc` removes.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile

from apache_beam.io.filesystems import FileSystems

from catalog.exceptions import (
    NotFoundError,
    PublishError,
    WarehouseError,
    WarehouseReadOnlyError,
)
from catalog.storage import files as files_mod
from catalog.storage import uri as uri_mod
from catalog.storage.filesystems import require_filesystem
from catalog.storage.manifest import MANIFEST_NAME
from catalog.store import Catalog


@dataclasses.dataclass(frozen=True)
class Warehouse:
    """Paths of a warehouse rooted at a local folder or any Beam FileSystems URI."""

    root: str

    @property
    def _base(self) -> str:
        """The root as an absolute local path (``file://`` URIs included), else the URI."""
        if uri_mod.is_local(self.root):
            return os.path.abspath(uri_mod.local_path(self.root))
        return uri_mod.join(self.root)

    def _join(self, *parts: str) -> str:
        return uri_mod.join(self._base, *parts)

    @property
    def catalog_url(self) -> str:
        if not uri_mod.is_local(self.root):
            raise WarehouseError(
                f"a warehouse at {self.root!r} cannot hold a SQLite catalog", where="warehouse",
                fix="set 'catalog:' in the recipe to a postgresql:// URL")
        return f"sqlite:///{self._join('catalog.db')}"

    def staging_dir(self, run_id: str) -> str:
        return self._join("_staging", run_id)

    def run_dir(self, run_id: str) -> str:
        return self._join("_runs", run_id)

    def dataset_dir(self, dataset: str) -> str:
        return self._join("datasets", dataset)

    def version_dir(self, dataset: str, version_id: str) -> str:
        return self._join("datasets", dataset, "versions", version_id)

    # --- checks ------------------------------------------------------------------------------
    def require_writable(self, refused: str) -> None:
        """Refuse at once when the warehouse cannot be written, before anything is changed.

        A local root is probed by creating (and removing) a file in it: that answers for
        read-only mounts, permissions and ACLs alike, as the run itself would meet them.
        ``refused`` says what did not happen, e.g. "nothing was run".
        """
        if not uri_mod.is_local(self.root):
            require_filesystem(self.root, "warehouse")
            return
        root = self._base
        try:
            os.makedirs(root, exist_ok=True)
            handle, probe = tempfile.mkstemp(prefix=".haina-write-probe-", dir=root)
            os.close(handle)
            os.remove(probe)
        except OSError as err:
            if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise WarehouseReadOnlyError(
                    f"warehouse {root} is read-only ({err.strerror}); {refused}.",
                    fix="remount it read-write or fix its permissions, or point --warehouse "
                        "(or $HAINA_WAREHOUSE) at a writable folder") from err
            raise WarehouseError(f"cannot write in the warehouse ({err.strerror}); {refused}.",
                                 where=root, fix="check the folder and its filesystem") from err

    # --- publishing --------------------------------------------------------------------------
    def publish(self, staging_data_dir: str, version_dir: str) -> None:
        """Move the staged files into ``version_dir`` (which must not exist yet)."""
        if uri_mod.is_local(staging_data_dir) and uri_mod.is_local(version_dir):
            _publish_local(staging_data_dir, version_dir)
        else:
            publish_per_file(staging_data_dir, version_dir)

    def link(self, source: str, target: str) -> None:
        """Make ``target`` the same file as ``source`` without copying its bytes where possible.

        A carried-over file of an earlier version becomes part of a new version: locally a hard
        link (same inode, no bytes copied, and each version folder stays self-contained);
        elsewhere, or across devices, the filesystem's copy.
        """
        if uri_mod.is_local(source) and uri_mod.is_local(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                os.link(source, target)
                return
            except OSError as err:
                if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                    raise
        FileSystems.copy([source], [target])

    # --- garbage collection ------------------------------------------------------------------
    def gc(self, catalog: Catalog) -> list[str]:
        """Remove staging folders of runs not running and version folders without a catalog row.

        Version folders of a dataset that has a running run are all kept: that run may be
        between publishing and committing (and another dataset's run does not hold its lock).
        Call gc after ``abandon_stale_runs`` so that dead runs do not shield their leftovers.
        """
        removed = self._stale_staging(catalog) + self._orphan_versions(catalog)
        for path in removed:
            _remove_tree(path)
        return removed

    def _stale_staging(self, catalog: Catalog) -> list[str]:
        return [self.staging_dir(run_id) for run_id in _children(self._join("_staging"))
                if not _is_running(catalog, run_id)]

    def _orphan_versions(self, catalog: Catalog) -> list[str]:
        known_datasets = {d.name for d in catalog.datasets()}
        orphans = []
        for dataset in _children(self._join("datasets")):
            known: set[str] = set()
            if dataset in known_datasets:
                if any(r.status == "running" for r in catalog.runs(dataset)):
                    continue
                known = {v.version_id for v in catalog.versions(dataset)}
            orphans += [self.version_dir(dataset, v)
                        for v in _children(self._join("datasets", dataset, "versions"))
                        if v not in known]
        return orphans


def _is_running(catalog: Catalog, run_id: str) -> bool:
    try:
        return catalog.run(run_id).status == "running"
    except NotFoundError:  # unknown run: nothing will ever commit this staging folder
        return False


# --- filesystem helpers ----------------------------------------------------------------------
def _publish_local(staging: str, version_dir: str) -> None:
    if not os.path.isdir(staging):
        raise PublishError("the staging folder does not exist", where=staging,
                           fix="write the run's files before publishing")
    if os.path.exists(version_dir):
        raise PublishError("the version folder already exists", where=version_dir,
                           fix="use a fresh version id (catalog.store.new_version_id())")
    os.makedirs(os.path.dirname(version_dir), exist_ok=True)
    try:
        os.rename(staging, version_dir)  # one rename: readers see all files or none
    except OSError as err:
        raise PublishError(f"could not move {staging} ({err})", where=version_dir,
                           fix="keep the staging folder and the versions on one filesystem "
                               "(both under the warehouse root)") from err


def _relative_files(folder: str) -> list[str]:
    """Files under ``folder`` (recursively), relative to it, posix separators."""
    return files_mod.list_files(folder)


def publish_per_file(staging: str, version_dir: str) -> None:
    """Publish on filesystems without directory renames (object stores): one rename per file.

    Not atomic, which is why a version is visible only once committed. The manifest (when
    staged) moves first, so a partial folder still says which run and version it belongs to.
    """
    files = _relative_files(staging)
    if not files:
        raise PublishError("the staging folder holds no files", where=staging,
                           fix="write the run's files before publishing")
    if _relative_files(version_dir):
        raise PublishError("the version folder already holds files", where=version_dir,
                           fix="use a fresh version id (catalog.store.new_version_id())")
    files.sort(key=lambda rel: rel != MANIFEST_NAME)
    src = [uri_mod.join(staging, rel) for rel in files]
    dst = [uri_mod.join(version_dir, rel) for rel in files]
    if uri_mod.is_local(version_dir):  # local paths need their folders; object stores have none
        for folder in sorted({os.path.dirname(p) for p in dst}):
            os.makedirs(folder, exist_ok=True)
    try:
        FileSystems.rename(src, dst)
    except OSError as err:
        raise PublishError(f"could not move staged files ({err})", where=version_dir,
                           fix="check permissions; re-run the recipe (gc removes the partial "
                               "folder)") from err


def _children(folder: str) -> list[str]:
    """Names of the immediate sub-folders of ``folder`` (none when it does not exist)."""
    if uri_mod.is_local(folder):
        if not os.path.isdir(folder):
            return []
        return sorted(e.name for e in os.scandir(folder) if e.is_dir())
    return sorted({rel.split("/", 1)[0] for rel in _relative_files(folder) if "/" in rel})


def _remove_tree(folder: str) -> None:
    try:
        if uri_mod.is_local(folder):
            shutil.rmtree(folder)
            return
        found = [uri_mod.join(folder, rel) for rel in _relative_files(folder)]
        if found:
            FileSystems.delete(found)
    except OSError as err:
        raise WarehouseError(f"could not remove ({err})", where=folder,
                             fix="check permissions, then run gc again") from err
