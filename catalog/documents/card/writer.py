"""The dataset card of a version: what it holds, where it came from, and whether to trust it.

Three steps, each testable alone:

1. :func:`catalog.documents.card.stats.scan` reads the version's Parquet files once into a
   :class:`~catalog.documents.card.stats.CardStats`;
2. :func:`catalog.documents.card.markdown.render_markdown` and
   :func:`catalog.documents.card.html.render_html` turn the manifest and the stats into text:
   pure functions, saying the same rows (:mod:`catalog.documents.card.text`);
3. :func:`write_card` (here) does the I/O around them for a catalog version.

The card carries every attribution the sources' licences require (the manifest's
``extra.attributions``), the units and CF attributes of every column, and the validation result.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from catalog.documents.card import html as card_html
from catalog.documents.card import markdown as card_markdown
from catalog.documents.card.stats import scan
from catalog.documents.exceptions import CardError
from catalog.documents.manifest_view import load_manifest
from catalog.documents.output import ensure_dir, write_text
from catalog.storage import uri as uri_mod

MD_NAME = "CARD.md"
HTML_NAME = "card.html"


def write_card(catalog: Any, version: Any, directory: str | None = None, *,
               release: str | None = None,
               changelog: Sequence[str] | None = None) -> tuple[str, str]:
    """Write ``CARD.md`` and ``card.html`` for ``version`` (a VersionRecord) into ``directory``.

    ``directory`` defaults to the version folder; ``release`` is the semver of a release (None
    for a draft); ``changelog`` the changes since the previous release, from the caller.
    ``catalog`` is accepted for symmetry with the other writers and future lookups.
    """
    manifest = load_manifest(version)
    stats = scan(manifest, version.path)
    directory = directory or version.path
    ensure_dir(directory)
    md = card_markdown.render_markdown(manifest, stats, release=release, changelog=changelog)
    html = card_html.render_html(manifest, stats, release=release, changelog=changelog)
    return (write_text(md, uri_mod.join(directory, MD_NAME), CardError),
            write_text(html, uri_mod.join(directory, HTML_NAME), CardError))
