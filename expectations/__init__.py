"""Quality of a dataset: QARTOD flags per row (``qc/``) and Great Expectations validation of the
whole run (``validation/``).

Import submodules directly. This package's ``__init__`` (and those of ``qc`` and ``validation``)
stays empty of imports on purpose: ``pipelines.recipe`` imports :mod:`expectations.quality_config`, and
workers import the arrow metrics per chunk, neither of which may pay for
``import great_expectations`` (seconds). Only :mod:`expectations.validation.judgement`,
:mod:`expectations.validation.ge.engine` and :mod:`expectations.validation.ge.qartod` import GE.

- :mod:`expectations.quality_config`: ``QualityConfig``, the recipe's whole ``quality:`` section
  (gate fractions, ranges, suites, engine, and its ``qc:`` part, :mod:`expectations.qc.config`)
- :mod:`expectations.exceptions`: the named errors of both halves
- ``qc/``: ``flags`` (codes), ``qartod`` (the tests, pure numpy), ``position`` (location, speed),
  ``config`` (the ``quality.qc`` settings), ``plan`` (which test runs on which column),
  ``apply`` (a chunk in, flag columns out), ``columns``, ``stats`` (flag counts for the report)
- ``validation/``: ``suites`` (which GE suites apply), ``checks`` (suite entries compiled),
  ``arrow_metrics`` (exact GE metrics per chunk), ``keys`` (uniqueness across chunks),
  ``merge`` (chunks into a run), ``encoding`` (the metrics' JSON values), ``judgement`` (GE's
  classes judge the merged metrics), ``ge/process`` (that judgement in a helper process),
  ``ge/engine`` (GE's own engine, for parity), ``ge/qartod`` (QARTOD as GE expectations),
  ``gate`` (may the run publish?)
- the validation report is a document of a version: :mod:`catalog.documents.report`
"""
