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
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import functools
import hashlib
import importlib
import json
import logging
import math
import os
import socket
import subprocess
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

import connectors
from catalog import lease
from catalog import store as store_mod
from catalog.audit import log as audit
from catalog.exceptions import CatalogError
from catalog.storage import manifest as manifest_mod
from catalog.storage import writer
from catalog.storage.filesystems import require_filesystem
from catalog.storage.warehouse import Warehouse
from connectors import integrity
from connectors.base import SourcePlan
from connectors.exceptions import SourceNotFoundError
from expectations.exceptions import ExpectationsError
from expectations.qc import apply as qc_apply
from expectations.qc import plan as qc_plan_mod
from expectations.validation import checks as checks_mod
from expectations.validation import suites as suites_mod
from expectations.validation.ge_process import Judge
from pipelines import diskfull, empty_sources, incremental, interrupts, prehash
from pipelines import schemas as schemas_mod
from pipelines import splits as splits_mod
from pipelines.beam.transforms import WRITE_BUFFER_BYTES, Ingest, IngestPlan
from pipelines.exceptions import (
    DiskFullError,
    EmptySourceError,
    GateFailedError,
    OptionsError,
    RunError,
    SourceReadError,
)
from pipelines.incremental import Delta, Source
from pipelines.interrupts import STAGING
from pipelines.recipe import Recipe

_HASH_BLOCK = prehash.BLOCK
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunOutcome:
    """What a run did, for the CLI summary and for tests."""

    run_id: str
    dataset: str
    status: str
    version_id: str | None
    version_dir: str | None
    report_path: str | None
    counts: dict[str, int]
    sources: dict[str, dict]
    files: list[dict]
    gate_failures: tuple[str, ...]
    seconds: float
    validation: list[dict] = dataclasses.field(default_factory=list)
    message: str | None = None
    carried_files: int = 0
    #: aggregate QARTOD flag counts per variable: {variable: {"1": n, "3": n, "4": n, ...}}
    qc_flags: dict = dataclasses.field(default_factory=dict)


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
        root = recipe.warehouse if "://" in recipe.warehouse else str(recipe.base_dir / recipe.warehouse)
    root = root or "warehouse"
    return Warehouse(root if "://" in root else str(Path(root).resolve()))


def catalog_url(recipe: Recipe | None, warehouse: Warehouse, override: str | None = None) -> str:
    return (override or os.environ.get("HAINA_CATALOG_URL")
            or (recipe.catalog if recipe else None) or warehouse.catalog_url)


def _absolute(pattern: str, base: Path) -> str:
    if "://" in pattern or os.path.isabs(pattern):
        return pattern
    return os.path.normpath(base.resolve() / pattern)


def match_sources(recipe: Recipe) -> list[tuple[int, str]]:
    """Expand every source's URI globs; an empty glob is an error naming it."""
    found = []
    for index, source in enumerate(recipe.sources):
        for pattern in source.uris():
            absolute = _absolute(pattern, recipe.base_dir)
            require_filesystem(absolute, f"{recipe.path}: sources[{index}].uri")
            metadata_list = FileSystems.match([absolute])[0].metadata_list
            paths = sorted(m.path for m in metadata_list)
            if not paths:
                raise SourceNotFoundError(
                    f"{recipe.path}: sources[{index}].uri {pattern!r} matches no file "
                    f"(looked for {absolute})",
                    fix="check the path and glob; relative paths are relative to the recipe file",
                )
            for path in paths:  # before fingerprinting: reading a named pipe blocks forever
                integrity.check_regular(path)
            found.extend((index, path) for path in paths)
    return found


def fingerprint(uri: str) -> tuple[str, int]:
    """sha256 and size of a file's content, streamed through Beam's filesystems.

    A local file the CLI hashed while Beam imported (:mod:`pipelines.prehash`) is not read again.
    """
    ahead = prehash.take(uri)
    if ahead is not None:
        return ahead
    digest, size = hashlib.sha256(), 0
    with FileSystems.open(uri, compression_type="uncompressed") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def fingerprint_sources(recipe: Recipe, matched: Sequence[tuple[int, str]]) -> list[Source]:
    """Fingerprint every matched file once (several entries may name one file), several at a
    time (hashlib releases the GIL)."""
    uris = list(dict.fromkeys(uri for _, uri in matched))
    if len(uris) < 2:
        digests = dict(zip(uris, map(fingerprint, uris)))
    else:
        with concurrent.futures.ThreadPoolExecutor(min(len(uris), os.cpu_count() or 1, 8)) as pool:
            digests = dict(zip(uris, pool.map(fingerprint, uris)))
    return [Source(index, uri, *digests[uri]) for index, uri in matched]


