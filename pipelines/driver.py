"""The driver side of a run: plan, execute the Beam pipeline, validate, gate and commit.

Order of events, and what a crash at each point leaves behind:

1. plan sources (fingerprints, connector plans, suites)   — nothing written
2. take the dataset lock, record the run as ``running``    — a stale run, abandoned by the next run
3. run the pipeline into ``_staging/<run>``                — staging files, removed by the next run
4. merge summaries, check row accounting, validate, gate   — as above
5. move staging into the version folder, write manifest    — an unreferenced folder, removed by gc
6. one catalog transaction inserts the version and files   — the version exists, complete

A version is visible only after step 6, so a crash anywhere leaves no partial version and a
re-run starts clean. A run that fails (an error, SIGINT or SIGTERM) cleans up after itself: it
is marked failed, its staging and unreferenced folders are removed, its lock released; a signal
during steps 5-6 waits for the commit. Only a killed process leaves the work to the next run.

Step 1 is :mod:`pipelines.plan` (no catalog: ``haina check`` stops there). What a run decides
before it writes travels as one frozen :class:`RunContext` from step to step; the one thing
that changes as it goes, how far it got (published, committed), is its :class:`RunProgress`,
which failure handling reads. A :class:`Runner` holds only its settings: constructing one reads
and writes nothing, and its catalog is opened on first use.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from catalog import lease
from catalog import store as store_mod
from catalog.audit import log as audit
from catalog.documents import report as report_mod
from catalog.exceptions import CatalogError
from catalog.lineage import events as lineage_mod
from catalog.storage import manifest as manifest_mod
from catalog.storage import uri as uri_mod
from catalog.storage.warehouse import Warehouse
from expectations.validation import gate as gate_mod
from expectations.validation.ge.process import Judge
from pipelines import (
    accounting,
    diskfull,
    empty_sources,
    failures,
    incremental,
    interrupts,
    records,
)
from pipelines import plan as plan_mod
from pipelines.beam import options as beam_options
from pipelines.beam.options import check_runner, no_partial_flushes, worker_failure
from pipelines.beam.steps import Suite
from pipelines.beam.transforms import WRITE_BUFFER_BYTES, Ingest, counter_totals
from pipelines.exceptions import DiskFullError, EmptySourceError, GateFailedError
from pipelines.incremental import Delta, Source
from pipelines.interrupts import STAGING
from pipelines.plan import DatasetPlan, EntryPlan, columns_info, fingerprint
from pipelines.recipe import Recipe

#: columns_info, fingerprint and no_partial_flushes live elsewhere; the CLI and tests import
#: them from here, as before
__all__ = ["RunContext", "RunOutcome", "RunProgress", "Runner", "catalog_url", "check_runner",
           "code_version", "columns_info", "fingerprint", "no_partial_flushes",
           "resolve_warehouse", "worker_failure"]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a run did, for the CLI summary and for tests."""

    run_id: str
    dataset: str
    status: str
    version_id: str | None
    version_dir: str | None
    report_path: str | None
    counts: dict[str, int]
    sources: dict[str, dict[str, Any]]
    files: list[dict[str, Any]]
    gate_failures: tuple[str, ...]
    seconds: float
    validation: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    message: str | None = None
    carried_files: int = 0
    #: aggregate QARTOD flag counts per variable: {variable: {"1": n, "3": n, "4": n, ...}}
    qc_flags: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    #: the pipeline's Beam counters (``read.rows_in``, ``write.files_written``, ...; see
    #: pipelines.beam.transforms.COUNTERS), summed over steps; empty when nothing ran
    counters: dict[str, int] = dataclasses.field(default_factory=dict)


