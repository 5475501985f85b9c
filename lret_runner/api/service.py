"""What the REST API does, apart from HTTP: compose a request into a config, run it in a
worker process, read runs back. State lives in the MLflow store, not here.

- :meth:`Service.compose` turns a request into the config ``python -m lret_runner`` would
  run: the options are chosen by name, then each key is set on the composed config, which
  is in struct mode with the schemas of ``config/schemas.py`` (an unknown key or a wrong
  type fails there), then :func:`lret_runner.experiment.prepare` checks every range. Only
  the keys of the config groups can be set: no ``hydra.*``, no ``_target_``, no
  interpolations (``${...}``), no QASM path outside :attr:`Settings.qasm_dir`. A value past
  this server's limits (qubits, depth, shots) is refused too. Every refusal is a
  :class:`RequestError` naming the field.
- :meth:`Service.submit` opens the MLflow run at once (status ``pending``), so its id can
  be returned before the run starts, and hands the config to a process pool; the worker
  (:func:`lret_runner.api.worker.execute`) runs it through ``experiment.run`` into that run,
  exactly as the CLI records one.
- On start-up, runs the API opened whose server process is gone (a stop, a crash) are
  ended FAILED with ``interrupted``: a pending run is never silently dropped.
"""

from __future__ import annotations

import math
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lret_runner.errors import UserError

API_TAG = "lret.api"  # "true" on runs the API opened
PENDING = "pending"
STATUSES = ("pending", "running", "finished", "failed", "killed")
SECTIONS = ("circuit", "noise", "simulator", "backend", "run")
_FIELD = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+|\[\d+\])*)[=: ]", re.IGNORECASE)
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class RequestError(UserError):
    """A request that cannot run as given (HTTP 422): the field and the reason."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field if field is not None else _field_of(message)


def _field_of(message: str) -> str | None:
    found = _FIELD.match(message)
    return found.group(1) if found else None


@dataclass
class Settings:
    """The server's settings (``lret-runner serve`` options, or ``LRET_API_*``)."""

    root: Path = field(default_factory=Path.cwd)  # outputs and the default store live here
    tracking_uri: str | None = None  # null: $MLFLOW_TRACKING_URI, else root/mlruns/mlflow.db
    workers: int = 1  # processes that run experiments at once
    max_qubits: int = 20  # the largest circuit.n_qubits a request may ask for
    max_depth: int = 1000  # depth, layers, p or iterations
    max_shots: int = 1_000_000
    max_batch: int = 100  # experiments in one batch
    qasm_dir: Path | None = None  # QASM files a request may name (relative to it); null: none
    token: str | None = None  # LRET_API_TOKEN: every route but /health needs it as a bearer


