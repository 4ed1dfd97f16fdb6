"""``haina kinds [KIND]`` prints the key reference; it needs no catalog or warehouse."""
from __future__ import annotations

import connectors
from connectors import reference
from pipelines.cli import app as cli
from pipelines.cli.app import main


def _run(capsys, *argv):
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_kinds_lists_every_kind_with_what_it_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "kinds")
    assert code == 0, err
    for kind in connectors.kinds():
        assert kind in out and reference.summary(kind)[:30] in " ".join(out.split())
    assert list(tmp_path.iterdir()) == []


def test_kinds_kind_prints_every_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.console, "width", 400)  # one line per key: cells not folded
    code, out, err = _run(capsys, "kinds", "delimited")
    assert code == 0, err
    lines = out.splitlines()
    for row in reference.keys("delimited"):
        [line] = [line for line in lines if line.startswith(f"│ {row.name} ")]
        assert row.default in line and row.example in line
    assert "units_to: S m-1" in out
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_kind_is_one_line_naming_the_kinds(capsys):
    code, out, err = _run(capsys, "kinds", "netcdf")
    assert code == 2 and "Traceback" not in err
    line = " ".join(err.split())
    assert "unknown source kind 'netcdf'" in line and "netcdf_grid" in line