class Previous(NamedTuple):
    """The version an incremental run extends, and its manifest."""

    version: store_mod.VersionRecord
    manifest: manifest_mod.Manifest


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What one run decided before writing anything, handed to each of its steps."""

    recipe: Recipe
    run_id: str
    version_id: str
    staging: str
    #: time.monotonic() when the run started
    started: float
    delta: Delta
    previous: Previous | None
    #: sources left out because an ingested one has the same content (copy, original URI)
    copies: tuple[tuple[Source, str], ...]
    #: the new and changed sources, planned
    entries: tuple[EntryPlan, ...]
    dataset: DatasetPlan
    #: the Great Expectations helper process, or None to judge in this process
    judge: Judge | None


@dataclasses.dataclass
class RunProgress:
    """How far a run got: the one record that changes as it goes.

    Failure handling reads it: a version folder published but not committed is removed; once
    a version is committed nothing undoes the run (a later failure is a warning)."""

    published: str | None = None
    committed: str | None = None


@dataclasses.dataclass(frozen=True)
class Ingested:
    """What the pipeline produced: the merged run summary, the written files, its counters."""

    summary: dict[str, Any]
    files: list[dict[str, Any]]
    counters: dict[str, int]


@dataclasses.dataclass(frozen=True)
class Validated:
    """The validation report written for a run, the gate's decision, and the suite digests."""

    report_path: str
    gate: gate_mod.GateDecision
    validation: list[dict[str, Any]]


