"""The ``haina`` command line: one module per command group, each a set of real functions."""
