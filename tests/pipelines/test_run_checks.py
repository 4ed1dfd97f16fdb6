"""The checks pipelines/driver.py makes before a run starts, and how it reads a failed worker."""
from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.beam.options import check_runner, worker_failure
from pipelines.exceptions import OptionsError, RunError


@pytest.mark.parametrize("argv, expected", [
    ([], "DirectRunner"),
    (["--runner=DirectRunner"], "DirectRunner"),
    (["--runner=direct"], "direct"),               # Beam accepts the short, lower-case form
    (["--runner=FlinkRunner"], "FlinkRunner"),
    (["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"],
     "apache_beam.runners.direct.direct_runner.DirectRunner"),
])
def test_runners_beam_knows_are_accepted(argv, expected):
    assert check_runner(PipelineOptions(argv)) == expected


@pytest.mark.parametrize("argv, fragments", [
    (["--runner=Sparkle"], ("--runner=Sparkle", "known runners: ", "SparkRunner")),
    (["--runner=apache_beam.runners.NoSuchRunner"], ("cannot import", "'NoSuchRunner'")),
])
def test_unknown_runner_is_refused(argv, fragments):
    with pytest.raises(OptionsError) as info:
        check_runner(PipelineOptions(argv))
    assert info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in str(info.value)


def _worker_traceback(last_line: str) -> RuntimeError:
    return RuntimeError("Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n"
                        f"    raise\n{last_line}\n")


def test_a_worker_traceback_becomes_one_run_error_line():
    failure = worker_failure(_worker_traceback("ValueError: bad chunk [while running 'Ingest/QC']"))
    assert isinstance(failure, RunError) and failure.exit_code == 3
    assert "\n" not in str(failure)
    assert "a pipeline step failed: ValueError: bad chunk [while running 'Ingest/QC']" in \
        str(failure)


def test_our_errors_keep_their_exit_code_through_a_worker():
    failure = worker_failure(_worker_traceback("catalog.exceptions.DatasetLockedError: held"))
    assert failure.exit_code == 4
    failure = worker_failure(_worker_traceback("pipelines.exceptions.NoSuchError: x"))
    assert failure.exit_code == 3


def test_other_runtime_errors_are_left_alone():
    assert worker_failure(RuntimeError("input is already set.")) is None
