"""Which Beam filesystem serves a URI, and what to install when none does.

Beam picks a filesystem by URI scheme among those whose modules imported; a scheme whose
package is missing only fails deep inside ``FileSystems`` with a generic ``ValueError``. Sources
and warehouses are checked here first, so the message names the recipe key and the extra.
"""
from __future__ import annotations

from apache_beam.io.filesystem import FileSystem
from apache_beam.io.filesystems import FileSystems

from catalog.exceptions import MissingDependencyError, UnsupportedURIError

#: URI scheme -> the pip requirement that brings Beam's filesystem for it
FILESYSTEM_EXTRAS = {
    "gs": "apache-beam[gcp]",
    "s3": "apache-beam[aws]",
    "azfs": "apache-beam[azure]",
    "hdfs": "apache-beam[hadoop]",
}


def installed_schemes() -> set[str]:
    """Schemes of the Beam filesystems this process can use (local paths have none)."""
    return {fs.scheme() for fs in FileSystem.get_all_subclasses()} - {None}


def require_filesystem(uri: str, where: str) -> None:
    """Raise a named error when no installed Beam filesystem reads ``uri``.

    ``where`` names the setting the URI came from, e.g. ``recipe.yaml: sources[0].uri``.
    """
    scheme = FileSystems.get_scheme(uri)
    if scheme is None or scheme in installed_schemes():
        return
    extra = FILESYSTEM_EXTRAS.get(scheme)
    if extra is not None:
        raise MissingDependencyError(
            f"{uri!r} needs Beam's {scheme}:// filesystem, which is not installed.",
            where=where, fix=f"pip install '{extra}' (or copy the files to a local folder)")
    supported = ", ".join(f"{s}://" for s in sorted(FILESYSTEM_EXTRAS))
    raise UnsupportedURIError(
        f"{uri!r}: no filesystem reads {scheme}:// URIs (Beam reads local paths and {supported}).",
        where=where, fix="copy the files to a local folder, or to one of those stores, and point "
                         "the URI there")
