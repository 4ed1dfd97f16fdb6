"""Beam wiring of a run: pure per-chunk steps and the small composites that apply them."""
