"""Pipelines: recipes, the Beam pipeline of a run, and the ``haina`` command line."""
