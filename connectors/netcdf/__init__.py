"""netCDF connectors (grids, CF discrete sampling geometries, Argo) and their CF helpers."""
