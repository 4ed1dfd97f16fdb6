"""Great Expectations itself: its own engine (for parity), the helper process that imports it, and the QARTOD expectations registered with it."""
