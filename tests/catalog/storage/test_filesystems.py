"""Which URIs a Beam filesystem serves here, and the error that names what to install."""
from __future__ import annotations

import pytest

from catalog.exceptions import MissingDependencyError, UnsupportedURIError
from catalog.storage import filesystems
from catalog.storage.warehouse import Warehouse


def test_local_paths_need_no_filesystem(tmp_path):
    filesystems.require_filesystem(str(tmp_path / "x.nc"), "sources[0].uri")
    filesystems.require_filesystem("relative/*.nc", "sources[0].uri")


@pytest.mark.parametrize("scheme", sorted(filesystems.FILESYSTEM_EXTRAS))
def test_a_known_store_without_its_package_names_the_extra(scheme, monkeypatch):
    monkeypatch.setattr(filesystems, "installed_schemes", lambda: set())
    with pytest.raises(MissingDependencyError) as info:
        filesystems.require_filesystem(f"{scheme}://bucket/x.nc", "recipe.yaml: sources[0].uri")
    message = str(info.value)
    assert message.startswith(f"recipe.yaml: sources[0].uri: '{scheme}://bucket/x.nc' needs")
    assert f"pip install '{filesystems.FILESYSTEM_EXTRAS[scheme]}'" in message


def test_a_scheme_no_filesystem_reads_is_refused():
    with pytest.raises(UnsupportedURIError, match=r"no filesystem reads ftp:// URIs .*gs://"):
        filesystems.require_filesystem("ftp://host/x.nc", "sources[0].uri")


def test_an_installed_store_is_accepted(monkeypatch):
    monkeypatch.setattr(filesystems, "installed_schemes", lambda: {"s3"})
    filesystems.require_filesystem("s3://bucket/x.nc", "sources[0].uri")


def test_a_warehouse_on_an_uninstalled_store_is_refused_before_writing(monkeypatch):
    monkeypatch.setattr(filesystems, "installed_schemes", lambda: set())
    with pytest.raises(MissingDependencyError, match=r"^warehouse: 'gs://bucket/wh' needs"):
        Warehouse("gs://bucket/wh").require_writable("nothing was run")


def test_a_writable_local_warehouse_passes_and_is_left_as_it_was(tmp_path):
    root = tmp_path / "new" / "warehouse"
    Warehouse(str(root)).require_writable("nothing was run")
    assert root.is_dir() and list(root.iterdir()) == []
