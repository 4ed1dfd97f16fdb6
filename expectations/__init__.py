"""Validation with Great Expectations 1.x: suites, exact arrow metrics per chunk, GE results.

Import submodules directly. This package's ``__init__`` stays empty of imports on purpose:
``pipelines.recipe`` imports ``expectations.config``, and workers import ``expectations.engine``
per chunk, neither of which may pay for ``import great_expectations`` (seconds). Only
``expectations.results`` (and ``expectations.report``, through the results it is given) uses GE.

- ``expectations.suites``: :func:`load_suite`, :func:`suites_for`
- ``expectations.checks``: :class:`Check`, :func:`compile_checks` (no GE)
- ``expectations.engine``: :func:`chunk_metrics`, :func:`merge_metrics`, :func:`ge_chunk_metrics`
- ``expectations.results``: :func:`suite_results` (GE)
- ``expectations.gate``: :class:`GateDecision`, :func:`evaluate_gate`
- ``expectations.report``: :func:`write_report`
"""
