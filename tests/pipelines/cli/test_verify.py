"""``haina verify`` and ``haina audit`` on a version made by a real run of the demo recipe."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from examples.qingdao_demo import generate

from pipelines.cli.app import main
from tests.pipelines.conftest import demo_recipe

NAME = "demo-test"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One run (by actor ci-bot) into a warehouse shared by this module's tests."""
    root = tmp_path_factory.mktemp("verify_cli")
    generate(root / "sources", days=2)
    warehouse = root / "warehouse"
    assert main(["--warehouse", str(warehouse), "--actor", "ci-bot", "run",
                 str(demo_recipe(root))]) == 0
    versions = sorted((warehouse / "datasets" / NAME / "versions").iterdir())
    return warehouse, versions[-1]


@pytest.fixture
def pristine(made):
    """The shared warehouse, restored after a test that damages it."""
    warehouse, folder = made
    backup = folder.parent.parent / "backup"
    shutil.copytree(folder, backup)
    db = (warehouse / "catalog.db").read_bytes()
    head = (warehouse / "_audit" / "head.json").read_bytes()
    yield warehouse, folder
    shutil.rmtree(folder)
    shutil.move(backup, folder)
    (warehouse / "catalog.db").write_bytes(db)
    (warehouse / "_audit" / "head.json").write_bytes(head)


def haina(warehouse: Path, *args: str) -> int:
    return main(["--warehouse", str(warehouse), *args])


def test_a_fresh_version_verifies(made, capsys):
    warehouse, folder = made
    capsys.readouterr()
    assert haina(warehouse, "verify", f"{NAME}@latest") == 0
    out = capsys.readouterr().out
    assert f"verified {NAME}@{folder.name}" in out and "manifest hash against the catalog" in out


def test_json_report(made, capsys):
    warehouse, folder = made
    capsys.readouterr()
    assert haina(warehouse, "verify", f"{NAME}@{folder.name}", "--json", "--workers", "1") == 0
    report = json.loads(capsys.readouterr().out)
    parquet = sorted(folder.rglob("*.parquet"))
    assert report["ok"] and report["files"] == len(parquet)
    assert report["bytes_read"] == sum(p.stat().st_size for p in parquet)


def test_a_flipped_byte_is_named(pristine, capsys):
    warehouse, folder = pristine
    victim = sorted((folder / "data").rglob("*.parquet"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 3] ^= 0xFF
    victim.write_bytes(bytes(data))
    capsys.readouterr()
    assert haina(warehouse, "verify", f"{NAME}@latest") == 1
    out = capsys.readouterr().out
    rel = victim.relative_to(folder).as_posix()
    assert "verification failed" in out and f"first mismatch: {rel}: file.sha256" in out
    assert hashlib.sha256(bytes(data)).hexdigest() in out


def test_a_copied_folder_verifies_manifest_only(made, tmp_path, capsys):
    _warehouse, folder = made
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    capsys.readouterr()
    assert main(["verify", "--folder", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "manifest-only check" in out and "verified" in out
    (copy / "data" / "stray.parquet").write_bytes(b"x")
    assert main(["verify", "--folder", str(copy)]) == 1
    assert "data/stray.parquet: file.stray" in capsys.readouterr().out


def test_the_run_is_in_the_audit_log_and_the_chain_verifies(made, capsys):
    warehouse, folder = made
    capsys.readouterr()
    assert haina(warehouse, "audit", "log", "--json") == 0
    entries = json.loads(capsys.readouterr().out)
    actions = [e["action"] for e in entries]
    assert actions == ["dataset.create", "run.start", "lineage.emit", "run.source_counts",
                       "version.commit", "run.end", "lineage.emit"]
    assert {e["actor"] for e in entries} == {"ci-bot"}
    assert entries[4]["target"] == f"{NAME}@{folder.name}"
    assert haina(warehouse, "audit", "log", "--action", "run.*", "--json") == 0
    assert [e["action"] for e in json.loads(capsys.readouterr().out)] == [
        "run.start", "run.source_counts", "run.end"]
    assert haina(warehouse, "audit", "log", "--actor", "nobody", "--since", "1d", "--json") == 0
    assert json.loads(capsys.readouterr().out) == []
    assert haina(warehouse, "audit", "verify") == 0
    assert "audit log intact: 7 entries" in capsys.readouterr().out


def test_a_tampered_audit_log_fails(pristine, capsys):
    warehouse, _folder = pristine
    with sqlite3.connect(warehouse / "catalog.db") as db:
        db.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    capsys.readouterr()
    assert haina(warehouse, "audit", "verify") == 1
    out = capsys.readouterr().out
    assert "audit log tampered" in out and "entry 2:" in out


@pytest.mark.parametrize("args, message", [
    (["verify"], "either NAME@VERSION or --folder"),
    (["verify", "x@latest", "--folder", "/tmp"], "either NAME@VERSION or --folder"),
    (["verify", "x@latest", "--manifest-sha256", "ab"], "only applies with --folder"),
    (["verify", "nope@"], "is not NAME@VERSION"),
    (["verify", "nope"], "dataset 'nope' is not in the catalog"),  # a bare NAME is NAME@latest
    (["audit", "log", "--since", "last tuesday"], "--since 'last tuesday'"),
])
def test_usage_errors(made, capsys, args, message):
    warehouse, _ = made
    assert haina(warehouse, *args) == 2
    assert message in capsys.readouterr().err
