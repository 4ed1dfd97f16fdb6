"""The release lifecycle on SQLite and PostgreSQL: transitions, resolve, concurrency, immutability."""
from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path

import pytest

from catalog.exceptions import VersionNotFoundError
from catalog.releases import lifecycle as rel
from catalog.storage.warehouse import Warehouse
from catalog.store import open_catalog
from tests.catalog.releases.release_racer import ROUNDS, racer
from tests.catalog.releases.release_support import DATASET, day_table, fake_version, make_version


@pytest.fixture
def cat(catalog_url):
    catalog = open_catalog(catalog_url)
    catalog.actor = "alice"
    yield catalog
    catalog.close()


def _release(cat, version_id: str, semver: str, previous: str | None = None):
    return rel.record_release(cat, cat.version(DATASET, version_id), semver, previous=previous)


# --- lifecycle ---------------------------------------------------------------------------------
def test_release_records_state_release_row_transition_and_audit_event(cat):
    v1 = fake_version(cat, "v1")
    events = []
    cat.listeners.append(lambda conn, action, target, details, actor:
                         events.append((action, target, details["from_state"],
                                        details["to_state"], actor)))
    record = rel.record_release(cat, v1, "1.0.0", notes="first")
    assert cat.version(DATASET, "v1").state == "released"
    assert rel.releases(cat, DATASET) == [record]
    assert (record.actor, record.manifest_sha256, record.notes) == ("alice", "m" * 64, "first")
    [move] = rel.transitions(cat, DATASET)
    assert (move.version_id, move.from_state, move.to_state, move.semver, move.actor) == (
        "v1", "draft", "released", "1.0.0", "alice")
    assert events == [("version.release", f"{DATASET}@1.0.0", "draft", "released", "alice")]


def test_deprecate_undeprecate_yank_and_their_rules(cat):
    fake_version(cat, "v1")
    with pytest.raises(rel.TransitionError, match="cannot deprecate a version that is draft"):
        rel.deprecate(cat, DATASET, "v1", "old")
    with pytest.raises(rel.TransitionError, match="cannot yank a version that is draft"):
        rel.yank(cat, DATASET, "v1", "bad")
    _release(cat, "v1", "1.0.0")
    assert rel.deprecate(cat, DATASET, "1.0.0", "superseded by 1.1.0") == "deprecated"
    assert rel.undeprecate(cat, DATASET, "1.0.0", "deprecated by mistake") == "released"
    assert rel.deprecate(cat, DATASET, "1.0.0", "superseded") == "deprecated"
    for reason in (None, "", "   "):
        with pytest.raises(rel.TransitionError, match="yank needs a reason"):
            rel.yank(cat, DATASET, "1.0.0", reason)
    assert cat.version(DATASET, "v1").state == "deprecated"
    assert rel.yank(cat, DATASET, "1.0.0", "salinity offset") == "yanked"
    with pytest.raises(rel.TransitionError, match="a yank is final"):
        rel.undeprecate(cat, DATASET, "v1")
    moves = [(m.from_state, m.to_state, m.semver, m.reason) for m in rel.transitions(cat, DATASET)]
    assert moves == [("draft", "released", "1.0.0", None),
                     ("released", "deprecated", "1.0.0", "superseded by 1.1.0"),
                     ("deprecated", "released", "1.0.0", "deprecated by mistake"),
                     ("released", "deprecated", "1.0.0", "superseded"),
                     ("deprecated", "yanked", "1.0.0", "salinity offset")]


def test_a_failing_listener_rolls_the_transition_back(cat):
    fake_version(cat, "v1")

    def refuse(conn, action, *_):
        raise RuntimeError(f"audit log unavailable for {action}")
    cat.listeners.append(refuse)
    with pytest.raises(RuntimeError, match="version.release"):
        _release(cat, "v1", "1.0.0")
    cat.listeners.clear()
    assert cat.version(DATASET, "v1").state == "draft"
    assert rel.releases(cat, DATASET) == [] and rel.transitions(cat, DATASET) == []


def test_release_twice_and_semver_taken_are_conflicts(cat):
    fake_version(cat, "v1")
    fake_version(cat, "v2")
    _release(cat, "v1", "1.0.0")
    with pytest.raises(rel.ReleaseConflictError, match="already released"):
        _release(cat, "v1", "2.0.0", previous="1.0.0")
    with pytest.raises(rel.ReleaseConflictError, match="semver 1.0.0 is already taken by version v1"):
        _release(cat, "v2", "1.0.0", previous="1.0.0")
    with pytest.raises(rel.ReleaseConflictError, match="latest release is now 1.0.0, not None"):
        _release(cat, "v2", "1.5.0", previous=None)  # planned before 1.0.0 existed
    assert cat.version(DATASET, "v2").state == "draft"


