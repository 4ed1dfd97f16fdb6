"""Writing a document: whole or not at all, locally or to an object store."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from catalog.exceptions import CatalogError
from catalog.storage import uri as uri_mod


def write_whole(data: bytes, uri: str) -> None:
    """Write a file that readers see whole or not at all: locally a temporary file renamed over
    it, so a process killed while writing leaves the old file or none, never half of one (an
    interrupted release's documents are then missing, and the next release or verify writes
    them); object stores publish an object only when its upload completes."""
    if uri_mod.scheme(uri) is not None:
        with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(data)
        return
    tmp = f"{uri}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
        os.replace(tmp, uri)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def ensure_dir(directory: str) -> None:
    """Create a local folder (and its parents); object stores have no folders to create."""
    if uri_mod.scheme(directory) is None:  # a local folder
        os.makedirs(directory, exist_ok=True)


def write_text(text: str, uri: str, error: type[CatalogError]) -> str:
    """Write ``text`` as UTF-8 to ``uri``; a failure raises ``error`` naming the file and fix."""
    try:
        write_whole(text.encode("utf-8"), uri)
    except OSError as err:
        raise error(f"could not write ({err})", where=uri,
                    fix="check that the folder exists and is writable") from err
    return uri


def write_json(document: Mapping[str, Any], uri: str, error: type[CatalogError]) -> str:
    """Write ``document`` as indented JSON (keys in their order, non-ASCII kept)."""
    return write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", uri, error)
