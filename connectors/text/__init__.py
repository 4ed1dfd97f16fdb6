"""Text connectors: delimited station data, station feeds and port tables."""
