"""Source files hashed while the CLI imports Beam (pipelines.prehash) give run's fingerprints."""
from __future__ import annotations

import hashlib
import os

import pytest

from pipelines import prehash
from pipelines.driver import fingerprint


@pytest.fixture(autouse=True)
def _clean():
    prehash.clear()
    yield
    prehash.clear()


def test_a_hashed_file_is_taken_once_and_equals_a_fresh_fingerprint(tmp_path):
    path = tmp_path / "a.nc"
    path.write_bytes(os.urandom(3 * 2**20 + 17))
    assert prehash.start([str(path)]) == 1
    expected = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size)
    assert prehash.take(str(path)) == expected
    assert prehash.take(str(path)) is None  # taken: the next run hashes again
    assert fingerprint(str(path)) == expected


def test_a_file_changed_after_hashing_is_hashed_again(tmp_path):
    path = tmp_path / "a.nc"
    path.write_bytes(b"first")
    prehash.start([str(path)])
    prehash._PENDING[str(path)].result()  # hashed
    path.write_bytes(b"other")  # same size: only the mtime/inode tell
    os.utime(path, ns=(1, 1))
    assert prehash.take(str(path)) is None
    assert prehash.start([str(path)]) == 1
    assert fingerprint(str(path)) == (hashlib.sha256(b"other").hexdigest(), 5)


def test_a_missing_file_is_left_to_the_run_to_report(tmp_path):
    path = tmp_path / "gone.nc"
    path.write_bytes(b"x")
    prehash.start([str(path)])
    prehash._PENDING[str(path)].exception()  # wait for the thread either way
    path.unlink()
    assert prehash.take(str(path)) is None


def test_local_sources_expand_local_globs_only(tmp_path):
    for name in ("a.nc", "b.nc", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("""\
name: prehash-test
title: t
description: d
licence: CC0-1.0
owner: {name: tests}
sources:
  - kind: netcdf_grid
    uri: ["*.nc", "gs://bucket/remote.nc"]
    variables: {thetao: {}}
""")
    assert prehash.local_sources(recipe) == [str(tmp_path / "a.nc"), str(tmp_path / "b.nc")]
    (tmp_path / "bad.yaml").write_text("name: [")
    assert prehash.local_sources(tmp_path / "bad.yaml") == []  # the run reports it, not this
