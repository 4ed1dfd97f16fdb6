"""The child process of the release race in test_release.py (no tests here).

Kept apart from the test modules so that a spawned child imports only the catalog, not pyarrow,
Beam or pytest: the race starts seconds sooner.
"""
from __future__ import annotations

from catalog.releases import lifecycle as rel
from catalog.store import open_catalog

DATASET = "buoys"
#: per round, what each racer tries: (version id, semver, previous release). Round 0: both
#: release one draft with one semver; round 1: two drafts, one semver; round 2: one draft,
#: two semvers. Each round must have exactly one winner.
ROUNDS = {
    "a": [("v1", "1.0.0", None), ("v2", "2.0.0", "1.0.0"), ("v4", "3.0.0", "2.0.0")],
    "b": [("v1", "1.0.0", None), ("v3", "2.0.0", "1.0.0"), ("v4", "3.1.0", "2.0.0")],
}


def racer(url, name, barrier, results):
    catalog = open_catalog(url)
    catalog.actor = name
    for round_no, (version_id, semver, previous) in enumerate(ROUNDS[name]):
        version = catalog.version(DATASET, version_id)
        barrier.wait(timeout=60)
        try:
            rel.record_release(catalog, version, semver, previous=previous)
            results.put((round_no, name, "won"))
        except rel.ReleaseConflictError as err:
            results.put((round_no, name, f"conflict: {err}"))
        except Exception as err:  # noqa: BLE001 - report anything else to the test
            results.put((round_no, name, f"error: {err!r}"))
        barrier.wait(timeout=60)  # the next round starts from a settled state
    catalog.close()
