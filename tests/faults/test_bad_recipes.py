"""Bad recipes and environments through ``haina check | run | release``: one line, no traceback.

Every case ends in ONE line on stderr naming what is wrong, where and the fix, with exit code 2
(bad input: recipe, options, catalog file) or 3 (the run cannot proceed: read-only warehouse,
a failing pipeline step, an internal error), and leaves nothing behind: no run recorded or left
``running``, no lock held, no staging folder.

Most cases run the CLI's ``main()`` in-process; the two that must see what Beam itself prints
(its logged and printed tracebacks) run it in a subprocess, and the read-only warehouse is a
real read-only tmpfs mount (tests run as root, for whom ``chmod a-w`` changes nothing).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from catalog.storage.filesystems import installed_schemes
from catalog.store import open_catalog
from pipelines import recipe as recipe_mod
from pipelines.cli.app import main
from tests.conftest import missing

REPO = Path(__file__).resolve().parents[2]
NAME = "bad-recipe"


# --------------------------------------------------------------------------- inputs


def write_grid(path: Path) -> Path:
    """A 2 x 10 x 12 CF grid of sea_water_temperature, all values plausible."""
    temp = np.random.default_rng(3).uniform(10.0, 20.0, (2, 10, 12)).astype("float32")
    xr.Dataset(
        {"temp": (("time", "lat", "lon"), temp,
                  {"standard_name": "sea_water_temperature", "units": "degC"})},
        coords={"time": pd.date_range("2025-07-01", periods=2, freq="D"),
                "lat": ("lat", np.linspace(35.0, 36.0, 10),
                        {"standard_name": "latitude", "units": "degrees_north"}),
                "lon": ("lon", np.linspace(120.0, 121.0, 12),
                        {"standard_name": "longitude", "units": "degrees_east"})},
    ).to_netcdf(path)
    return path


GOOD = textwrap.dedent(f"""\
    name: {NAME}
    title: bad recipe test
    licence: CC0-1.0
    owner: {{name: tests}}
    sources:
      - kind: netcdf_grid
        uri: grid.nc
        variables: {{temp: {{}}}}
    """)


def write_recipe(folder: Path, text: str = GOOD) -> Path:
    write_grid(folder / "grid.nc")
    path = folder / f"{NAME}.yaml"
    path.write_text(text)
    return path


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, out: str, err: str, expected_code: int) -> str:
    """The exit code, no traceback anywhere, and exactly one line on stderr (returned)."""
    assert code == expected_code, err
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def assert_nothing_started(warehouse: Path) -> None:
    """No run of the dataset was recorded, no lock is held and no staging folder is left."""
    database = warehouse / "catalog.db"
    if database.exists():
        catalog = open_catalog(f"sqlite:///{database}")
        if NAME in {d.name for d in catalog.datasets()}:
            assert catalog.runs(NAME) == []
        catalog.acquire_lock(NAME, "r-probe")  # raises DatasetLockedError if a run holds it
        catalog.release_lock(NAME, "r-probe")
        catalog.close()
    assert not list((warehouse / "_staging").glob("*"))


def _children() -> set[int]:
    """Pids of this process's live children (the GE helper, Beam workers), from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


# --------------------------------------------------------------------------- the table


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new)
    return edit


def _append(section: str) -> Callable[[str], str]:
    return lambda text: text + section + "\n"


@dataclasses.dataclass(frozen=True)
class Case:
    edit: Callable[[str], str]         # the good recipe's text -> the broken one
    must_say: tuple[str, ...]          # fragments of the one stderr line ({tmp}: tmp_path)
    code: int = 2
    commands: tuple[str, ...] = ("check", "run")
    options: tuple[str, ...] = ()      # global options before the command ({tmp}: tmp_path)
    beam: tuple[str, ...] = ()         # arguments after --
    setup: Callable[[Path], None] = lambda tmp: None
    names_recipe: bool = True          # the line names the recipe file


def _text_file(relative: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp / relative).write_text("station,temp\nA,12.5\n")
    return setup


