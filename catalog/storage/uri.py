"""Paths and URIs of the warehouse and of sources: one way to join, split and classify them.

A location is either a local path (``/data/w``, ``relative/x.nc``), a ``file://`` URI, or a
remote URI with a scheme (``gs://bucket/w``, ``s3://bucket/w``). Only string work happens here:
no filesystem is imported or touched, so the CLI can classify paths before Beam has imported.

The one behaviour every join follows (today's four ``_join``s differed on it): **a part is a
path relative to the base, and the result stays under the base.** Parts are posix paths (the
form manifests and the catalog store); empty and ``.`` segments are dropped, a trailing slash
on the base is ignored, and a part that is absolute (``/etc/x``) or climbs out (``../x``) is an
:class:`UnsafePathError` instead of silently naming a file elsewhere (``os.path.join`` would
drop the base; a plain string concatenation would keep ``..``). Paths are stored relative to
the root they live under, so a copied or moved tree still means itself, and
``relative_to(base, join(base, rel)) == normalised rel`` always holds.

POSIX only: local results use ``/``, as the warehouse's readers (pyarrow, Beam) expect.
"""
from __future__ import annotations

import re
import urllib.parse

from catalog.exceptions import CatalogError

#: ``scheme://`` at the start of a location (RFC 3986 scheme characters)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
FILE_SCHEME = "file"


class UnsafePathError(CatalogError, ValueError):
    """A relative path is absolute or leaves its root, or a location is not under a root."""


def scheme(uri: str) -> str | None:
    """``"gs"`` for ``gs://b/x``, ``"file"`` for ``file:///x``, None for a plain local path."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else None


def is_remote(uri: str) -> bool:
    """True for a URI that a store other than the local disk serves (any scheme but file)."""
    found = scheme(uri)
    return found is not None and found != FILE_SCHEME


def is_local(uri: str) -> bool:
    """True for a plain path or a ``file://`` URI."""
    return not is_remote(uri)


def local_path(uri: str) -> str:
    """The local path of a plain path (unchanged) or a ``file://`` URI (percent-decoded).

    ``file:///data/x.nc`` -> ``/data/x.nc``; ``file://localhost/data/x.nc`` -> ``/data/x.nc``.
    A remote URI has no local path: :class:`UnsafePathError` names it.
    """
    found = scheme(uri)
    if found is None:
        return uri
    parsed = urllib.parse.urlsplit(uri)
    if found != FILE_SCHEME or parsed.netloc not in ("", "localhost"):
        raise UnsafePathError(
            f"{uri!r} is not a local path", where="local_path",
            fix="pass a plain path or a file:/// URI; remote files are read through their "
                "filesystem (catalog.storage.files)")
    return urllib.parse.unquote(parsed.path)


def _segments(part: str, *, where: str) -> list[str]:
    """The segments of a relative posix path, refusing one that is absolute or climbs out."""
    if part.startswith("/") or scheme(part) is not None:
        raise UnsafePathError(
            f"{part!r} is not a relative path", where=where,
            fix="store and pass paths relative to their root, e.g. 'data/date=2024-01-01/x.parquet'")
    segments = [s for s in part.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise UnsafePathError(
            f"{part!r} climbs out of its root with '..'", where=where,
            fix="pass a path below the root (without '..' segments)")
    return segments


def _base(base: str) -> str:
    """``base`` without trailing slashes (but ``/`` and ``gs://bucket/`` keep their root)."""
    stripped = base.rstrip("/")
    if not stripped:
        return "/" if base else ""
    if stripped.endswith(":"):  # a bare "gs://" or "file:///" keeps its slashes
        return base
    return stripped


def join(base: str, *parts: str) -> str:
    """``base`` followed by the relative posix ``parts`` (see the module docstring).

    ``join("gs://b/w/", "datasets", "sst/versions")`` -> ``gs://b/w/datasets/sst/versions``;
    ``join("/w", "a//b/./c")`` -> ``/w/a/b/c``; ``join("/w", "/etc")`` raises.
    """
    segments = [s for part in parts for s in _segments(part, where=f"join({base!r}, ...)")]
    root = _base(base)
    if not segments:
        return root
    if not root:
        return "/".join(segments)
    separator = "" if root.endswith("/") else "/"
    return root + separator + "/".join(segments)


def relative_to(root: str, uri: str) -> str:
    """The posix path of ``uri`` relative to ``root`` (``""`` for the root itself).

    Both must be of one kind (two local paths, or URIs of one scheme and bucket); empty and
    ``.`` segments on either side are ignored. A location not under ``root`` raises
    :class:`UnsafePathError`, as does a ``..`` segment in either.
    """
    if scheme(root) != scheme(uri):
        raise UnsafePathError(
            f"{uri!r} and root {root!r} are not on one filesystem", where="relative_to",
            fix="pass a location under the root, written with the root's scheme")
    head_root, root_segments = _split(root)
    head_uri, uri_segments = _split(uri)
    if head_root != head_uri or uri_segments[:len(root_segments)] != root_segments:
        raise UnsafePathError(
            f"{uri!r} is not under {root!r}", where="relative_to",
            fix="pass a location under the root (paths are stored relative to their root)")
    return "/".join(uri_segments[len(root_segments):])


def _split(location: str) -> tuple[str, list[str]]:
    """``(head, segments)``: the scheme and bucket (``gs://b``), ``/`` or ``""``, then the path."""
    match = _SCHEME.match(location)
    if match:
        rest = location[match.end():]
        bucket, _, path = rest.partition("/")
        head = location[:match.end()] + bucket
    else:
        head, path = ("/" if location.startswith("/") else ""), location
    where = f"relative_to({location!r})"
    return head, _segments(path.lstrip("/"), where=where) if path else []
