"""What every document reads from a version's manifest, said once: the data files, the licence's
page, the attributions the sources require, the version's label.

The card and the Croissant description must agree on these (a licence linked in one and not the
other, an attribution missing from one, would be a defect a reader cannot see), so both read
them here.
"""
from __future__ import annotations

from typing import Any

from catalog.storage.manifest import FileEntry, Manifest

#: licences that are not SPDX identifiers but name a known licence page (LicenseRef-...)
LICENCE_PAGES = {
    "LicenseRef-Copernicus-Marine":
        "https://marine.copernicus.eu/user-corner/service-commitments-and-licence",
    "LicenseRef-US-Government-Public-Domain": "https://www.usa.gov/government-works",
}


def licence_url(licence: str | None) -> str | None:
    """The URL of an SPDX identifier's licence page (or of a known ``LicenseRef-``)."""
    if not licence:
        return None
    if licence in LICENCE_PAGES:
        return LICENCE_PAGES[licence]
    if licence.startswith("LicenseRef-"):
        return None  # a private licence reference has no public page we know of
    return f"https://spdx.org/licenses/{licence}.html"


def attributions(manifest: Manifest) -> list[str]:
    """Attribution texts the sources' licences require, the dataset's own first, no repeats."""
    found: list[str] = []
    for text in [manifest.dataset.attribution, *manifest.attributions]:
        if text and text not in found:
            found.append(text)
    return found


def data_files(manifest: Manifest) -> tuple[FileEntry, ...]:
    """The manifest's data files (quarantined rows are not part of the dataset)."""
    return manifest.data_files


def version_label(manifest: Manifest, release: str | None) -> str:
    """Semver of a release; a draft is a semver pre-release naming its version id."""
    if release:
        return release
    return f"0.0.0-draft.{manifest.version.id}"


def load_manifest(version: Any) -> Manifest:
    """The manifest of a catalog version, checked against the catalog's checksum."""
    return Manifest.read(version.path, expected_sha256=version.manifest_sha256)