# --- resolve -----------------------------------------------------------------------------------
def test_resolve_refs(cat):
    for vid in ("v1", "v2", "v3", "v4", "v5"):
        fake_version(cat, vid)
    with pytest.raises(VersionNotFoundError, match="no released version"):
        rel.resolve(cat, DATASET, "latest")
    said = []
    assert rel.resolve(cat, DATASET, "latest", draft_fallback=True, warn=said.append
                       ).version_id == "v5"
    assert said == [f"{DATASET} has no released version; using the latest draft v5"]
    _release(cat, "v1", "1.9.0")
    _release(cat, "v2", "1.10.0", previous="1.9.0")  # numerically after 1.9.0
    assert rel.resolve(cat, DATASET, "latest").version_id == "v2"
    assert rel.resolve(cat, DATASET, "1.9.0").version_id == "v1"
    assert rel.resolve(cat, DATASET, "v1.9.0").version_id == "v1"
    assert rel.resolve(cat, DATASET, "v3").version_id == "v3"
    assert rel.resolve(cat, DATASET, "latest-draft").version_id == "v5"
    with pytest.raises(VersionNotFoundError, match=r"no release 2.0.0 \(releases: 1.9.0, 1.10.0\)"):
        rel.resolve(cat, DATASET, "2.0.0")
    with pytest.raises(VersionNotFoundError, match="has no version 'v9'"):
        rel.resolve(cat, DATASET, "v9")

    rel.deprecate(cat, DATASET, "1.10.0", "wrong calibration")
    assert rel.resolve(cat, DATASET, "latest").version_id == "v1"  # released wins over deprecated
    messages = []
    got = rel.resolve(cat, DATASET, "1.10.0", warn=messages.append)
    assert got.state == "deprecated"
    assert messages == [f"{DATASET}@v2 (1.10.0) is deprecated: wrong calibration"]
    with pytest.warns(rel.DeprecatedVersionWarning, match="wrong calibration"):
        rel.resolve(cat, DATASET, "v2")

    rel.yank(cat, DATASET, "1.9.0", "duplicate rows")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert rel.resolve(cat, DATASET, "latest").version_id == "v2"  # only deprecated left
    with pytest.raises(rel.YankedVersionError, match=r"v1 \(1.9.0\) was yanked: duplicate rows"):
        rel.resolve(cat, DATASET, "1.9.0")
    assert rel.resolve(cat, DATASET, "1.9.0", allow_yanked=True).state == "yanked"


# --- concurrency: real processes ---------------------------------------------------------------
def test_concurrent_releases_of_one_draft_or_one_semver_have_one_winner(catalog_url):
    catalog = open_catalog(catalog_url)
    for vid in ("v1", "v2", "v3", "v4"):
        fake_version(catalog, vid)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=racer, args=(catalog_url, name, barrier, results))
             for name in ROUNDS]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=120) for _ in range(2 * len(ROUNDS["a"]))]
    finally:
        for p in procs:
            p.join(timeout=60)
    for round_no in range(len(ROUNDS["a"])):
        got = sorted(o for r, _, o in outcomes if r == round_no)
        assert got[0].startswith("conflict: ") and got[1] == "won", outcomes
    # round 1 (two drafts, one semver): the loser learns it from whichever check sees the
    # winner's release first -- the semver taken, or the latest release moved since planning
    (lost,) = [o for r, _, o in outcomes if r == 1 and o.startswith("conflict")]
    assert ("already taken by version" in lost or "released by another process" in lost
            or "the latest release is now 2.0.0, not 1.0.0" in lost), lost
    assert all(p.exitcode == 0 for p in procs)

    released = rel.releases(catalog, DATASET)
    assert [r.semver for r in released][:2] == ["1.0.0", "2.0.0"] and len(released) == 3
    assert len({r.version_id for r in released}) == 3
    assert len(rel.transitions(catalog, DATASET)) == 3
    states = {v.version_id: v.state for v in catalog.versions(DATASET)}
    assert sorted(states.values()) == ["draft", "released", "released", "released"]
    catalog.close()


# --- immutability ------------------------------------------------------------------------------
def test_gc_keeps_released_deprecated_and_yanked_versions(tmp_path):
    wh = Warehouse(str(tmp_path))
    cat = open_catalog(wh.catalog_url)
    for vid in ("v1", "v2", "v3"):
        make_version(cat, tmp_path, vid, {"date=2025-07-01": day_table(1)})
    rel.record_release(cat, cat.version(DATASET, "v1"), "1.0.0")
    rel.record_release(cat, cat.version(DATASET, "v2"), "1.0.1", previous="1.0.0")
    rel.record_release(cat, cat.version(DATASET, "v3"), "1.0.2", previous="1.0.1")
    rel.deprecate(cat, DATASET, "1.0.1", "old")
    rel.yank(cat, DATASET, "1.0.2", "bad")
    orphan = Path(wh.version_dir(DATASET, "v-orphan"))
    (orphan / "data").mkdir(parents=True)
    assert wh.gc(cat) == [str(orphan)]
    for vid in ("v1", "v2", "v3"):
        version = cat.version(DATASET, vid)
        assert Path(version.path).is_dir()
        assert rel.check_unchanged(cat, version) is None
    cat.close()


def test_check_unchanged_names_the_first_difference(tmp_path):
    cat = open_catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    version = make_version(cat, tmp_path, "v1", {"date=2025-07-01": day_table(1),
                                                 "date=2025-07-02": day_table(2)})
    files = cat.files("v1")
    second = Path(version.path) / files[1].path
    second.write_bytes(second.read_bytes()[:-1] + b"X")
    got = rel.check_unchanged(cat, version)
    assert (got.path, got.expected_sha256) == (files[1].path, files[1].sha256)
    assert got.actual_sha256 not in (None, files[1].sha256)
    (Path(version.path) / files[0].path).unlink()
    assert str(rel.check_unchanged(cat, version)).startswith(f"{files[0].path}: missing")
    (Path(version.path) / "manifest.json").write_text("{}")
    assert rel.check_unchanged(cat, version).path == "manifest.json"

    make_version(cat, tmp_path, "v2", {"date=2025-07-01": day_table(1)})
    (Path(cat.version(DATASET, "v2").path) / cat.files("v2")[0].path).write_bytes(b"tampered")
    with pytest.raises(rel.ReleaseError, match="changed after it was committed"):
        rel.release(cat, DATASET, "v2")
    assert cat.version(DATASET, "v2").state == "draft"
    cat.close()
