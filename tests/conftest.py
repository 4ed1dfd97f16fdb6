"""Fixtures shared by every test package: the real data folder and a throwaway warehouse."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def require_shared_data(subpath: str = "") -> Path:
    """The path under ``../shared/data``; fail when CI is set and it is missing, else skip."""
    path = SHARED_DATA / subpath
    if not path.exists():
        message = f"real test data not found at {path} (expected ../shared/data next to the repo)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data``: real public files, referenced in place, never copied."""
    return require_shared_data()


@pytest.fixture
def tmp_warehouse(tmp_path, monkeypatch) -> Path:
    """An empty warehouse folder, also exported as ``$HAINA_WAREHOUSE`` for the test."""
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    monkeypatch.setenv("HAINA_WAREHOUSE", str(warehouse))
    return warehouse
