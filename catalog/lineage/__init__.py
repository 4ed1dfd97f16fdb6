"""Lineage of versions: OpenLineage events, W3C PROV."""