def code_version() -> str:
    """The installed Haina version, plus the git commit when running from a checkout."""
    version = metadata.version("haina")
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        try:
            sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                                 capture_output=True, text=True, timeout=5, check=True).stdout
            dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            version += f"+g{sha.strip()}" + (".dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    return version


def resolve_warehouse(recipe: Recipe | None, override: str | None = None) -> Warehouse:
    """--warehouse, else $HAINA_WAREHOUSE, else the recipe's ``warehouse``, else ./warehouse."""
    root = override or os.environ.get("HAINA_WAREHOUSE")
    if root is None and recipe is not None and recipe.warehouse:
        root = recipe.warehouse if uri_mod.scheme(recipe.warehouse) is not None \
            else str(recipe.base_dir / recipe.warehouse)
    root = root or "warehouse"
    return Warehouse(root if uri_mod.scheme(root) is not None else str(Path(root).resolve()))


def catalog_url(recipe: Recipe | None, warehouse: Warehouse, override: str | None = None) -> str:
    return (override or os.environ.get("HAINA_CATALOG_URL")
            or (recipe.catalog if recipe else None) or warehouse.catalog_url)


def read_json(uri: str) -> Any:
    with FileSystems.open(uri, compression_type="uncompressed") as handle:
        return json.load(handle)


def _remove_tree(uri: str) -> None:
    if FileSystems.exists(uri):
        FileSystems.delete([uri])


class Runner:
    """Executes one recipe. ``beam_args`` pass through to Beam's PipelineOptions.

    Holds settings only, fixed at construction (which reads and writes nothing); a run's own
    state travels in its :class:`RunContext` and :class:`RunProgress`.
    """

    def __init__(self, recipe: Recipe, *, beam_args: Sequence[str] = (), warehouse: str | None = None,
                 catalog: str | None = None, actor: str | None = None, wait_seconds: float = 0,
                 full: bool = False, workers: int | str = "auto", judge: Judge | None = None,
                 echo: Callable[[str], None] = lambda _msg: None,
                 warn: Callable[[str], None] = _log.warning) -> None:
        self.recipe = recipe
        self.workers = workers
        #: the Great Expectations helper process (expectations.validation.ge.process); the CLI
        #: starts one before its own imports, otherwise each run starts its own
        self.judge = judge
        self.beam_args = tuple(beam_args)
        self.warehouse = resolve_warehouse(recipe, warehouse)
        self.catalog_url = catalog_url(recipe, self.warehouse, catalog)
        self.actor = actor or store_mod.default_actor()
        self.wait_seconds = wait_seconds
        self.full = full
        self.echo = echo
        #: what the operator must read even when the run succeeds (stderr in the CLI)
        self.warn = warn

    @functools.cached_property
    def catalog(self) -> store_mod.Catalog:
        """Opened (and created) on first use, by a run: planning never needs it."""
        catalog = store_mod.open_catalog(self.catalog_url)
        catalog.actor = self.actor  # who the audit log names for this run's entries
        audit.use_warehouse(catalog, self.warehouse.root)
        return catalog

    # -- planning ------------------------------------------------------------------------------
    def plan(self) -> tuple[list[EntryPlan], pa.Schema, list[Suite]]:
        """Plan every matched file, as a full run would (``haina check``), without the catalog.

        The (entries, dataset schema, suites) triple the CLI prints; the whole frozen plan is
        :func:`pipelines.plan.plan_recipe`."""
        planned = plan_mod.plan_recipe(self.recipe, self.echo)
        return list(planned.entries), planned.dataset.schema, list(planned.dataset.suites)

    def previous(self) -> Previous | None:
        """The version an incremental run extends: the latest one that is not yanked."""
        try:
            versions = self.catalog.versions(self.recipe.name)
        except CatalogError:
            return None
        for version in reversed(versions):
            if version.state != "yanked":
                return Previous(version, manifest_mod.Manifest.read(version.path))
        return None

    # -- execution -----------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        started = time.monotonic()
        # refused before the run is recorded or anything is read: no half-begun run to clean up
        check_runner(PipelineOptions(list(self.beam_args)))
        self.warehouse.require_writable("nothing was run")
        # a process that has GE imported already (a scheduler running many recipes, a test
        # session) judges in-process; otherwise a helper imports GE on another core meanwhile
        own_judge = (self.judge is None and self.recipe.quality.enabled
                     and "great_expectations" not in sys.modules)
        judge = Judge().start() if own_judge else self.judge
        if judge is not None and not own_judge and not self.recipe.quality.enabled:
            judge.close()
        try:
            return self._run(judge, started)
        finally:
            if own_judge and judge is not None:
                judge.close()

    def _run(self, judge: Judge | None, started: float) -> RunOutcome:
        """Plan what is new since the previous version, then run it (or record no change)."""
        recipe = self.recipe
        sources = plan_mod.find_sources(recipe, self.echo)
        previous = self.previous()
        delta = incremental.delta(sources, previous.manifest if previous else None,
                                  recipe.sha256, recipe.incremental, self.full)
        self.echo(delta.describe())
        run_id, version_id = store_mod.new_run_id(), store_mod.new_version_id()
        if delta.nothing_to_do:
            return self._no_change(run_id, version_id, sources, delta, started)
        process, copies = incremental.same_content(delta.process, delta.carried_sources)
        for copy, original in copies:
            self.warn(f"{copy.uri} has the same content as {original} (sha256 {copy.sha256}); "
                      f"ingested once")
        entries = plan_mod.plan_sources(recipe, process)
        previous_schema = records.previous_schema(previous.version, delta) if previous else None
        dataset = plan_mod.plan_dataset(recipe, entries, previous_schema, delta.previous_version)
        return self._attempt(RunContext(
            recipe=recipe, run_id=run_id, version_id=version_id,
            staging=self.warehouse.staging_dir(run_id), started=started, delta=delta,
            previous=previous, copies=tuple(copies), entries=entries, dataset=dataset,
            judge=judge))

    def _attempt(self, ctx: RunContext) -> RunOutcome:
        """Lock, begin, execute and conclude one run; on any failure, clean up after it."""
        progress = RunProgress()
        failure: BaseException | None = None
        heartbeat = None
        try:
            heartbeat = self._lock(ctx.run_id)
            self._begin(ctx.run_id, ctx.version_id, ctx.entries, ctx.copies)
            self._lineage("START", lambda: self._lineage_context(ctx.run_id, ctx.dataset.schema))
            ingested = self._execute(ctx)
            return self._conclude(ctx, ingested, progress)
        except BaseException as err:
            failure = failures.run_failure(
                err, run_id=ctx.run_id, committed=progress.committed,
                warehouse_root=self.warehouse.root, catalog_url=self.catalog_url)
            self._clear(ctx.staging, progress)  # first: on a shared volume this frees room
            if progress.committed is None:
                self._fail(ctx.run_id, failure, quiet=isinstance(failure, DiskFullError))
            if failure is err:
                raise
            raise failure from err
        finally:
            self._clear(ctx.staging, progress)
            if heartbeat is not None:  # else the lock was never ours (or the catalog never open)
                heartbeat.stop()
                self._release(ctx.run_id, quiet=isinstance(failure, DiskFullError))

    def _no_change(self, run_id: str, version_id: str, sources: Sequence[Source], delta: Delta,
                   started: float) -> RunOutcome:
        """Nothing new or changed: record the run, commit no version, and say so."""
        heartbeat = self._lock(run_id)
        try:
            self._begin(run_id, version_id, ())
            self.catalog.finish_run(run_id, status="no_change",
                                    counts=dict.fromkeys(store_mod.COUNT_FIELDS, 0))
        finally:
            heartbeat.stop()
            self.catalog.release_lock(self.recipe.name, run_id)
        return RunOutcome(
            run_id=run_id, dataset=self.recipe.name, status="no_change", version_id=None,
            version_dir=None, report_path=None, counts={}, sources={}, files=[],
            gate_failures=(), seconds=time.monotonic() - started,
            message=(f"nothing new: all {len(sources)} source file(s) are unchanged since "
                     f"{delta.previous_version}; no version committed"))

    def _lock(self, run_id: str) -> lease.Heartbeat:
        """Register the dataset and take its lock: one run of a dataset at a time. The returned
        heartbeat renews the lock's lease until stopped (a dead run's lease runs out)."""
        name = self.recipe.name
        self.catalog.ensure_dataset(records.dataset_record(self.recipe))
        for stale in self.catalog.abandon_stale_runs(name, store_mod.process_is_alive):
            self.echo(f"run {stale} had died without finishing; marked abandoned")
        self.catalog.acquire_lock(name, run_id, wait_seconds=self.wait_seconds)
        return lease.Heartbeat(self.catalog, name, run_id).start()

    def _begin(self, run_id: str, version_id: str, entries: Sequence[EntryPlan],
               copies: Sequence[tuple[Source, str]] = ()) -> None:
        """Remove an interrupted run's leftovers, and record this run and its sources."""
        recipe = self.recipe
        for removed in self.warehouse.gc(self.catalog):
            self.echo(f"removed leftovers of an interrupted run: {removed}")
        self.catalog.begin_run(store_mod.RunRecord(
            run_id=run_id, dataset=recipe.name, version_id=version_id, status="running",
            recipe_path=str(recipe.path) if recipe.path else None, recipe_sha256=recipe.sha256,
            parameters={"beam_args": list(self.beam_args), "actor": self.actor,
                        "quality": recipe.quality.model_dump(mode="json"),
                        "output": recipe.output.model_dump(mode="json")},
            code_version=code_version(),
            runner=beam_options.runner_name(PipelineOptions(list(self.beam_args))),
            host=socket.gethostname(), pid=os.getpid(),
            started_at=dt.datetime.now(dt.UTC), ended_at=None, rows_in=0, rows_out=0,
            rows_dropped=0, rows_rejected=0, error=None, report_path=None,
        ), [store_mod.SourceRecord(run_id=run_id, uri=p.uri, sha256=p.sha256, size=p.size,
                                   kind=recipe.sources[i].kind, source_index=i)
            for i, p in entries]
           + [store_mod.SourceRecord(run_id=run_id, uri=c.uri, sha256=c.sha256, size=c.size,
                                     kind=recipe.sources[c.index].kind, source_index=c.index)
              for c, _ in copies])

    def _execute(self, ctx: RunContext) -> Ingested:
        """Run the Beam pipeline into the staging folder; read back its summary and file list."""
        plan = plan_mod.ingest_plan(ctx.recipe, ctx.entries, ctx.dataset, run_id=ctx.run_id,
                                    version_id=ctx.version_id, staging=ctx.staging)
        if not plan.chunks:  # only dropping sources that are gone: nothing to read
            return Ingested({"sources": {}, "metrics": {}}, [], {})
        options, workers = beam_options.pipeline_options(self.beam_args, self.workers,
                                                         len(plan.chunks))
        direct = beam_options.runner_is_direct(options)
        # the write buffer bounds the process's memory: its worker threads share it
        plan = dataclasses.replace(plan, max_buffered_bytes=WRITE_BUFFER_BYTES // workers,
                                   workers=workers if direct else 0)
        if direct:
            no_partial_flushes()
        self.echo(f"running {len(plan.chunks)} chunk(s) on {beam_options.runner_name(options)}"
                  + (f" with {workers} worker threads" if workers > 1 else ""))
        try:
            with beam.Pipeline(options=options) as pipeline:
                _ = pipeline | "Ingest" >> Ingest(plan)
        except RuntimeError as err:
            failure = worker_failure(err)
            if failure is None:
                raise
            raise failure from err
        results = [uri_mod.join(ctx.staging, "summary.json"),
                   uri_mod.join(ctx.staging, "files.json")]
        summary, files = (read_json(uri) for uri in results)
        FileSystems.delete(results)  # the staging folder becomes the version folder
        return Ingested(summary, files, _counters(pipeline))

    def _conclude(self, ctx: RunContext, ingested: Ingested, progress: RunProgress
                  ) -> RunOutcome:
        """Check the accounting, validate and gate, then publish and commit the version."""
        recipe, summary = ctx.recipe, ingested.summary
        accounting.check_read_errors(summary["sources"])
        counts = accounting.totals(summary["sources"])
        accounting.check_accounting(summary["sources"], ctx.entries, ingested.files)
        self.catalog.record_source_counts(ctx.run_id, summary["sources"])
        if not recipe.allow_empty:
            carried_rows = sum(f.rows or 0 for f in ctx.delta.reuse
                               if f.partition != incremental.QUARANTINE)
            empty_sources.check_not_empty(recipe, ctx.entries, summary["sources"], carried_rows)
        validated = self._validate(ctx, summary, counts)
        if not validated.gate.passed:
            self.catalog.finish_run(ctx.run_id, status="gate_failed",
                                    counts=accounting.catalog_counts(counts),
                                    error="; ".join(validated.gate.failures),
                                    report_path=validated.report_path)
            raise GateFailedError(
                "validation gate failed; no version was committed:\n  - "
                + "\n  - ".join(validated.gate.failures)
                + f"\nValidation report: {validated.report_path}\nFix: correct or exclude the "
                  f"bad source data, or relax quality.max_failing_fraction in {recipe.path}")
        version_dir = self.warehouse.version_dir(recipe.name, ctx.version_id)
        carried = self._carry_over(ctx)
        files = ingested.files + carried
        # a signal waits until the version is committed and its run marked so: a version is
        # whole or absent, and a committed version's run is never marked failed
        with interrupts.shielded():
            version = self._publish(ctx, summary, files, version_dir, counts,
                                    validated.validation, progress)
            self._after_commit(progress, "marking the run succeeded", lambda: self.catalog.finish_run(
                ctx.run_id, status="succeeded", counts=accounting.catalog_counts(counts),
                report_path=validated.report_path))
        self._after_commit(progress, "recording its COMPLETE lineage event", lambda: self._lineage(
            "COMPLETE", lambda: self._lineage_complete(version.version_id), strict=True))
        return RunOutcome(
            run_id=ctx.run_id, dataset=recipe.name, status="succeeded",
            version_id=version.version_id, version_dir=version_dir,
            report_path=validated.report_path, counts=counts, sources=summary["sources"],
            files=files, gate_failures=(), seconds=time.monotonic() - ctx.started,
            validation=validated.validation, carried_files=len(carried),
            message=ctx.delta.describe(),
            qc_flags={var: tests.get("aggregate", {})
                      for var, tests in (summary.get("qc") or {}).get("qc", {}).items()},
            counters=ingested.counters,
        )

    def _carry_over(self, ctx: RunContext) -> list[dict[str, Any]]:
        """Link the unchanged sources' files of the previous version into this one."""
        if not ctx.delta.reuse or ctx.previous is None:
            return []
        source_dir = ctx.previous.version.path
        for entry in ctx.delta.reuse:
            self.warehouse.link(uri_mod.join(source_dir, entry.path),
                                uri_mod.join(ctx.staging, entry.path))
        return [{**entry.to_json(), "carried_from": ctx.delta.previous_version}
                for entry in ctx.delta.reuse]

    def _validate(self, ctx: RunContext, summary: Mapping[str, Any], counts: Mapping[str, int]
                  ) -> Validated:
        """Judge the merged metrics, gate them, and write the run's validation report."""
        judge = ctx.judge or Judge()
        results = judge.results([dict(s) for s in ctx.dataset.suites], summary["metrics"])
        decision = gate_mod.evaluate_gate(results, ctx.recipe.quality)
        info = {"dataset": ctx.recipe.name, "run_id": ctx.run_id, "version_id": ctx.version_id,
                "recipe": str(ctx.recipe.path), "counts": counts,
                "qc": summary.get("qc") or {},
                "quarantine": accounting.quarantine_stats(summary["sources"])}
        run_dir = self.warehouse.run_dir(ctx.run_id)
        if uri_mod.scheme(run_dir) is None:  # a local folder; object stores have none
            Path(run_dir).mkdir(parents=True, exist_ok=True)
        _json_path, html_path = report_mod.write_report(results, decision, info, Path(run_dir))
        return Validated(str(html_path), decision, [records.suite_digest(r) for r in results])

    def _publish(self, ctx: RunContext, summary: Mapping[str, Any],
                 files: Sequence[Mapping[str, Any]], version_dir: str, counts: Mapping[str, int],
                 validation: list[dict[str, Any]], progress: RunProgress
                 ) -> store_mod.VersionRecord:
        """Move staging into the version folder, write its manifest, commit it in the catalog."""
        recipe = ctx.recipe
        progress.published = version_dir
        self.warehouse.publish(ctx.staging, version_dir)
        # the run row gets its counts at finish_run, after the commit; the manifest needs them now
        run = dataclasses.replace(self.catalog.run(ctx.run_id), rows_in=counts["rows_in"],
                                  rows_out=counts["rows_out"],
                                  rows_dropped=counts["rows_dropped"],
                                  rows_rejected=counts["rows_rejected"])
        file_records = records.file_records(files)
        data_only = [f for f in file_records if f.partition != "quarantine"]
        version = store_mod.VersionRecord(
            version_id=ctx.version_id, dataset=recipe.name, run_id=ctx.run_id, state="draft",
            created_at=dt.datetime.now(dt.UTC), path=version_dir, manifest_sha256="",
            rows=sum(f.rows for f in data_only), bytes=sum(f.bytes for f in data_only),
            file_count=len(data_only),
        )
        sources = self.catalog.sources(ctx.run_id) + records.carried_source_records(ctx.delta)
        manifest = manifest_mod.Manifest.build(
            records.dataset_info(recipe), version, run, file_records, sources, ctx.dataset.schema,
            {"row_accounting": {**counts, "per_source": summary["sources"]},
             "validation": validation,
             "attributions": records.attributions(recipe, ctx.entries),
             "incremental": records.incremental_section(ctx.delta, files),
             **records.splits_section(recipe, version_dir, data_only)},
        )
        _uri, manifest_sha = manifest.write(version_dir)
        version = dataclasses.replace(version, manifest_sha256=manifest_sha)
        self.catalog.commit_version(version, file_records)
        progress.published, progress.committed = None, ctx.version_id
        return version

    # -- lineage -------------------------------------------------------------------------------
    def _lineage(self, event_type: str, ctx_factory: Callable[[], lineage_mod.LineageContext],
                 *, strict: bool = False) -> None:
        """Emit an OpenLineage event; lineage trouble never masks the run's own outcome.

        ``strict`` lets the error through (the caller reports it); a full disk always goes
        through, since the run cannot go on without room to write.
        """
        try:
            lineage_mod.emit(self.catalog, self.warehouse, event_type, ctx_factory())
        except (CatalogError, OSError) as err:
            if strict or diskfull.is_disk_full(err):
                raise
            self.echo(f"lineage event {event_type} not recorded: {err}")

    def _recipe_text(self) -> str | None:
        return self.recipe.path.read_text(encoding="utf-8") if self.recipe.path else None

    def _lineage_context(self, run_id: str, schema: pa.Schema | None = None,
                         **extra: Any) -> lineage_mod.LineageContext:
        return lineage_mod.LineageContext(
            dataset=records.dataset_info(self.recipe), run=self.catalog.run(run_id),
            sources=tuple(self.catalog.sources(run_id)),
            columns=tuple(manifest_mod.schema_section(schema)) if schema is not None else (),
            recipe_text=self._recipe_text(), **extra)

    def _lineage_complete(self, version_id: str) -> lineage_mod.LineageContext:
        ctx = lineage_mod.context_for_version(self.catalog, self.warehouse, self.recipe.name,
                                              version_id)
        return dataclasses.replace(ctx, recipe_text=self._recipe_text())

    # -- failure -------------------------------------------------------------------------------
    def _fail(self, run_id: str, err: BaseException, quiet: bool = False) -> None:
        """Record the failure; trouble recording it (a full or unreachable catalog) is a warning
        (none when ``quiet``: the error says the disk is full), never an error in its place."""
        # a gate failure is recorded where the gate is judged; an empty result has no gate run
        if not isinstance(err, GateFailedError) or isinstance(err, EmptySourceError):
            status = "gate_failed" if isinstance(err, GateFailedError) else "failed"
            try:
                self.catalog.finish_run(run_id, status=status, counts={}, error=str(err)[:4000])
            except CatalogError:
                return  # the run was never begun (or is finished): nothing to record
            except Exception as record_err:  # noqa: BLE001 - any database error, reported below
                if not quiet:
                    self.warn(f"run {run_id} could not be marked failed in the catalog "
                              f"({failures.first_line(record_err)}); the next run of "
                              f"{self.recipe.name} marks it abandoned")
                return
        event = "ABORT" if isinstance(err, KeyboardInterrupt) else "FAIL"
        try:
            self._lineage(event, lambda: self._lineage_context(
                run_id, error=str(err)[:4000], stack_trace=traceback.format_exc()))
        except Exception as lineage_err:  # noqa: BLE001 - a full disk, reported, not raised
            if not quiet:
                self.warn(f"lineage event {event} of run {run_id} not recorded: "
                          f"{failures.first_line(lineage_err)}")

    def _after_commit(self, progress: RunProgress, what: str, step: Callable[[], None]) -> None:
        """Run a step that follows the commit: the version stands whatever happens, so a
        failure is a warning, not the run's outcome."""
        try:
            step()
        except Exception as err:  # noqa: BLE001 - reported, and the committed version stands
            where = diskfull.full_location(
                err, database=failures.catalog_location(self.catalog_url))
            reason = f"disk full at {where}" if where else failures.first_line(err)
            self.warn(f"version {progress.committed} is committed, but {what} failed: {reason}")

    def _clear(self, staging: str, progress: RunProgress) -> None:
        """Stop this run's writers, remove its staging folder and an uncommitted version folder."""
        STAGING.close(staging)
        for folder in (staging, progress.published):
            if folder is None:
                continue
            try:
                _remove_tree(folder)
            except OSError as err:
                self.warn(f"could not remove {folder} ({failures.first_line(err)}); the next "
                          f"run's clean-up removes it")
        progress.published = None

    def _release(self, run_id: str, quiet: bool = False) -> None:
        try:
            self.catalog.release_lock(self.recipe.name, run_id)
        except Exception as err:  # noqa: BLE001 - never in place of the run's own outcome
            if not quiet:
                self.warn(f"the lock of {self.recipe.name} held by run {run_id} could not be "
                          f"released ({failures.first_line(err)}); the next run takes it over")


def _counters(pipeline: beam.Pipeline) -> dict[str, int]:
    """The finished pipeline's ``haina`` counters; none where the runner cannot report them."""
    try:
        return counter_totals(pipeline.result.metrics())
    except (AttributeError, NotImplementedError):
        return {}