class Service:
    """The API's work (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        from lret_runner.tracking import MlflowTracker, default_uri

        self.settings = settings
        self.uri = settings.tracking_uri or default_uri(settings.root)
        self.tracker = MlflowTracker(self.uri, None, 10.0)
        self.queries = self.tracker.queries
        self._compose_lock = threading.Lock()  # Hydra's global state: one composition at once
        self._futures: dict[str, Future[str]] = {}
        self._batches: dict[str, set[str]] = {}  # open batch -> its runs not yet ended
        self._batch_of: dict[str, str] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._manager: Any = None
        self._cancelled: Any = {}

    # ------------------------------------------------------------------ life cycle
    def start(self) -> list[str]:
        """Create the store, end the runs a stopped server left open; their ids."""
        import multiprocessing

        from lret_runner.tracking import vocabulary as V
        from lret_runner.tracking.owners import gone

        ended = []
        for run in self.queries.summaries(
            self.queries.experiment_ids(),
            f"tags.`{API_TAG}` = 'true' and attributes.status = 'RUNNING'",
        ):
            why = gone(run.tags)
            if why is None:
                continue  # another live server's run
            was = "before it started" if run.tags.get(V.STATUS) == PENDING else "while running"
            self.tracker.set_tags(
                run.run_id,
                {V.STATUS: "FAILED", V.ERROR: f"interrupted: the API server stopped {was} ({why})"},
            )
            self.tracker.end_run(run.run_id, "FAILED")
            ended.append(run.run_id)
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._manager = context.Manager()
        self._cancelled = self._manager.dict()  # run ids to stop (a set: the values are unused)
        from lret_runner.api.worker import warm

        self._pool = ProcessPoolExecutor(self.settings.workers, context, initializer=warm)
        return ended

    def stop(self) -> None:
        """Stop the workers now: a run they leave open is ended ``interrupted`` at the next
        start (its owner, this process, is gone by then)."""
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # idle workers would otherwise outlive the server
        pool.shutdown(wait=True, cancel_futures=True)
        self._manager.shutdown()

    # ------------------------------------------------------------------ compose
    def compose(self, request: Any) -> Any:
        """The validated config of a request (:class:`RequestError` otherwise)."""
        from hydra import compose, initialize_config_module
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        from lret_runner.config import CONF_PACKAGE, register_configs
        from lret_runner.tracking import vocabulary as V
        from lret_runner.tracking.sessions import check_name

        body = request.model_dump(exclude_none=True)
        _no_interpolation(body, "")
        overrides = []
        if "experiment" in body:
            overrides.append(f"+experiment={_preset(body['experiment'])}")
        for group in ("circuit", "noise", "simulator"):
            name = body.get(group, {}).get("name")
            if name is not None:
                overrides.append(f"{group}={_option(group, name)}")
        register_configs()
        try:
            with self._compose_lock, initialize_config_module(config_module=CONF_PACKAGE):
                cfg = compose(config_name="config", overrides=overrides)
        except HydraException as exc:
            raise RequestError(f"the request does not compose: {exc}") from None
        try:
            for section in SECTIONS:
                for key, value in body.get(section, {}).items():
                    if key == "name":  # the option: composed above; a name it cannot take
                        if str(value) != str(cfg[section].get("name", value)):
                            raise RequestError(
                                f"{section}.name={value!r} is invalid: this server has "
                                f"{section}={cfg[section].name} only",
                                f"{section}.name",
                            )
                        continue
                    where = f"{section}.{key}"
                    if not _KEY.match(str(key)) or key not in cfg[section]:
                        option = cfg[section].get("name", section)
                        allowed = ", ".join(k for k in cfg[section] if k != "name")
                        raise RequestError(
                            f"{where} is not a key of {section}={option}: allowed are {allowed}",
                            where,
                        )
                    cfg[section][key] = value
            try:
                cfg.session.name = check_name(body.get("session", "api"))
            except UserError as exc:
                raise RequestError(str(exc), "session") from None
            for key, value in body.get("tags", {}).items():
                why = V.check_user_tag(str(key), value)
                if why is not None:
                    raise RequestError(why, f"tags.{key}")
            cfg.tags = body.get("tags", {})
            cfg.lineage.parent = body.get("parent")
            cfg.tracking.tracking_uri = self.uri
            cfg.run.quiet = True
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", None)
            raise RequestError(f"{key}: {getattr(exc, 'msg', exc)}", key) from None
        self._check_path(cfg)
        _check_device(cfg)
        self._check_limits(cfg)
        try:
            prepared = _prepare(cfg)
        except UserError as exc:
            raise RequestError(str(exc)) from None
        if prepared.n_qubits > self.settings.max_qubits:
            raise RequestError(
                f"circuit.path: the file's circuit has {prepared.n_qubits} qubits, more than "
                f"this server's limit of {self.settings.max_qubits}",
                "circuit.path",
            )
        return OmegaConf.to_container(cfg, resolve=True)

    def _check_path(self, cfg: Any) -> None:
        path = cfg.circuit.get("path") if cfg.circuit.name == "qasm" else None
        if path is None:
            return
        folder = self.settings.qasm_dir
        if folder is None:
            raise RequestError(
                "circuit.path: this server takes no QASM files (start it with --qasm-dir DIR)",
                "circuit.path",
            )
        full = (folder / str(path)).resolve()
        if not full.is_relative_to(folder.resolve()):
            raise RequestError(
                f"circuit.path={path!r} is outside the server's QASM folder: name a file in it",
                "circuit.path",
            )
        cfg.circuit.path = str(full)

    def _check_limits(self, cfg: Any) -> None:
        s = self.settings
        limits = [("circuit.n_qubits", s.max_qubits, "--max-qubits")]
        limits += [
            (f"circuit.{k}", s.max_depth, "--max-depth")
            for k in ("depth", "layers", "p", "iterations")
        ]
        limits.append(("run.shots", s.max_shots, "--max-shots"))
        for key, most, option in limits:
            section, name = key.split(".")
            value = cfg[section].get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > most:
                raise RequestError(
                    f"{key}={value} is more than this server allows ({most}; the server's "
                    f"{option} setting)",
                    key,
                )

    # ------------------------------------------------------------------ submit and read
    def submit(self, request: Any) -> str:
        """Compose, open the run (pending) and queue it; the run id (any problem with the
        request, an unknown parent or an invalid session name included, is a 422)."""
        with _unprocessable():
            return self._submit(request)

    def _submit(self, request: Any) -> str:
        from lret_runner.experiment import open_run, run_tags
        from lret_runner.tracking import vocabulary as V

        config = self.compose(request)
        from omegaconf import OmegaConf

        cfg = OmegaConf.create(config)
        if cfg.lineage.parent is not None:
            self.tracker.require_run(cfg.lineage.parent, "parent")
        tags = run_tags(cfg, {API_TAG: "true", V.STATUS: PENDING})
        run_id = open_run(self.tracker, cfg, tags, cfg.circuit.get("n_qubits"))
        self._queue(run_id, config)
        return run_id

    def _queue(self, run_id: str, config: dict[str, Any]) -> None:
        from lret_runner.api.worker import execute

        if self._pool is None:
            raise RuntimeError("the service is not started")
        output_dir = self.settings.root / "outputs" / "api" / run_id
        future = self._pool.submit(
            execute, config, run_id, self.uri, str(output_dir), self._cancelled
        )
        self._futures[run_id] = future
        future.add_done_callback(lambda f: self._done(run_id, f))

    def _done(self, run_id: str, future: Future[str]) -> None:
        """A run cancelled before it started ends KILLED; a worker that died (or a pool
        shut down) leaves its run FAILED, not RUNNING; the last run of a batch closes it."""
        from lret_runner.tracking import vocabulary as V

        self._futures.pop(run_id, None)
        error = None if future.cancelled() else future.exception()
        try:
            if future.cancelled():
                why = "cancelled through the API before it started"
                self.tracker.set_tags(run_id, {V.STATUS: "KILLED", V.ERROR: why})
                self.tracker.end_run(run_id, "KILLED")
            elif error is not None:
                why = f"interrupted: {error!r}"
                self.tracker.set_tags(run_id, {V.STATUS: "FAILED", V.ERROR: why})
                self.tracker.end_run(run_id, "FAILED")
            batch = self._batch_of.pop(run_id, None)
            if batch is not None:
                self._batches[batch].discard(run_id)
                if not self._batches[batch]:
                    del self._batches[batch]
                    self._close_batch(batch)
        except Exception:  # the store is gone too: start-up cleanup will end what is open
            pass

    def submit_query(self, parsed: Any, session: str | None) -> dict[str, Any]:
        """Submit what a natural-language request was understood as: one experiment, or a
        batch for a sweep or a comparison."""
        from lret_runner.api.models import BatchRequest, ExperimentRequest

        body = {**parsed.experiment, "session": session or parsed.experiment.get("session", "api")}
        try:
            request = ExperimentRequest(**body)
        except ValueError as exc:
            message = f"text: the request maps to an invalid experiment: {exc}"
            raise RequestError(message, "text") from None
        if not parsed.sweep:
            return {"run_id": self.submit(request)}
        return self.submit_batch(BatchRequest(base=request, sweep=parsed.sweep))

    # ------------------------------------------------------------------ batches
    def submit_batch(self, request: Any) -> dict[str, Any]:
        """Compose every experiment first (one invalid: 422, nothing opened), then open the
        batch run and its children and queue them."""
        with _unprocessable():
            return self._submit_batch(request)

    def _submit_batch(self, request: Any) -> dict[str, Any]:
        import uuid

        from omegaconf import OmegaConf

        from lret_runner.experiment import open_run, run_tags
        from lret_runner.tracking import vocabulary as V

        bodies = _expand(request, self.settings.max_batch)
        configs = []
        for i, body in enumerate(bodies):
            try:
                configs.append(self.compose(body))
            except RequestError as exc:
                raise RequestError(
                    f"experiments[{i}]: {exc}", f"experiments[{i}].{exc.field}"
                ) from None
        first = OmegaConf.create(configs[0])
        batch_id = uuid.uuid4().hex[:12]
        parent = self.tracker.start_run(
            first.session.name,
            run_name=f"batch-{batch_id}",
            tags={**run_tags(first), V.BATCH_TAG: "true", V.BATCH_ID: batch_id, API_TAG: "true"},
        )
        self.tracker.log_metrics(parent, {"total": len(configs), "completed": 0, "failed": 0})
        run_ids = []
        for i, config in enumerate(configs):
            cfg = OmegaConf.create(config)
            tags = run_tags(cfg, {API_TAG: "true", V.STATUS: PENDING, V.PARENT_RUN: parent,
                                  V.JOB_NUM: i})  # fmt: skip
            run_ids.append(open_run(self.tracker, cfg, tags, cfg.circuit.get("n_qubits")))
        self._batches[parent] = set(run_ids)
        for run_id, config in zip(run_ids, configs, strict=True):
            self._batch_of[run_id] = parent
            self._queue(run_id, config)
        return {"batch_id": parent, "run_ids": run_ids, "total": len(run_ids)}

    def _close_batch(self, batch: str) -> None:
        from lret_runner.tracking import vocabulary as V

        children = self.queries.batch_children(batch)
        counts = self.tracker.refresh_counts(batch, children)
        status = "KILLED" if counts["killed"] else "FAILED" if counts["failed"] else "FINISHED"
        self.tracker.set_tags(batch, {V.CANCELLED: str(bool(counts["killed"])).lower(), **counts})
        self.tracker.end_run(batch, status)

    def batch(self, batch_id: str) -> dict[str, Any]:
        """A batch's progress and the records of its runs."""
        from lret_runner.errors import TrackingError
        from lret_runner.tracking import vocabulary as V

        if not re.fullmatch(r"[0-9a-f]{32}", batch_id):
            raise TrackingError(f"batch {batch_id!r} does not exist")
        parent = self.queries.resolve(batch_id)
        if parent.tags.get(V.BATCH_TAG) != "true":
            raise TrackingError(f"batch {batch_id!r} does not exist (that run is not a batch)")
        runs = [experiment_record(r) for r in self.queries.batch_children(batch_id)]
        tally = {s: sum(r["status"] == s for r in runs) for s in STATUSES}
        status = parent.status.lower() if parent.status != "RUNNING" else "running"
        return {
            "batch_id": batch_id,
            "status": status,
            "session": parent.session,
            "total": len(runs),
            "pending": tally["pending"],
            "running": tally["running"],
            "completed": tally["finished"],
            "failed": tally["failed"],
            "killed": tally["killed"],
            "results": runs,
        }

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Stop what has not finished: queued runs are dropped (KILLED), running ones are
        told to stop at their next moment (KILLED)."""
        current = self.batch(batch_id)
        for run in current["results"]:
            if run["status"] not in ("pending", "running"):
                continue
            future = self._futures.get(run["run_id"])
            if future is None or not future.cancel():
                self._cancelled[run["run_id"]] = True
        return self.batch(batch_id)

    def artifact(self, run_id: str, path: str) -> tuple[Path, Path]:
        """A local copy of one artifact of a run (a plot, counts.json) and the temporary
        folder holding it (the caller removes it); a path that leaves the run's artifacts
        (``..``, absolute) or does not exist is not found."""
        import tempfile

        from lret_runner.errors import TrackingError

        parts = Path(path).parts
        missing = TrackingError(f"artifact {path!r} of run {run_id} does not exist")
        if not parts or path.startswith("/") or any(p in ("..", ".") for p in parts):
            raise missing
        self.queries.resolve(run_id)
        folder = str(Path(*parts[:-1])) if len(parts) > 1 else None
        names = {a.path for a in self.queries.client.list_artifacts(run_id, folder)}
        if "/".join(parts) not in names:
            raise missing
        target = Path(tempfile.mkdtemp(prefix="lret-api-"))
        local = self.queries.client.download_artifacts(run_id, "/".join(parts), str(target))
        return Path(local), target

    @property
    def queue_depth(self) -> int:
        return sum(not f.done() for f in list(self._futures.values()))

    def get(self, run_id: str) -> dict[str, Any]:
        from lret_runner.errors import TrackingError

        if not re.fullmatch(r"[0-9a-f]{32}", run_id):
            raise TrackingError(f"run {run_id!r} does not exist")
        return experiment_record(self.queries.run_detail(run_id))

    def list(
        self, limit: int, status: str | None, session: str | None, tags: dict[str, str]
    ) -> tuple[int, list[dict[str, Any]]]:
        """Runs newest first (at most ``limit``) and how many match."""
        from lret_runner.tracking import vocabulary as V

        wanted = dict(tags)
        mlflow_status = None
        if status is not None:
            mlflow_status = "RUNNING" if status in ("pending", "running") else status.upper()
            if status == "pending":
                wanted[V.STATUS] = PENDING
        total = self.queries.count_runs(session, wanted, mlflow_status)
        if status != "running":
            runs = self.queries.runs(session, wanted, mlflow_status, limit)
            return total, [experiment_record(r) for r in runs]
        # running: RUNNING and not pending (a tag the store cannot filter out)
        pending = self.queries.count_runs(session, {**wanted, V.STATUS: PENDING}, mlflow_status)
        runs = self.queries.runs(session, wanted, mlflow_status, None)
        started = [r for r in runs if r.tags.get(V.STATUS) != PENDING]
        return total - pending, [experiment_record(r) for r in started[:limit]]

    def scrub(self, text: str) -> str:
        """``text`` without the tracking URI's password (an error message may quote it)."""
        from urllib.parse import urlsplit

        from lret_runner.tracking.store import redact

        try:
            password = urlsplit(self.uri).password
        except ValueError:
            password = None
        text = text.replace(self.uri, redact(self.uri))
        return text.replace(password, "***") if password else text

    def health(self) -> dict[str, Any]:
        from lret_runner import __version__
        from lret_runner.tracking.store import redact

        try:
            self.queries.experiment_ids()
            reachable = True
        except Exception:
            reachable = False
        return {
            "status": "ok" if reachable else "degraded",
            "version": __version__,
            "tracking_store": redact(self.uri),
            "tracking_reachable": reachable,
            "queue_depth": self.queue_depth,
            "workers": self.settings.workers,
        }