CASES = {
    # sources[].kind
    "kind-is-a-list": Case(_replace("kind: netcdf_grid", "kind: [netcdf_grid]"),
                           ("sources[0].kind", "['netcdf_grid']", "accepted: ", "netcdf_grid")),
    "kind-is-a-mapping": Case(_replace("kind: netcdf_grid", "kind: {netcdf_grid: true}"),
                              ("sources[0].kind", "{'netcdf_grid': True}", "accepted: ")),
    # sources[].uri
    "uri-empty": Case(_replace("uri: grid.nc", "uri: ''"), ("sources[0].uri", "(got '')")),
    "uri-empty-list": Case(_replace("uri: grid.nc", "uri: []"), ("sources[0].uri", "(got [])")),
    "uri-ftp": Case(_replace("uri: grid.nc", "uri: ftp://example.invalid/grid.nc"),
                    ("sources[0].uri", "ftp://example.invalid/grid.nc", "no filesystem reads "
                     "ftp://", "Fix:")),
    "uri-gs-not-installed": Case(_replace("uri: grid.nc", "uri: gs://bucket/grid.nc"),
                                 ("sources[0].uri", "gs://bucket/grid.nc", "not installed",
                                  "pip install 'apache-beam[gcp]'")),
    # fractions: every one in [0, 1]
    "gate-fraction-above-1": Case(_append("quality: {max_failing_fraction: 1.5}"),
                                  ("quality.max_failing_fraction", "(got 1.5)")),
    "column-fraction-below-0": Case(
        _append("quality: {max_failing_fraction_by_column: {sea_water_temperature: -0.1}}"),
        ("quality.max_failing_fraction_by_column.sea_water_temperature", "(got -0.1)")),
    "qc-gate-fraction": Case(_append("quality: {qc_gate: {max_fail_fraction: 2}}"),
                             ("quality.qc_gate.max_fail_fraction", "(got 2)")),
    "qc-gate-by-variable-fraction": Case(
        _append("quality: {qc_gate_by_variable: {sea_water_temperature: "
                "{max_suspect_fraction: -1}}}"),
        ("quality.qc_gate_by_variable.sea_water_temperature.max_suspect_fraction", "(got -1)")),
    "split-fractions": Case(
        _append("splits: {by: time_block, block: 1d, fractions: {train: 1.5, test: -0.5}}"),
        ("splits.fractions", "[0, 1]", "test, train")),
    # compression levels the codec refuses
    "zstd-level": Case(_append("output: {compression: zstd, compression_level: 23}"),
                       ("output.compression_level", "zstd accepts levels 1..22", "(got 23)")),
    "gzip-level": Case(_append("output: {compression: gzip, compression_level: 10}"),
                       ("output.compression_level", "gzip accepts levels 1..9", "(got 10)")),
    "snappy-level": Case(_append("output: {compression: snappy, compression_level: 1}"),
                         ("output.compression_level", "'snappy' takes no level", "(got 1)")),
    "none-level": Case(_append("output: {compression: none, compression_level: 5}"),
                       ("output.compression_level", "'none' takes no level", "(got 5)")),
    # YAML keys given twice (PyYAML would keep the last one silently)
    "duplicate-top-key": Case(_append("title: given again"),
                              ("line 9, column 1", "key 'title' is given twice",
                               "first at line 2", "Fix:")),
    "duplicate-source-key": Case(
        _replace("    uri: grid.nc\n", "    uri: grid.nc\n    uri: other.nc\n"),
        ("line 8, column 5", "key 'uri' is given twice", "first at line 7")),
    # a split key column the data lack: refused while planning, before Beam runs
    "splits-by-missing-column": Case(
        _append("splits: {by: platform_id}"),
        ("splits.by", "'platform_id'", "lacks", "sea_water_temperature", "Fix:")),
    # the catalog file is not SQLite
    "catalog-url-is-a-text-file": Case(
        lambda text: text, ("{tmp}/notes.txt", "is not an SQLite database", "Fix:"),
        options=("--catalog", "sqlite:///{tmp}/notes.txt"), setup=_text_file("notes.txt"),
        names_recipe=False),
    "warehouse-catalog-is-a-text-file": Case(
        lambda text: text, ("{tmp}/warehouse/catalog.db", "is not an SQLite database"),
        setup=_text_file("warehouse/catalog.db"), names_recipe=False),
    # Beam options
    "unknown-runner": Case(lambda text: text, ("--runner=NoSuchRunner", "known runners: ",
                                               "DirectRunner", "FlinkRunner"),
                           commands=("run",), beam=("--runner=NoSuchRunner",),
                           names_recipe=False),
    "runner-class-not-importable": Case(
        lambda text: text, ("--runner=nosuchpackage.FastRunner", "cannot import",
                            "'nosuchpackage'"),
        commands=("run",), beam=("--runner=nosuchpackage.FastRunner",), names_recipe=False),
}