def plan_sources(recipe: Recipe, sources: Sequence[Source]) -> list[tuple[int, SourcePlan]]:
    plans = []
    for source in sources:
        config = recipe.sources[source.index]
        plan = connectors.get(config.kind).plan(config, source.uri, source.sha256, source.size)
        # connectors plan one file without knowing which recipe source it belongs to
        chunks = tuple(dataclasses.replace(c, source_index=source.index) for c in plan.chunks)
        plans.append((source.index, dataclasses.replace(plan, chunks=chunks)))
    for index, config in enumerate(recipe.sources):  # checks across one source's files
        connectors.get(config.kind).check_source(config, [p for i, p in plans if i == index])
    return plans


def dataset_schema(recipe: Recipe, plans) -> pa.Schema:
    """The union of the sources' schemas, after checking drift between files of a source."""
    per_source = schemas_mod.source_schemas(len(recipe.sources), plans, recipe.schema_drift)
    return splits_mod.with_split_field(
        schemas_mod.union([s for s in per_source if s is not None]), recipe.splits)


def extend_previous(recipe: Recipe, schema: pa.Schema, previous: pa.Schema | None,
                    previous_id: str | None) -> pa.Schema:
    """The new version's schema, checked for drift against the version it extends."""
    if previous is None:
        return schema
    schemas_mod.check_drift(previous, schema, recipe.schema_drift,
                            what=f"since version {previous_id}")
    return schemas_mod.union([previous, schema])


def columns_info(schema: pa.Schema) -> list[connectors.ColumnInfo]:
    infos = []
    for field in schema:
        meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        get = lambda key: meta.get(f"haina.{key}")  # noqa: E731
        infos.append(connectors.ColumnInfo(
            name=field.name, role=get("role") or "variable", units=get("units"),
            standard_name=get("standard_name"), long_name=get("long_name"),
            source_name=get("source_name"), source_units=get("source_units"),
            conversion=get("conversion"),
        ))
    return infos


def write_options(recipe: Recipe, schema: pa.Schema) -> writer.WriteOptions:
    roles = {info.name: info.role for info in columns_info(schema)}
    dictionary = tuple(n for n in schema.names
                       if roles.get(n) in ("coordinate", "id", "source") or n == "source_file")
    floats = tuple(f.name for f in schema
                   if pa.types.is_floating(f.type) and f.name not in dictionary)
    out = recipe.output
    return writer.WriteOptions(
        compression=out.compression, compression_level=out.compression_level,
        row_group_rows=out.row_group_rows, dictionary_columns=dictionary,
        byte_stream_split_columns=floats,
    )


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
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = _NEVER_MS


def runner_is_direct(options: PipelineOptions) -> bool:
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


def read_json(uri: str):
    with FileSystems.open(uri, compression_type="uncompressed") as handle:
        return json.load(handle)


def _remove_tree(uri: str) -> None:
    if FileSystems.exists(uri):
        FileSystems.delete([uri])