@contextmanager
def _unprocessable() -> Iterator[None]:
    """A user error while a request is submitted is the request's: a :class:`RequestError`."""
    try:
        yield
    except RequestError:
        raise
    except UserError as exc:
        raise RequestError(str(exc)) from None


def _expand(request: Any, limit: int) -> list[Any]:
    """The experiments of a batch request: its list, or every combination of its sweep
    applied to its base; more than ``limit`` is refused before any is made (a sweep's size
    is the product of its lists' lengths), and so are experiments in several sessions."""
    import itertools

    from lret_runner.api.models import ExperimentRequest

    if (request.experiments is None) == (request.sweep is None):
        raise RequestError("a batch needs either experiments or base and sweep", "experiments")
    size = (
        len(request.experiments)
        if request.experiments is not None
        else math.prod(len(v) for v in request.sweep.values())
    )
    if size > limit:
        raise RequestError(
            f"the batch has {size:,} experiments, more than this server allows "
            f"({limit}; the server's --max-batch setting)",
            "experiments" if request.experiments is not None else "sweep",
        )
    if request.experiments is not None:
        bodies = list(request.experiments)
    else:
        base = (request.base or ExperimentRequest()).model_dump(exclude_none=True)
        keys = list(request.sweep)
        for key in keys:
            section, _, name = key.partition(".")
            if section not in SECTIONS or not name or "." in name or not request.sweep[key]:
                raise RequestError(
                    f"sweep.{key}: a swept key is SECTION.KEY ({', '.join(SECTIONS)}) with a "
                    "non-empty list of values",
                    f"sweep.{key}",
                )
        bodies = []
        for values in itertools.product(*(request.sweep[k] for k in keys)):
            body = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
            for key, value in zip(keys, values, strict=True):
                section, _, name = key.partition(".")
                body.setdefault(section, {})[name] = value
            bodies.append(ExperimentRequest(**body))
    if request.session is not None:
        bodies = [b.model_copy(update={"session": request.session}) for b in bodies]
    if not bodies:
        raise RequestError("the batch has no experiments", "experiments")
    sessions = [b.session for b in bodies]
    for i, session in enumerate(sessions):
        if session != sessions[0]:
            raise RequestError(
                f"experiments[{i}].session={session!r} differs from experiments[0]'s "
                f"({sessions[0]!r}): a batch is one run in one session; set the batch's "
                "session, or submit one batch per session",
                f"experiments[{i}].session",
            )
    return bodies