@pytest.mark.parametrize("case, command", [
    pytest.param(case, command, id=f"{case}-{command}")
    for case, spec in CASES.items() for command in spec.commands])
def test_bad_recipe_or_environment_is_one_line(case, command, tmp_path, capsys):
    spec = CASES[case]
    if case == "uri-gs-not-installed" and "gs" in installed_schemes():
        pytest.skip("Beam's gs:// filesystem is installed here: the case cannot arise")
    recipe = write_recipe(tmp_path, spec.edit(GOOD))
    spec.setup(tmp_path)
    warehouse = tmp_path / "warehouse"
    options = [o.replace("{tmp}", str(tmp_path)) for o in spec.options]
    argv = ["--warehouse", str(warehouse), *options, command, str(recipe)]
    before = _children()
    code, out, err = cli(capsys, *argv, *(["--", *spec.beam] if spec.beam else []))

    line = assert_one_line(code, out, err, spec.code)
    assert line.startswith("error: "), line
    for fragment in spec.must_say:
        assert fragment.replace("{tmp}", str(tmp_path)) in line, f"{fragment!r} not in {line!r}"
    if spec.names_recipe:
        assert recipe.name in line, line
    assert _children() <= before  # the GE helper is gone
    if "not an SQLite database" not in line:
        assert_nothing_started(warehouse)


def test_unknown_source_kind_missing_is_named(tmp_path, capsys):
    recipe = write_recipe(tmp_path, GOOD.replace("  - kind: netcdf_grid\n    uri", "  - uri"))
    code, out, err = cli(capsys, "--warehouse", str(tmp_path / "wh"), "check", str(recipe))
    line = assert_one_line(code, out, err, 2)
    assert "sources[0].kind" in line and "(missing)" in line and "netcdf_grid" in line


# --------------------------------------------------------------------------- internal errors


def test_unexpected_exception_is_one_internal_error_line(tmp_path, capsys, monkeypatch):
    recipe = write_recipe(tmp_path)

    def broken(path):
        raise KeyError("the bug")

    monkeypatch.setattr(recipe_mod, "load", broken)
    monkeypatch.delenv("HAINA_DEBUG", raising=False)
    argv = ["--warehouse", str(tmp_path / "wh"), "check", str(recipe)]
    code, out, err = cli(capsys, *argv)
    line = assert_one_line(code, out, err, 3)
    assert line == ("internal error: KeyError: 'the bug' (run with --debug / HAINA_DEBUG=1 for "
                    "the traceback)")

    # either switch lets the exception (and so its traceback) through
    with pytest.raises(KeyError, match="the bug"):
        main(["--debug", *argv])
    monkeypatch.setenv("HAINA_DEBUG", "1")
    with pytest.raises(KeyError, match="the bug"):
        main(argv)


#: runs the CLI with the Split step failing inside the pipeline, as a bug in a step would
_FAILING_STEP = textwrap.dedent("""\
    import sys
    from pipelines.cli import app as cli
    cli._quiet_libraries()  # what main() does before Beam is imported
    from pipelines.beam import steps

    def split_chunk(out, config):
        raise ValueError("a step failed on purpose")

    steps.split_chunk = split_chunk
    sys.exit(cli.main(sys.argv[1:]))
    """)