class Runner:
    """Executes one recipe. ``beam_args`` pass through to Beam's PipelineOptions."""

    def __init__(self, recipe: Recipe, *, beam_args: Sequence[str] = (), warehouse: str | None = None,
                 catalog: str | None = None, actor: str | None = None, wait_seconds: float = 0,
                 full: bool = False, workers: int | str = "auto", judge: Judge | None = None,
                 echo: Callable[[str], None] = lambda _msg: None,
                 warn: Callable[[str], None] = _log.warning):
        self.recipe = recipe
        self.workers = workers
        #: the Great Expectations helper process (expectations.validation.ge_process); the CLI starts one
        #: before its own imports, otherwise each run starts its own
        self.judge = judge
        self.beam_args = list(beam_args)
        self.warehouse = resolve_warehouse(recipe, warehouse)
        self.catalog_url = catalog_url(recipe, self.warehouse, catalog)
        self.actor = actor or store_mod.default_actor()
        self.wait_seconds = wait_seconds
        self.full = full
        self.echo = echo
        #: what the operator must read even when the run succeeds (stderr in the CLI)
        self.warn = warn
        #: the version folder published but not yet committed (removed if the run fails), and
        #: the version committed (after which nothing undoes the run)
        self._unpublished: str | None = None
        self._committed: str | None = None

    @functools.cached_property
    def catalog(self) -> store_mod.Catalog:
        """Opened (and created) on first use: ``haina check`` plans without it, creating nothing."""
        catalog = store_mod.open_catalog(self.catalog_url)
        catalog.actor = self.actor
        audit.use_warehouse(catalog, self.warehouse.root)
        return catalog

    # -- planning ------------------------------------------------------------------------------
    def match(self) -> list[Source]:
        """Every source file the recipe's globs match, fingerprinted by content."""
        matched = match_sources(self.recipe)
        self.echo(f"fingerprinting {len(matched)} source file(s)")
        return fingerprint_sources(self.recipe, matched)

    def qc_plan(self, schema: pa.Schema):
        """The QC tests and thresholds for the dataset's columns, resolved once here."""
        qc = self.recipe.quality.qc
        return qc_plan_mod.plan_qc(columns_info(schema), qc, qc.region)

    def with_qc(self, schema: pa.Schema):
        """The dataset schema with its QC flag columns, and the QC plan that makes them.

        Both are kept for :meth:`ingest_plan`: a schema with flag columns (never null) needs
        the plan that fills them."""
        self._read_schema = schema
        plan = self._qc_plan = self.qc_plan(schema)
        return schemas_mod.union([qc_apply.extend_schema(schema, plan)]), plan

    def suites(self, schema: pa.Schema) -> list[dict]:
        if not self.recipe.quality.enabled:
            return []
        try:
            return suites_mod.suites_for(columns_info(schema), self.recipe.quality,
                                         self.recipe.coverage, self.recipe.base_dir)
        except ExpectationsError as err:
            if not (err.where or "").startswith("quality.") or self.recipe.path is None:
                raise
            # a recipe setting the data contradicts: name the recipe file too
            raise type(err)(err.reason, where=f"{self.recipe.path}: {err.where}",
                            fix=err.fix) from err

    def plan(self) -> tuple[list[tuple[int, SourcePlan]], pa.Schema, list[dict]]:
        """Plan every matched file, as a full run would (``haina check``)."""
        plans = plan_sources(self.recipe, self.match())
        schema, _qc = self.with_qc(dataset_schema(self.recipe, plans))
        self.check_splits(schema)
        return plans, schema, self.suites(schema)

    def check_splits(self, schema: pa.Schema) -> None:
        """``splits.by`` names columns the dataset has: refused here, not inside the pipeline."""
        where = f"{self.recipe.path}: " if self.recipe.path else ""
        splits_mod.check_columns(schema, self.recipe.splits, where)

    def previous(self) -> tuple[store_mod.VersionRecord, dict] | None:
        """The version an incremental run extends: the latest one that is not yanked."""
        try:
            versions = self.catalog.versions(self.recipe.name)
        except CatalogError:
            return None
        for version in reversed(versions):
            if version.state != "yanked":
                return version, manifest_mod.read_manifest(version.path)
        return None

    # -- execution -----------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        started = time.monotonic()
        # refused before the run is recorded or anything is read: no half-begun run to clean up
        check_runner(PipelineOptions(self.beam_args))
        self.warehouse.require_writable("nothing was run")
        # a process that has GE imported already (a scheduler running many recipes, a test
        # session) judges in-process; otherwise a helper imports GE on another core meanwhile
        own_judge = (self.judge is None and self.recipe.quality.enabled
                     and "great_expectations" not in sys.modules)
        if own_judge:
            self.judge = Judge().start()  # imports GE on another core while this run plans
        elif self.judge is not None and not self.recipe.quality.enabled:
            self.judge.close()
        try:
            return self._run(started)
        finally:
            if own_judge:
                self.judge.close()
                self.judge = None

    def _run(self, started: float) -> RunOutcome:
        sources = self.match()
        previous = self.previous()
        delta = incremental.delta(sources, previous[1] if previous else None, self.recipe.sha256,
                                  self.recipe.incremental, self.full)
        self.echo(delta.describe())
        run_id, version_id = store_mod.new_run_id(), store_mod.new_version_id()
        if delta.nothing_to_do:
            return self._no_change(run_id, version_id, sources, delta, started)
        process, copies = incremental.same_content(delta.process, delta.carried_sources)
        for copy, original in copies:
            self.warn(f"{copy.uri} has the same content as {original} (sha256 {copy.sha256}); "
                      f"ingested once")
        plans = plan_sources(self.recipe, process)
        previous_schema = _previous_schema(previous[0], delta) if previous else None
        if plans or previous_schema is None:
            schema, _qc = self.with_qc(dataset_schema(self.recipe, plans))
            schema = extend_previous(self.recipe, schema, previous_schema, delta.previous_version)
        else:  # nothing to read (only copies, or only dropping sources): as the files carried
            schema = previous_schema
        # the carried files were validated in their own version: only what is read is judged
        self.check_splits(schema)
        suites = self.suites(schema) if plans else []
        staging = self.warehouse.staging_dir(run_id)
        self._unpublished = self._committed = failure = None
        heartbeat = None
        try:
            heartbeat = self._lock(run_id)
            self._begin(run_id, version_id, plans, copies)
            self._lineage("START", lambda: self._lineage_context(run_id, schema))
            summary, files = self._execute(run_id, version_id, plans, schema, suites, staging)
            return self._conclude(run_id, version_id, plans, schema, suites, summary, files,
                                  staging, started, delta, previous)
        except BaseException as err:
            failure = self._failure(run_id, err)
            self._clear(staging)  # first: on a shared volume this frees room for the records
            if self._committed is None:
                self._fail(run_id, failure, quiet=isinstance(failure, DiskFullError))
            if failure is err:
                raise
            raise failure from err
        finally:
            self._clear(staging)
            if heartbeat is not None:  # else the lock was never ours (or the catalog never open)
                heartbeat.stop()
                self._release(run_id, quiet=isinstance(failure, DiskFullError))

    def _no_change(self, run_id, version_id, sources, delta: Delta, started) -> RunOutcome:
        """Nothing new or changed: record the run, commit no version, and say so."""
        heartbeat = self._lock(run_id)
        try:
            self._begin(run_id, version_id, [])
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
        recipe = self.recipe
        self.catalog.ensure_dataset(store_mod.DatasetRecord(
            name=recipe.name, title=recipe.title, description=recipe.description,
            licence=recipe.licence, owner_name=recipe.owner.name, owner_email=recipe.owner.email,
            attribution=recipe.attribution, classification=recipe.classification,
            created_at=None,
        ))
        for stale in self.catalog.abandon_stale_runs(recipe.name, store_mod.process_is_alive):
            self.echo(f"run {stale} had died without finishing; marked abandoned")
        self.catalog.acquire_lock(recipe.name, run_id, wait_seconds=self.wait_seconds)
        return lease.Heartbeat(self.catalog, recipe.name, run_id).start()

    def _begin(self, run_id: str, version_id: str, plans, copies=()) -> None:
        recipe = self.recipe
        for removed in self.warehouse.gc(self.catalog):
            self.echo(f"removed leftovers of an interrupted run: {removed}")
        options = PipelineOptions(self.beam_args)
        runner = options.view_as(StandardOptions).runner or "DirectRunner"
        self.catalog.begin_run(store_mod.RunRecord(
            run_id=run_id, dataset=recipe.name, version_id=version_id, status="running",
            recipe_path=str(recipe.path) if recipe.path else None, recipe_sha256=recipe.sha256,
            parameters={"beam_args": self.beam_args, "actor": self.actor,
                        "quality": recipe.quality.model_dump(mode="json"),
                        "output": recipe.output.model_dump(mode="json")},
            code_version=code_version(), runner=runner, host=socket.gethostname(), pid=os.getpid(),
            started_at=dt.datetime.now(dt.UTC), ended_at=None, rows_in=0, rows_out=0,
            rows_dropped=0, rows_rejected=0, error=None, report_path=None,
        ), [store_mod.SourceRecord(run_id=run_id, uri=p.uri, sha256=p.sha256, size=p.size,
                                   kind=recipe.sources[i].kind, source_index=i)
            for i, p in plans]
           + [store_mod.SourceRecord(run_id=run_id, uri=c.uri, sha256=c.sha256, size=c.size,
                                     kind=recipe.sources[c.index].kind, source_index=c.index)
              for c, _ in copies])

    def ingest_plan(self, run_id, version_id, plans, schema, suites, staging) -> IngestPlan:
        """Everything the Beam pipeline needs, decided here in the driver."""
        recipe = self.recipe
        kv = {"haina.dataset": recipe.name, "haina.version": version_id, "haina.run_id": run_id,
              "haina.licence": recipe.licence}
        if recipe.attribution:
            kv["haina.attribution"] = recipe.attribution
        return IngestPlan(
            chunks=[c for _, p in plans for c in p.chunks],
            configs=list(recipe.sources),
            schemas={store_mod.source_key(i, p.uri): p.schema for i, p in plans},
            dataset_schema=schema,
            checks=checks_mod.compile_checks(suites) if suites else (),
            suites=suites,
            engine=recipe.quality.engine,
            staging=staging,
            kv_metadata=kv,
            write_options=write_options(recipe, schema),
            partition_by=recipe.output.partition_by,
            splits=recipe.splits,
            target_bytes=int(recipe.output.target_file_mb * 2**20),
            qc_plan=getattr(self, "_qc_plan", None),
            read_schema=getattr(self, "_read_schema", None),
        )

    def _execute(self, run_id, version_id, plans, schema, suites, staging):
        plan = self.ingest_plan(run_id, version_id, plans, schema, suites, staging)
        if not plan.chunks:  # only dropping sources that are gone: nothing to read
            return {"sources": {}, "metrics": {}}, []
        options, workers = pipeline_options(self.beam_args, self.workers, len(plan.chunks))
        # the write buffer bounds the process's memory: its worker threads share it
        plan = dataclasses.replace(plan, max_buffered_bytes=WRITE_BUFFER_BYTES // workers,
                                   workers=workers if runner_is_direct(options) else 0)
        runner = options.view_as(StandardOptions).runner or "DirectRunner"
        if runner_is_direct(options):
            no_partial_flushes()
        self.echo(f"running {len(plan.chunks)} chunk(s) on {runner}"
                  + (f" with {workers} worker threads" if workers > 1 else ""))
        try:
            with beam.Pipeline(options=options) as pipeline:
                _ = pipeline | "Ingest" >> Ingest(plan)
        except RuntimeError as err:
            failure = worker_failure(err)
            if failure is None:
                raise
            raise failure from err
        results = [f"{staging}/summary.json", f"{staging}/files.json"]
        summary, files = (read_json(uri) for uri in results)
        FileSystems.delete(results)  # the staging folder becomes the version folder
        return summary, files

    def _conclude(self, run_id, version_id, plans, schema, suites, summary, files, staging, started,
                  delta: Delta, previous):
        recipe = self.recipe
        errors = [e for rec in summary["sources"].values() for e in rec["errors"]]
        if errors:
            distinct = sorted(set(errors))
            raise SourceReadError(f"{distinct[0]} (no version was committed)" if len(distinct) == 1
                                  else "sources failed while reading; no version was committed:"
                                  "\n  - " + "\n  - ".join(distinct))
        counts = _totals(summary["sources"])
        _check_accounting(summary["sources"], plans, files)
        self.catalog.record_source_counts(run_id, summary["sources"])
        if not recipe.allow_empty:
            carried_rows = sum(f["rows"] for f in delta.reuse
                               if f["partition"] != incremental.QUARANTINE)
            empty_sources.check_not_empty(recipe, plans, summary["sources"], carried_rows)
        report_path, gate, validation = self._validate(run_id, version_id, suites, summary, counts)
        if not gate.passed:
            self.catalog.finish_run(run_id, status="gate_failed", counts=_catalog_counts(counts),
                                    error="; ".join(gate.failures), report_path=report_path)
            raise GateFailedError(
                "validation gate failed; no version was committed:\n  - "
                + "\n  - ".join(gate.failures)
                + f"\nValidation report: {report_path}\nFix: correct or exclude the bad source "
                  f"data, or relax quality.max_failing_fraction in {recipe.path}")
        version_dir = self.warehouse.version_dir(recipe.name, version_id)
        carried = self._carry_over(delta, previous, staging)
        # a signal waits until the version is committed and its run marked so: a version is
        # whole or absent, and a committed version's run is never marked failed
        with interrupts.shielded():
            version = self._publish(run_id, version_id, plans, schema, summary, files + carried,
                                    staging, version_dir, counts, validation, delta)
            self._after_commit("marking the run succeeded", lambda: self.catalog.finish_run(
                run_id, status="succeeded", counts=_catalog_counts(counts),
                report_path=report_path))
        self._after_commit("recording its COMPLETE lineage event", lambda: self._lineage(
            "COMPLETE", lambda: self._lineage_complete(version.version_id), strict=True))
        return RunOutcome(
            run_id=run_id, dataset=recipe.name, status="succeeded", version_id=version.version_id,
            version_dir=version_dir, report_path=report_path, counts=counts,
            sources=summary["sources"], files=files + carried, gate_failures=(),
            seconds=time.monotonic() - started, validation=validation,
            carried_files=len(carried), message=delta.describe(),
            qc_flags={var: tests.get("aggregate", {})
                      for var, tests in (summary.get("qc") or {}).get("qc", {}).items()},
        )

    def _carry_over(self, delta: Delta, previous, staging: str) -> list[dict]:
        """Link the unchanged sources' files of the previous version into this one."""
        if not delta.reuse:
            return []
        source_dir = previous[0].path
        for entry in delta.reuse:
            self.warehouse.link(f"{source_dir}/{entry['path']}", f"{staging}/{entry['path']}")
        return [{**entry, "carried_from": delta.previous_version} for entry in delta.reuse]

    def _validate(self, run_id, version_id, suites, summary, counts):
        from catalog.documents import report as report_mod
        from expectations.validation import gate as gate_mod

        judge = self.judge or Judge()
        results = judge.results(suites, summary["metrics"])  # GE's JSON suite results
        decision = gate_mod.evaluate_gate(results, self.recipe.quality)
        info = {"dataset": self.recipe.name, "run_id": run_id, "version_id": version_id,
                "recipe": str(self.recipe.path), "counts": counts,
                "qc": summary.get("qc") or {}, "quarantine": _quarantine_stats(summary)}
        run_dir = self.warehouse.run_dir(run_id)
        Path(run_dir).mkdir(parents=True, exist_ok=True) if "://" not in run_dir else None
        _json_path, html_path = report_mod.write_report(results, decision, info, Path(run_dir))
        validation = [_suite_digest(r) for r in results]
        return str(html_path), decision, validation

    def _publish(self, run_id, version_id, plans, schema, summary, files, staging, version_dir,
                 counts, validation, delta: Delta):
        recipe = self.recipe
        data_files = sorted(files, key=lambda f: f["path"])
        self._unpublished = version_dir
        self.warehouse.publish(staging, version_dir)
        # the run row gets its counts at finish_run, after the commit; the manifest needs them now
        run = dataclasses.replace(self.catalog.run(run_id), **_catalog_counts(counts))
        file_records = [store_mod.FileRecord(
            path=f["path"], sha256=f["sha256"], rows=f["rows"], bytes=f["bytes"],
            partition=f["partition"], source_sha256=f["source_sha256"],
            time_min=_parse_time(f["time_min"]), time_max=_parse_time(f["time_max"]),
            content_sha256=f.get("content_sha256"),
        ) for f in data_files]
        data_only = [f for f in file_records if f.partition != "quarantine"]
        version = store_mod.VersionRecord(
            version_id=version_id, dataset=recipe.name, run_id=run_id, state="draft",
            created_at=dt.datetime.now(dt.UTC), path=version_dir, manifest_sha256=None,
            rows=sum(f.rows for f in data_only), bytes=sum(f.bytes for f in data_only),
            file_count=len(data_only),
        )
        sources = self.catalog.sources(run_id) + [
            store_mod.SourceRecord(run_id=s.get("run_id") or "", uri=s["uri"], sha256=s["sha256"],
                                   size=s["size"], kind=s["kind"],
                                   source_index=s.get("source_index", 0))
            for s in delta.carried_sources]
        manifest = manifest_mod.build_manifest(
            _dataset_info(recipe), version, run, file_records, sources, schema,
            {"row_accounting": {**counts, "per_source": summary["sources"]},
             "validation": validation,
             "attributions": _attributions(recipe, plans),
             "incremental": _incremental_section(delta, files),
             **_splits_section(recipe, version_dir, data_only)},
        )
        _uri, manifest_sha = manifest_mod.write_manifest(manifest, version_dir)
        version = dataclasses.replace(version, manifest_sha256=manifest_sha)
        self.catalog.commit_version(version, file_records)
        self._unpublished, self._committed = None, version_id
        return version

    # -- lineage -------------------------------------------------------------------------------
    def _lineage(self, event_type: str, ctx_factory, *, strict: bool = False) -> None:
        """Emit an OpenLineage event; lineage trouble never masks the run's own outcome.

        ``strict`` lets the error through (the caller reports it); a full disk always goes
        through, since the run cannot go on without room to write.
        """
        from catalog.lineage import events as lineage_mod

        try:
            lineage_mod.emit(self.catalog, self.warehouse, event_type, ctx_factory())
        except (CatalogError, OSError) as err:
            if strict or diskfull.is_disk_full(err):
                raise
            self.echo(f"lineage event {event_type} not recorded: {err}")

    def _lineage_context(self, run_id: str, schema: pa.Schema | None = None, **extra):
        from catalog.lineage import events as lineage_mod

        return lineage_mod.LineageContext(
            dataset=_dataset_info(self.recipe), run=self.catalog.run(run_id),
            sources=tuple(self.catalog.sources(run_id)),
            columns=tuple(manifest_mod.schema_section(schema)) if schema is not None else (),
            recipe_text=self.recipe.path.read_text(encoding="utf-8") if self.recipe.path else None,
            **extra)

    def _lineage_complete(self, version_id: str):
        from catalog.lineage import events as lineage_mod

        ctx = lineage_mod.context_for_version(self.catalog, self.warehouse, self.recipe.name,
                                              version_id)
        text = self.recipe.path.read_text(encoding="utf-8") if self.recipe.path else None
        return dataclasses.replace(ctx, recipe_text=text)

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
                              f"({_first_line(record_err)}); the next run of "
                              f"{self.recipe.name} marks it abandoned")
                return
        event = "ABORT" if isinstance(err, KeyboardInterrupt) else "FAIL"
        try:
            self._lineage(event, lambda: self._lineage_context(
                run_id, error=str(err)[:4000], stack_trace=traceback.format_exc()))
        except Exception as lineage_err:  # noqa: BLE001 - a full disk, reported, not raised
            if not quiet:
                self.warn(f"lineage event {event} of run {run_id} not recorded: "
                          f"{_first_line(lineage_err)}")

    def _failure(self, run_id: str, err: BaseException) -> BaseException:
        """The error to report for ``err``: an interruption or a full disk said plainly."""
        if isinstance(err, KeyboardInterrupt):
            return interrupts.as_interrupted(err, run_id=run_id, committed=self._committed)
        if isinstance(err, DiskFullError):
            return err
        where = diskfull.full_location(err, database=_catalog_location(self.catalog_url))
        if where is None:
            return err
        where = where or self.warehouse.root
        volume = _volume(where)
        catalog = where == _catalog_location(self.catalog_url)
        return DiskFullError(
            f"disk full at {where}: run {run_id} failed and nothing was committed"
            + ("; a full catalog cannot record that, so the next run marks the run abandoned "
               "and takes over its lock" if catalog else "")
            + f". Fix: free space on {f'the volume mounted at {volume}' if volume else 'it'}"
            f"{f' (df -h {volume})' if volume else ''}, or point --warehouse or --catalog at a "
            f"larger one, then re-run")

    def _after_commit(self, what: str, step: Callable[[], None]) -> None:
        """Run a step that follows the commit: the version stands whatever happens, so a
        failure is a warning, not the run's outcome."""
        try:
            step()
        except Exception as err:  # noqa: BLE001 - reported, and the committed version stands
            where = diskfull.full_location(err, database=_catalog_location(self.catalog_url))
            reason = f"disk full at {where}" if where else _first_line(err)
            self.warn(f"version {self._committed} is committed, but {what} failed: {reason}")

    def _clear(self, staging: str) -> None:
        """Stop this run's writers, remove its staging folder and an uncommitted version folder."""
        STAGING.close(staging)
        for folder in (staging, self._unpublished):
            if folder is None:
                continue
            try:
                _remove_tree(folder)
            except OSError as err:
                self.warn(f"could not remove {folder} ({_first_line(err)}); the next run's "
                          f"clean-up removes it")
        self._unpublished = None

    def _release(self, run_id: str, quiet: bool = False) -> None:
        try:
            self.catalog.release_lock(self.recipe.name, run_id)
        except Exception as err:  # noqa: BLE001 - never in place of the run's own outcome
            if not quiet:
                self.warn(f"the lock of {self.recipe.name} held by run {run_id} could not be "
                          f"released ({_first_line(err)}); the next run takes it over")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _volume(path: str) -> str | None:
    """The mount point holding a local path (which may be gone: a removed staging file)."""
    if "://" in path:
        return None
    current = os.path.abspath(path)
    while not os.path.exists(current) or not os.path.ismount(current):
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return current


