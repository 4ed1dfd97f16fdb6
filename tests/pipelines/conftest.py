"""Fixtures for pipeline tests: small demo grids and recipes built in the test's folder."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from examples.qingdao_demo import generate


def demo_recipe(folder: Path, *, name: str = "demo-test", quality: str = "{max_failing_fraction: 0.001}",
                output: str = "{partition_by: date}", extra_source: str = "",
                extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        title: Qingdao demo grid (test)
        licence: CC0-1.0
        attribution: Synthetic test data
        owner: {{name: tests}}
        coverage:
          time: {{start: 2025-07-01T00:00:00Z, end: 2025-07-31T00:00:00Z}}
        sources:
          - kind: netcdf_grid
            uri: sources/*.nc
            chunk_dim: time
            chunk_size: 1
        {textwrap.indent(extra_source, "    ").strip()}
        quality: {quality}
        output: {output}
        {extra}
        """))
    return path


@pytest.fixture
def demo_sources(tmp_path) -> Path:
    """Two daily files of the demo grid (4 time steps each) in ``tmp_path/sources``."""
    generate(tmp_path / "sources", days=2)
    return tmp_path / "sources"
