"""AIS vessel positions: the canonical schema, raw NMEA and decoded CSV."""