def _catalog_location(url: str) -> str:
    """Where a catalog lives, for messages: a SQLite file's path, else the URL sans password."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def _quarantine_stats(summary: dict) -> dict:
    by_source = {uri: rec["quarantine_reasons"] for uri, rec in summary["sources"].items()
                 if rec["quarantine_reasons"]}
    by_reason: dict[str, int] = {}
    for reasons in by_source.values():
        for reason, n in reasons.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return {"by_reason": by_reason, "by_source": by_source}


def _splits_section(recipe: Recipe, version_dir: str, data_files) -> dict:
    """The manifest's ``splits`` entry: seed, target and achieved fractions (rows per split are
    counted from the written files' ``split`` column alone, carried files included)."""
    if recipe.splits is None:
        return {}
    counts = splits_mod.count_splits_in_files([f"{version_dir}/{f.path}" for f in data_files])
    return {"splits": splits_mod.manifest_entry(recipe.splits, counts)}


def _incremental_section(delta: Delta, files: list[dict]) -> dict:
    return {
        "previous_version": delta.previous_version, "full_reason": delta.full_reason,
        "new_sources": list(delta.new), "changed_sources": list(delta.changed),
        "unchanged_sources": list(delta.unchanged), "removed_sources": list(delta.removed),
        "carried_files": {f["path"]: f["carried_from"] for f in files if f.get("carried_from")},
    }


