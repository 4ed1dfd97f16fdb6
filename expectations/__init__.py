"""Validation with Great Expectations 1.x: suites, exact arrow metrics per chunk, GE results.

Import submodules directly. This package's ``__init__`` stays empty of imports on purpose:
``pipelines.recipe`` imports ``expectations.config``, and workers import ``expectations.validation.metrics``
per chunk, neither of which may pay for ``import great_expectations`` (seconds). Only
``expectations.validation.results`` (and ``catalog.documents.report``, through the results it is given) uses GE.

- ``expectations.validation.suites``: :func:`load_suite`, :func:`suites_for`
- ``expectations.validation.checks``: :class:`Check`, :func:`compile_checks` (no GE)
- ``expectations.validation.metrics``: :func:`chunk_metrics`, :func:`merge_metrics`, :func:`ge_chunk_metrics`
- ``expectations.validation.results``: :func:`suite_results` (GE)
- ``expectations.validation.gate``: :class:`GateDecision`, :func:`evaluate_gate`
- ``catalog.documents.report``: :func:`write_report`
"""
