"""A release killed after its catalog commit: the next ``verify`` or ``release`` writes its card
and Croissant file. The kill is SIGKILL at the named crash point ``after-release-commit``
(catalog.faults), in a child process; both backends."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal

import pytest
from examples.qingdao_demo import generate

from catalog.audit import log as audit
from catalog.releases import lifecycle as rel
from catalog.store import open_catalog
from pipelines.cli.app import main
from tests.faults.conftest import NAME, cli

pytestmark = pytest.mark.slow
DOCUMENTS = ("CARD.md", "card.html", "croissant.json")


@pytest.fixture
def draft(tmp_warehouse, catalog_url, one_day_recipe) -> str:
    """A draft made by a real run; its version id."""
    assert main(["--catalog", catalog_url, "run", str(one_day_recipe)]) == 0
    catalog = open_catalog(catalog_url)
    try:
        return catalog.version(NAME, "latest").version_id
    finally:
        catalog.close()


def _killed_release(url: str, ref: str) -> None:
    """``haina release REF`` that dies by SIGKILL right after the release committed."""
    done = cli("--catalog", url, "release", ref, env={"HAINA_FAULT": "after-release-commit"})
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr)


def _main(capsys, url: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--catalog", url, *argv])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), err


def _state(url: str, version_id: str):
    catalog = open_catalog(url)
    try:
        return catalog.version(NAME, version_id), rel.release_of(catalog, version_id)
    finally:
        catalog.close()


def _assert_documents(version, semver: str, change: str) -> None:
    folder = version.path
    assert all(os.path.isfile(os.path.join(folder, name)) for name in DOCUMENTS)
    croissant = json.loads(open(os.path.join(folder, "croissant.json"), encoding="utf-8").read())
    assert croissant["version"] == semver
    card = open(os.path.join(folder, "CARD.md"), encoding="utf-8").read()
    assert f"Release {semver} (version {version.version_id}" in card
    assert f"- {change}" in card.split("## Changes since the previous release", 1)[1]
    assert not [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_a_release_killed_after_its_commit_is_completed_by_verify(tmp_warehouse, catalog_url,
                                                                  draft, capsys):
    _killed_release(catalog_url, f"{NAME}@latest-draft")
    version, record = _state(catalog_url, draft)
    assert version.state == "released" and record.semver == "1.0.0"
    assert record.documented_at is None
    assert not any(os.path.exists(os.path.join(version.path, n)) for n in DOCUMENTS)

    code, out, err = _main(capsys, catalog_url, "verify", f"{NAME}@1.0.0")
    assert code == 0, out + err
    assert f"completed release {NAME}@1.0.0" in out
    version, record = _state(catalog_url, draft)
    _assert_documents(version, "1.0.0", "first release")
    assert record.documented_at is not None

    code, out, err = _main(capsys, catalog_url, "verify", f"{NAME}@1.0.0")
    assert code == 0 and "completed release" not in out, out + err  # idempotent
    catalog = open_catalog(catalog_url)
    try:
        assert [e.target for e in audit.entries(catalog, action="release.documents")] == [
            f"{NAME}@1.0.0"]
    finally:
        catalog.close()
    code, out, err = _main(capsys, catalog_url, "audit", "verify")
    assert code == 0 and "audit log intact" in out, out + err


def test_the_next_release_completes_the_interrupted_one_first(tmp_warehouse, tmp_path,
                                                              catalog_url, draft,
                                                              one_day_recipe, capsys):
    _killed_release(catalog_url, f"{NAME}@latest-draft")
    generate(tmp_path / "sources", days=1, start=dt.date(2025, 7, 2))
    assert main(["--catalog", catalog_url, "run", str(one_day_recipe)]) == 0
    code, out, err = _main(capsys, catalog_url, "release", f"{NAME}@latest-draft")
    assert code == 0, out + err
    assert out.index(f"completed release {NAME}@1.0.0") < out.index(f"released {NAME}@1.1.0")
    version, _record = _state(catalog_url, draft)
    _assert_documents(version, "1.0.0", "first release")
