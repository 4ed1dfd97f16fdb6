"""Connectors: open and decode sources into chunks of canonical Arrow tables.

Connectors are registered by source ``kind``; a recipe's ``sources[].kind`` selects one. Modules
that implement a kind are imported lazily, so a missing optional dependency only matters for the
kind that needs it.
"""
from __future__ import annotations

import importlib

from connectors.base import ChunkResult, ChunkSpec, ColumnInfo, Connector, SourcePlan
from connectors.exceptions import ConnectorError, UnknownKindError

# kind -> "module:Class"; imported on first use.
_KINDS: dict[str, str] = {
    "netcdf_grid": "connectors.netcdf.grid:GriddedNetCDF",
    "netcdf_dsg": "connectors.netcdf.dsg:DiscreteSamplingNetCDF",
    "argo": "connectors.netcdf.argo:ArgoNetCDF",
    "ndbc_text": "connectors.text.stations:NdbcText",
    "erddap_csv": "connectors.text.stations:ErddapCsv",
    "coops_json": "connectors.text.stations:CoopsJson",
    "delimited": "connectors.text.delimited:DelimitedText",
    "ais_nmea": "connectors.ais.nmea:AisNmea",
    "ais_csv": "connectors.ais.csv:AisCsv",
    "port_table": "connectors.text.ports:PortTable",
}
_LOADED: dict[str, Connector] = {}


def register(kind: str, target: str) -> None:
    """Register a connector class, given as ``"module:Class"``, for a source kind."""
    _KINDS[kind] = target


def kinds() -> list[str]:
    return sorted(_KINDS)


def get(kind: str) -> Connector:
    """Return the connector instance for ``kind``."""
    if kind in _LOADED:
        return _LOADED[kind]
    try:
        target = _KINDS[kind]
    except KeyError:
        raise UnknownKindError(
            f"unknown source kind {kind!r}",
            fix=f"use one of: {', '.join(kinds())}",
        ) from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    _LOADED[kind] = cls()
    return _LOADED[kind]


def release_all() -> None:
    """Let every loaded connector close what it keeps open between chunks (file handles)."""
    for connector in _LOADED.values():
        connector.release()


__all__ = [
    "ChunkResult", "ChunkSpec", "ColumnInfo", "Connector", "ConnectorError", "SourcePlan",
    "get", "kinds", "register", "release_all",
]