def experiment_record(run: Any) -> dict[str, Any]:
    """A run as the API shows it (status in lower case; pending until a worker starts it)."""
    from lret_runner.tracking import vocabulary as V

    status = run.status.lower()
    if run.status == "RUNNING":
        status = PENDING if run.tags.get(V.STATUS) == PENDING else "running"
    return {
        "run_id": run.run_id,
        "status": status,
        "session": run.session,
        "run_name": run.run_name,
        "started": run.started,
        "ended": run.ended,
        "error": run.error,
        "params": run.params,
        "metrics": run.metrics,
        "tags": {k: v for k, v in run.tags.items() if not k.startswith(("mlflow.", V.CONFIG))},
        "counts": getattr(run, "counts", None),
        "rank_history": getattr(run, "rank_history", None),
    }


def _prepare(cfg: Any) -> Any:
    from lret_runner.experiment import prepare

    return prepare(cfg)


def _check_device(cfg: Any) -> None:
    """A request may name a shipped device snapshot, not a file on this server."""
    if cfg.noise.name != "device":
        return
    from lret_runner.devices import is_shipped, shipped

    if not is_shipped(cfg.noise.device):
        raise RequestError(
            f"noise.device={cfg.noise.device!r}: this server takes the shipped device snapshots "
            f"only ({', '.join(shipped())}), not files",
            "noise.device",
        )


