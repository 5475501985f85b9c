"""The names runs are recorded under: tags, the batch protocol, and the metric registry.

One place for every string the writer (a run, a batch) and the readers (queries, the
CLI, summaries, plots) must agree on. Pure data: no MLflow import.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------- run tags
SESSION = "session"  # the session (MLflow experiment) name, also on every run
STATUS = "status"  # FINISHED, FAILED or KILLED, as result.json says
ERROR = "error"  # the one-paragraph error of a FAILED or KILLED run
BACKEND_USED = "backend_used"  # the engine that ran (auto resolves to one)
CONFIG_HASH = "config_hash"  # hash of the result-affecting config (sweep.resume matches it)
CONFIG = "lret.config"  # that config as JSON: typed params for the readers
JOB_NUM = "job_num"  # the job's number in its sweep
LINEAGE_PARENT = "lret.lineage.parent"  # the run this run was derived from (lineage.parent)
# the process that runs it: a RUNNING run whose process is gone was killed (SIGKILL, a crash)
OWNER_HOST = "lret.owner.host"
OWNER_PID = "lret.owner.pid"
OWNER_STARTED = "lret.owner.started"  # the process's start time (pids are reused)

# ---------------------------------------------------------------- the batch protocol
# A multirun is one parent run (the batch); each job is a child run of it.
BATCH_TAG = "lret.batch"  # "true" on the parent run of a sweep
BATCH_ID = "batch_id"  # a short id of the batch, on its parent run
PARENT_RUN = "mlflow.parentRunId"  # on a child: its batch
BATCH_ENV = "LRET_BATCH_RUN_ID"  # the parent run id, handed to the jobs in their environment
SKIPPED_TAG = "lret.skipped."  # + job number, on the parent: the FINISHED run a resumed job reused
CANCELLED = "cancelled"  # "true" on a batch that did not run all its jobs
BATCH_COUNTS = ("completed", "failed", "killed", "skipped")  # metrics kept current on the parent

# ---------------------------------------------------------------- session state (experiment tags)
SESSION_STATUS = "lret.session.status"  # open or closed
SESSION_TIMEOUT = "lret.session.timeout_hours"  # idle hours before it expires (absent: never)
SESSION_ACCESS = "lret.session.last_access"  # ISO time of the last run or resume
SESSION_DESCRIPTION = "description"


# ---------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metric:
    """One result metric: how it is shown and which way is better."""

    key: str  # the result field and the MLflow metric key
    label: str  # for tables and axes
    fmt: str  # how tables format it: time mb sci 6f int g
    higher_is_better: bool | None  # None: neither (a property, not a score)
    unit: str = ""  # for axis labels
    optional: bool = False  # only some runs have it (a Hamiltonian, a target): hidden when absent

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


METRICS: tuple[Metric, ...] = (
    Metric("simulation_time_seconds", "simulation time", "time", False, "s"),
    Metric("final_rank", "final rank", "int", False),
    Metric("max_rank", "max rank", "int", False),
    Metric("memory_used_mb", "memory", "mb", False, "MB"),
    Metric("truncation_error", "truncation error", "sci", False),
    Metric("fidelity", "fidelity", "6f", True),
    Metric("trace_distance", "trace distance", "sci", False),
    Metric("purity", "purity", "6f", None),
    Metric("energy", "energy", "6f", False, optional=True),
    Metric("expected_cut", "expected cut", "g", True, optional=True),
    Metric("max_cut", "maximum cut", "int", None, optional=True),
    Metric("target_fidelity", "target fidelity", "6f", True, optional=True),
    Metric("two_qubit_gates", "two-qubit gates", "int", None),
)
METRIC = {m.key: m for m in METRICS}

# the metrics a sweep's summary table lists, and those `compare` ranks
SUMMARY_METRICS = (
    "simulation_time_seconds",
    "fidelity",
    "final_rank",
    "max_rank",
    "memory_used_mb",
    "truncation_error",
    "trace_distance",
)
COMPARED_METRICS = (
    "simulation_time_seconds",
    "fidelity",
    "final_rank",
    "memory_used_mb",
    "truncation_error",
)
RANK_METRIC = "rank"  # the rank after every moment, a stepped metric (step = moment)
EXPVAL_PREFIX = "expval_"  # + Pauli string: an observable's expectation value
OBJECTIVE_PREFIX = "objective."  # + metric: the value an Optuna trial returned for it


# ---------------------------------------------------------------- the typed config
# MLflow params are strings; the config that produced a run is also kept as JSON in
# tags (split into pieces that fit MLflow's tag length), so readers get its types back.
TAG_MAX_CHARS = 8000  # MLflow's limit on a tag value


def config_tags(config: dict[str, object]) -> dict[str, str]:
    """``{lret.config.0: ..., lret.config.1: ...}``: the config's JSON in tag-sized pieces."""
    import json

    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    pieces = [text[i : i + TAG_MAX_CHARS] for i in range(0, len(text), TAG_MAX_CHARS)] or [""]
    return {f"{CONFIG}.{i}": piece for i, piece in enumerate(pieces)}


def config_from_tags(tags: dict[str, str]) -> dict[str, object] | None:
    """The config :func:`config_tags` stored (None if the run has none)."""
    import json

    pieces = []
    while (piece := tags.get(f"{CONFIG}.{len(pieces)}")) is not None:
        pieces.append(piece)
    return json.loads("".join(pieces)) if pieces else None


def flatten(data: dict[str, object], prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}: how config keys are named as params; lists stay values."""
    out: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