@pytest.mark.parametrize("beam", [
    pytest.param([], id="in-memory"),  # Beam logs the step's traceback at ERROR
    pytest.param(["--direct_num_workers=2", "--direct_running_mode=multi_threading"],
                 id="multi-threaded"),  # Beam print()s it, and raises RuntimeError(text)
])
def test_error_inside_beam_prints_no_beam_traceback(beam, tmp_path):
    recipe = write_recipe(tmp_path)
    warehouse = tmp_path / "warehouse"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("HAINA_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_STEP, "--warehouse", str(warehouse), "run",
         str(recipe), *(["--", *beam] if beam else [])],
        capture_output=True, text=True, env=env, timeout=300)

    line = assert_one_line(done.returncode, done.stdout, done.stderr, 3)
    assert "ValueError: a step failed on purpose" in line
    assert "[while running 'Ingest/Split/SplitChunk']" in line
    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    runs = catalog.runs(NAME)
    assert [r.status for r in runs] == ["failed"]
    assert "a step failed on purpose" in runs[0].error
    assert catalog.versions(NAME) == []
    catalog.acquire_lock(NAME, "r-probe")
    catalog.release_lock(NAME, "r-probe")
    assert not list((warehouse / "_staging").glob("*"))


# --------------------------------------------------------------------------- read-only warehouse


@pytest.fixture
def read_only_view(tmp_path):
    """Mount ``tmp_path/warehouse`` read-only at ``tmp_path/read-only`` (a bind mount).

    A bind mount, not a remount of the folder itself: the test's own catalog connection keeps
    the SQLite file open for writing, which a read-only remount refuses (EBUSY).
    """
    source, view = tmp_path / "warehouse", tmp_path / "read-only"
    source.mkdir()
    view.mkdir()
    if shutil.which("mount") is None:
        missing("`mount` is not installed: cannot make a read-only warehouse")
    done = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        missing(f"cannot bind-mount a folder ({done.stderr.strip()}): a read-only warehouse "
                f"needs a read-only mount, as root ignores file permissions")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True,
                       capture_output=True)
        yield source, view
    finally:
        # lazy: the CLI's catalog engine may still hold the file open through the view
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


def test_read_only_warehouse_refuses_run_and_release(read_only_view, tmp_path, capsys):
    warehouse, read_only = read_only_view
    recipe = write_recipe(tmp_path)
    code, _out, err = cli(capsys, "--warehouse", str(warehouse), "run", str(recipe))
    assert code == 0, err
    assert not os.access(read_only, os.W_OK)  # what os.access says of a read-only mount

    before = _children()
    attempts = {
        # nothing new to ingest: still refused, before the no-change run would be recorded
        "run": (read_only, ["run", str(recipe)], "nothing was run"),
        "release": (read_only, ["release", f"{NAME}@latest-draft"], "nothing was released"),
        "deprecate": (read_only, ["deprecate", f"{NAME}@latest"], "nothing was changed"),
        "run-new-warehouse": (read_only / "new", ["run", str(recipe)], "nothing was run"),
    }
    for what, (root, argv, refused) in attempts.items():
        code, out, err = cli(capsys, "--warehouse", str(root), *argv)
        line = assert_one_line(code, out, err, 3)
        assert line.startswith(f"error: warehouse {root} is read-only"), (what, line)
        assert refused in line and "Fix:" in line, (what, line)
    assert _children() <= before  # the GE helper is gone

    catalog = open_catalog(f"sqlite:///{warehouse}/catalog.db")
    assert [r.status for r in catalog.runs(NAME)] == ["succeeded"]
    assert [v.state for v in catalog.versions(NAME)] == ["draft"]
    catalog.acquire_lock(NAME, "r-probe")  # raises DatasetLockedError if a run holds it
    catalog.release_lock(NAME, "r-probe")
    catalog.close()
    assert not list((warehouse / "_staging").glob("*"))
    assert not (warehouse / "new").exists()
