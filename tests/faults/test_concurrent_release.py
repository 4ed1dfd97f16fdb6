"""Two publishers release ``NAME@latest-draft`` at once: one release, one clear exit 4.

Before, on SQLite the second publisher often planned after the first had committed, found the
older draft as ``latest-draft`` and released it too, under a newer number. ``latest-draft`` now
names the newest draft only while no newer version is released, checked again in the release
transaction. Real processes, both backends.
"""
from __future__ import annotations

import subprocess

import pytest

from catalog.releases import lifecycle as rel
from catalog.store import open_catalog
from pipelines.cli.app import main
from tests.catalog.releases.release_support import DATASET
from tests.faults.conftest import HAINA

pytestmark = pytest.mark.slow


def _args(url: str, root) -> list[str]:
    return ["--catalog", url, "--warehouse", str(root), "release", f"{DATASET}@latest-draft"]


def _releases(url: str) -> list[tuple[str, str]]:
    catalog = open_catalog(url)
    try:
        states = {v.version_id: v.state for v in catalog.versions(DATASET)}
        assert states["v1"] == "draft", states
        return [(r.version_id, r.semver) for r in rel.releases(catalog, DATASET)]
    finally:
        catalog.close()


def test_two_concurrent_latest_draft_releases_give_one_release_and_one_exit_4(catalog_url,
                                                                            two_drafts):
    procs = [subprocess.Popen([*HAINA, *_args(catalog_url, two_drafts)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 4], results
    (_, _, err), = [r for r in results if r[0] == 4]
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3, err  # one message (rich may wrap it)
    flat = " ".join(err.split())
    assert any(reason in flat for reason in (
        "v2 is already released", "is older than version v2 (1.0.0)")), flat
    assert _releases(catalog_url) == [("v2", "1.0.0")]


def test_a_second_latest_draft_release_does_not_release_the_older_draft(catalog_url,
                                                                        two_drafts, capsys):
    assert main(_args(catalog_url, two_drafts)) == 0
    capsys.readouterr()
    assert main(_args(catalog_url, two_drafts)) == 4
    flat = " ".join(capsys.readouterr().err.split())
    assert ("the latest draft v1 is older than version v2 (1.0.0), which is already released"
            in flat), flat
    assert f"haina release {DATASET}@v1" in flat  # the way to do it on purpose
    assert _releases(catalog_url) == [("v2", "1.0.0")]


def test_the_release_transaction_rechecks_that_no_newer_version_was_released(catalog_url,
                                                                             two_drafts):
    """The compare-and-set itself: a plan made before the newer release cannot commit."""
    catalog = open_catalog(catalog_url)
    try:
        v1, v2 = catalog.version(DATASET, "v1"), catalog.version(DATASET, "v2")
        rel.record_release(catalog, v2, "1.0.0")
        with pytest.raises(rel.ReleaseConflictError, match="older than version v2"):
            rel.record_release(catalog, v1, "1.1.0", previous="1.0.0", newest_only=True)
        assert catalog.version(DATASET, "v1").state == "draft"  # rolled back
        # by its id, on purpose, the older draft can still be released
        rel.record_release(catalog, v1, "1.1.0", previous="1.0.0")
    finally:
        catalog.close()
