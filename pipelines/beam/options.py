"""Beam options of a run: which runner, how many worker threads, and two DirectRunner fixes.

Only the driver's ``run`` owns options (the composites in :mod:`pipelines.beam.transforms` never
read them); these functions decide them before anything is recorded, so a bad ``--runner`` is
refused before a run exists.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Sequence

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import worker_handlers

from pipelines.exceptions import OptionsError, RunError

_DIRECT_RUNNERS = ("DirectRunner", "direct", "SwitchingDirectRunner")


def pipeline_options(beam_args: Sequence[str], workers: int | str, chunks: int
                     ) -> tuple[PipelineOptions, int]:
    """Beam options for a run, and how many workers share this process's memory.

    On the DirectRunner, ``workers`` threads ("auto": one per CPU core, at most one per chunk)
    run the fused read-QC-validate-write stage in parallel (Beam's ``multi_threading`` mode).
    Threads, not processes: decompression, Arrow kernels, Parquet encoding and hashing release
    the GIL, while worker processes would each re-import Beam and the connectors (~4 s) and
    hold their own copy of them. Beam arguments given after ``--`` (``--direct_num_workers``,
    ``--direct_running_mode``, another runner) take precedence.
    """
    options = PipelineOptions(list(beam_args))
    given = any(a.split("=")[0] in ("--direct_num_workers", "--direct_running_mode")
                for a in beam_args)
    if not runner_is_direct(options):
        return options, 1
    if given:
        direct = options.view_as(DirectOptions)
        threads = direct.direct_num_workers if direct.direct_running_mode != "multi_processing" \
            else 1
        return options, max(1, threads if threads != 0 else (os.cpu_count() or 1))
    count = resolve_workers(workers, chunks)
    if count > 1:
        direct = options.view_as(DirectOptions)
        direct.direct_running_mode = "multi_threading"
        direct.direct_num_workers = count
    return options, count


def runner_name(options: PipelineOptions) -> str:
    """The ``--runner`` given, or Beam's default."""
    return options.view_as(StandardOptions).runner or "DirectRunner"


def check_runner(options: PipelineOptions) -> str:
    """The ``--runner`` a run will use, refused before anything starts when Beam has no such
    runner (Beam would only say so on entering the pipeline, after the run was recorded)."""
    name = options.view_as(StandardOptions).runner or "DirectRunner"
    if "." in name:  # a fully qualified PipelineRunner class
        module, _, cls = name.rpartition(".")
        try:
            getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as err:
            raise OptionsError(f"--runner={name}: cannot import runner class {cls!r} from "
                               f"{module!r} ({err}). Fix: check the name, or install the "
                               f"package that provides it") from err
        return name
    known = {path.rsplit(".", 1)[-1].lower() for path in StandardOptions.ALL_KNOWN_RUNNERS}
    if name.lower() not in known and name.lower() + "runner" not in known:
        raise OptionsError(f"--runner={name}: Beam has no such runner; known runners: "
                           f"{', '.join(StandardOptions.KNOWN_RUNNER_NAMES)} (or the full "
                           f"module.Class name of a PipelineRunner)")
    return name


#: a time-based flush that never comes in a batch run (about 11.6 days)
_NEVER_MS = 10**9


def no_partial_flushes() -> None:
    """Turn off the DirectRunner's time-based flush of worker output (Beam 2.77).

    In ``multi_threading`` mode each worker's output stream is also flushed by a timer thread
    every second (``worker_handlers.DATA_BUFFER_TIME_LIMIT_MS``), without waiting for the element
    being encoded to be complete (``data_plane.TimeBasedBufferingClosableOutputStream``; the
    size-based flush is called only between elements). A GroupByKey then decodes half an element
    and the run dies with "Invalid PaneInfoEncoding": seen about once per loaded full test suite
    (tests/pipelines/test_uniqueness_e2e.py with 2 workers), never on an idle machine. Batch
    runs gain nothing from a timed flush; the size-based one still bounds the buffers.
    """
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = _NEVER_MS


def runner_is_direct(options: PipelineOptions) -> bool:
    """Whether ``options`` run on the DirectRunner (the only runner whose workers we size)."""
    return (options.view_as(StandardOptions).runner or "DirectRunner") in _DIRECT_RUNNERS


def resolve_workers(workers: int | str, chunks: int) -> int:
    """``auto`` is one worker per CPU core; never more workers than chunks."""
    if workers == "auto":
        return max(1, min(os.cpu_count() or 1, chunks))
    count = int(workers)
    if count < 1:
        raise RunError(f"workers={workers!r}: a run needs at least one worker; "
                       "pass 'auto' (one per CPU core) or a positive number")
    return min(count, max(1, chunks))


#: our packages, whose exceptions carry an ``exit_code``
_OWN_PACKAGES = ("pipelines.", "connectors.", "catalog.", "expectations.")


def worker_failure(err: RuntimeError) -> RunError | None:
    """The error of a step that failed in a worker thread, as one line; None for other errors.

    Beam's multi-threaded DirectRunner hands a failed step back as ``RuntimeError(traceback
    text)``, the original exception lost but for the text's last line (``module.Type:
    message``). Our own errors keep their exit code.
    """
    text = str(err).strip()
    if not text.startswith("Traceback (most recent call last)"):
        return None
    last = text.splitlines()[-1].strip()
    failure = RunError(f"a pipeline step failed: {last}. Fix: correct the data or setting it "
                       f"names; run with --debug for the worker's traceback")
    qualified = last.split(":", 1)[0]
    if qualified.startswith(_OWN_PACKAGES):
        module, _, name = qualified.rpartition(".")
        try:
            failure.exit_code = getattr(importlib.import_module(module), name).exit_code
        except (ImportError, AttributeError):
            pass  # not one of ours after all: a run error
    return failure
