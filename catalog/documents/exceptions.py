"""Named errors of the documents (card, Croissant, validation report) of a version."""
from __future__ import annotations

from catalog.exceptions import CatalogError


class CardError(CatalogError):
    """A card could not be built: unreadable data files or an unusable manifest."""


class CroissantError(CatalogError):
    """A Croissant document cannot be built or written for a version."""