def _no_interpolation(value: Any, where: str) -> None:
    """Refuse ``${...}`` anywhere in a request: values are data, never interpolations."""
    if isinstance(value, dict):
        for key, item in value.items():
            _no_interpolation(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_interpolation(item, f"{where}[{i}]")
    elif isinstance(value, str) and "${" in value:
        raise RequestError(f"{where}: interpolations (${{...}}) are not accepted", where)


def _option(group: str, name: Any) -> str:
    shipped = sorted(p.stem for p in (_conf_dir() / group).glob("*.yaml"))
    if name not in shipped:
        raise RequestError(
            f"{group}.name={name!r} is invalid: must be one of {', '.join(shipped)}",
            f"{group}.name",
        )
    return str(name)


def _preset(name: Any) -> str:
    single = sorted(
        p.stem
        for p in (_conf_dir() / "experiment").glob("*.yaml")
        if "hydra:" not in p.read_text()  # sweep presets set hydra.sweeper.params
    )
    if name not in single:
        raise RequestError(
            f"experiment={name!r} is invalid: must be one of {', '.join(single)} "
            "(sweep presets run as batches)",
            "experiment",
        )
    return str(name)


def _conf_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "conf"


# the integer settings: keyword (--option) -> the environment variable read when unset
LIMIT_ENV = {
    "workers": "LRET_API_WORKERS",
    "max_qubits": "LRET_API_MAX_QUBITS",
    "max_depth": "LRET_API_MAX_DEPTH",
    "max_shots": "LRET_API_MAX_SHOTS",
    "max_batch": "LRET_API_MAX_BATCH",
}
QASM_DIR_ENV = "LRET_API_QASM_DIR"


def env_settings(**given: Any) -> Settings:
    """Settings from arguments, then ``LRET_API_*`` environment variables, then defaults;
    each checked (a :class:`ConfigError` names the variable or ``--qasm-dir``, its value
    and what is allowed: an integer >= 1, an existing directory)."""
    from lret_runner.errors import ConfigError

    values = {k: v for k, v in given.items() if v is not None}
    for key, var in LIMIT_ENV.items():
        if key not in values and os.environ.get(var):
            text = os.environ[var]
            try:
                values[key] = int(text.strip())
            except ValueError:
                values[key] = 0
            if values[key] < 1:
                raise ConfigError(f"{var}={text!r} is invalid: must be an integer >= 1")
    setting = "--qasm-dir"
    if "qasm_dir" not in values and os.environ.get(QASM_DIR_ENV):
        values["qasm_dir"], setting = Path(os.environ[QASM_DIR_ENV]), QASM_DIR_ENV
    folder = values.get("qasm_dir")
    if folder is not None and not Path(folder).is_dir():
        what = "is not a directory" if Path(folder).exists() else "does not exist"
        raise ConfigError(
            f"{setting}={folder} {what}: name the folder of the QASM files requests may use"
        )
    values.setdefault("token", os.environ.get("LRET_API_TOKEN") or None)
    return Settings(**values)
