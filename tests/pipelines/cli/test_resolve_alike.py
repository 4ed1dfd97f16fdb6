"""Every command that takes ``NAME@REF``, and ``open_dataset``, read a reference alike.

The catalog holds version 1 released as 1.0.0 and a newer draft (version 2), made by real runs.
Before one resolver, ``show``, ``card`` and ``open_dataset`` named 1.0.0 for ``@latest`` while
``verify``, ``lineage`` and ``report`` named the draft.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from catalog import read as api
from pipelines.cli.app import _parser, main
from tests.pipelines.cli.conftest import NAME, Released

VID = re.compile(r"v\d{8}T\d{6}Z-[0-9a-f]+")
#: the positional arguments that hold a reference
REF_ARGS = {"ref", "old", "new"}


def _subparsers() -> dict:
    [sub] = [a for a in _parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sub.choices


def _commands_taking_a_reference() -> set[str]:
    return {name for name, p in _subparsers().items()
            if any(a.dest in REF_ARGS for a in p._actions)}


def _haina(capsys: pytest.CaptureFixture[str], where: Released | Path, *argv: str
           ) -> tuple[int, str, str]:
    warehouse = where.warehouse if isinstance(where, Released) else where
    code = main(["--warehouse", str(warehouse), *argv])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def _one(text: str) -> str:
    found = set(VID.findall(text))
    assert len(found) == 1, text
    return found.pop()


def _states(warehouse: Path) -> dict[str, str]:
    with sqlite3.connect(warehouse / "catalog.db") as db:
        return dict(db.execute("SELECT version_id, state FROM versions"))


def _copy(made: Released, tmp_path: Path) -> Path:
    """A copy of the warehouse's catalog, for a command that changes a version's state."""
    warehouse = tmp_path / "copy"
    warehouse.mkdir()
    shutil.copy(made.warehouse / "catalog.db", warehouse / "catalog.db")
    return warehouse


# --- what each command says it resolved -------------------------------------------------------
def _show(capsys, made, tmp_path, ref):
    code, out, err = _haina(capsys, made, "show", ref)
    assert code == 0, err
    return _one(out.splitlines()[0])


def _card(capsys, made, tmp_path, ref):
    code, _, err = _haina(capsys, made, "card", ref, "--out", str(tmp_path), "--no-croissant")
    assert code == 0, err
    return _one((tmp_path / "CARD.md").read_text(encoding="utf-8").split("\n## ", 1)[0])


def _verify(capsys, made, tmp_path, ref):
    code, out, err = _haina(capsys, made, "verify", ref, "--json")
    assert code == 0, err
    return _one(json.loads(out)["target"])


def _lineage(capsys, made, tmp_path, ref):
    code, out, err = _haina(capsys, made, "lineage", ref, "--format", "json")
    assert code == 0, err
    return json.loads(out)["version"]["id"]


def _report(capsys, made, tmp_path, ref):
    code, out, err = _haina(capsys, made, "report", ref)
    assert code == 0, err
    run_id = Path(out.strip()).parent.name
    with sqlite3.connect(made.warehouse / "catalog.db") as db:
        [(version_id,)] = db.execute("SELECT version_id FROM runs WHERE run_id = ?", (run_id,))
    return version_id


def _diff(capsys, made, tmp_path, ref):
    code, out, err = _haina(capsys, made, "diff", ref, ref, "--json", "--no-stats")
    assert code == 0, err
    diff = json.loads(out)
    assert diff["a"] == diff["b"]
    return diff["a"]


def _release(capsys, made, tmp_path, ref):
    code, out, err = _haina(capsys, made, "release", ref, "--dry-run")
    if code == 0:  # a draft: "dry run: would release NAME@ID as X.Y.Z"
        return _one(out.split("dry run:", 1)[1])
    assert "is already released" in err, err  # 1.0.0: "version ID is already released"
    return _one(err)


def _transition(action: str, *extra: str) -> Callable:
    def run(capsys, made, tmp_path, ref):
        warehouse = _copy(made, tmp_path)
        if action == "undeprecate":  # undeprecate needs a deprecated version
            assert _haina(capsys, warehouse, "deprecate", f"{NAME}@1.0.0")[0] == 0
        before = _states(warehouse)
        code, _, err = _haina(capsys, warehouse, action, ref, *extra)
        if code != 0:  # a draft: "NAME@ID: cannot ACTION a version that is draft"
            assert f"cannot {action} a version that is draft" in err, err
            return _one(err)
        changed = [v for v, state in _states(warehouse).items() if state != before[v]]
        assert len(changed) == 1, (before, _states(warehouse))
        return changed[0]
    return run


READERS: dict[str, Callable] = {
    "show": _show, "card": _card, "verify": _verify, "lineage": _lineage, "report": _report,
    "diff": _diff, "release": _release, "deprecate": _transition("deprecate"),
    "undeprecate": _transition("undeprecate"), "yank": _transition("yank", "--reason", "test"),
}


def test_every_command_taking_a_reference_is_listed_here():
    assert _commands_taking_a_reference() == set(READERS)


def _expected(made: Released) -> dict[str, str]:
    return {f"{NAME}@latest": made.released, f"{NAME}@1.0.0": made.released,
            f"{NAME}@v1.0.0": made.released, f"{NAME}@latest-draft": made.draft,
            NAME: made.released,  # a bare NAME is NAME@latest
            f"{NAME}@{made.released}": made.released, f"{NAME}@{made.draft}": made.draft}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(READERS))
def test_every_command_resolves_a_reference_alike(released_then_draft, tmp_path, capsys,
                                                  command):
    made = released_then_draft
    got = {}
    for i, ref in enumerate(_expected(made)):
        folder = tmp_path / str(i)
        folder.mkdir()
        got[ref] = READERS[command](capsys, made, folder, ref)
    assert got == _expected(made)


@pytest.mark.slow
def test_open_dataset_resolves_alike(released_then_draft):
    made = released_then_draft
    for ref, version_id in _expected(made).items():
        name, _, version = ref.partition("@")
        dataset = api.open_dataset(name, version or "latest", warehouse=made.warehouse)
        folders = {Path(f).relative_to(made.warehouse / "datasets" / NAME / "versions").parts[0]
                   for f in dataset.files}
        assert folders == {version_id}, ref


@pytest.mark.slow
def test_datasets_lists_the_version_latest_names(released_then_draft, capsys):
    made = released_then_draft
    code, out, err = _haina(capsys, made, "datasets")
    assert code == 0, err
    [row] = [line for line in out.splitlines() if NAME in line]
    assert _one(row) == made.released