def _previous_schema(version: store_mod.VersionRecord, delta: Delta) -> pa.Schema | None:
    """The schema of the files a run carries over, read from one of them (their footer)."""
    data = [f for f in delta.reuse if f["partition"] != incremental.QUARANTINE]
    if not data:
        return None
    schema = pq.read_schema(FileSystems.open(f"{version.path}/{data[0]['path']}"))
    return schema.remove_metadata()


def _parse_time(value):
    return dt.datetime.fromisoformat(value) if value else None


def _catalog_counts(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in ("rows_in", "rows_out", "rows_dropped", "rows_rejected")}


def _totals(sources: dict[str, dict]) -> dict[str, int]:
    keys = ("rows_in", "rows_out", "rows_dropped", "rows_quarantined", "chunks")
    totals = {k: sum(rec[k] for rec in sources.values()) for k in keys}
    totals["source_files"] = len(sources)
    totals["rows_rejected"] = totals["rows_quarantined"]
    return totals


def _check_accounting(sources: dict[str, dict], plans, files: list[dict]) -> None:
    """Every input row is in the output, dropped as fill, or quarantined — and the files agree."""
    expected_chunks = {store_mod.source_key(i, p.uri): len(p.chunks) for i, p in plans}
    for uri, n_chunks in expected_chunks.items():
        got = sources.get(uri, {}).get("chunks", 0)
        if got != n_chunks:
            raise RunError(f"{uri}: {got} of {n_chunks} chunks were processed; no version was "
                           f"committed. Fix: re-run; if it repeats, report it as a bug")
    for uri, rec in sources.items():
        if rec["rows_in"] != rec["rows_out"] + rec["rows_dropped"] + rec["rows_quarantined"]:
            raise RunError(f"{uri}: row accounting does not balance: rows in {rec['rows_in']} != "
                           f"out {rec['rows_out']} + dropped {rec['rows_dropped']} + quarantined "
                           f"{rec['rows_quarantined']}; no version was committed")
    written = sum(f["rows"] for f in files if f["partition"] != "quarantine")
    out = sum(rec["rows_out"] for rec in sources.values())
    if written != out:
        raise RunError(f"data files hold {written} rows but {out} were produced; no version was "
                       f"committed")


