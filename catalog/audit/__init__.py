"""The tamper-evident audit log of every catalog mutation."""