def _jsonable(value):
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf", "-inf", "nan": the manifest is strict JSON (RFC 8259)
    return value


def _suite_digest(result: dict) -> dict:
    """A short, JSON-able account of one suite's result (GE's JSON) for the manifest."""
    stats = result.get("statistics") or {}
    unexpected = []
    for item in result["results"]:
        counts = item.get("result") or {}
        if counts.get("unexpected_count"):
            config = item["expectation_config"]
            unexpected.append({
                "expectation": config["type"],
                "column": (config.get("kwargs") or {}).get("column"),
                "unexpected_count": counts["unexpected_count"],
                "element_count": counts.get("element_count"),
                "partial_unexpected_list": [_jsonable(v) for v in
                                            counts.get("partial_unexpected_list", [])[:5]],
            })
    return {"suite": result["suite_name"], "success": bool(result["success"]),
            "evaluated": stats.get("evaluated_expectations"),
            "successful": stats.get("successful_expectations"),
            "unexpected": unexpected}


def _dataset_info(recipe: Recipe) -> dict:
    return {"name": recipe.name, "title": recipe.title, "description": recipe.description,
            "licence": recipe.licence, "owner": recipe.owner.model_dump(),
            "attribution": recipe.attribution, "classification": recipe.classification,
            "coverage": recipe.coverage.model_dump(mode="json")}


def _attributions(recipe: Recipe, plans) -> list[str]:
    found = [recipe.attribution] if recipe.attribution else []
    for index, _plan in plans:
        text = recipe.sources[index].attribution
        if text and text not in found:
            found.append(text)
    return found
