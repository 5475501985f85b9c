"""The names runs are recorded under: tags, the batch protocol, and the metric registry.

One place for every string the writer (a run, a batch) and the readers (queries, the
CLI, summaries, plots) must agree on. Pure data: no MLflow import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------- run tags
SESSION = "session"  # the session (MLflow experiment) name, also on every run
STATUS = "status"  # FINISHED, FAILED or KILLED, as result.json says
ERROR = "error"  # the one-paragraph error of a FAILED or KILLED run
BACKEND_USED = "backend_used"  # the engine that ran (auto resolves to one)
CONFIG_HASH = "config_hash"  # hash of the result-affecting config (sweep.resume matches it)
CONFIG = "lret.config"  # that config as JSON: typed params for the readers
JOB_NUM = "job_num"  # the job's number in its sweep
# how the figures against the noiseless circuit and the exact state were obtained, or why not
IDEAL_REFERENCE = "ideal_reference"
EXACT_REFERENCE = "exact_reference"
# the accuracy contract's outcome as JSON ({target, achieved, kind, met}, lret_runner.accuracy),
# and as a metric (1 met, 0 not) for searches such as "metrics.accuracy_met = 0"
ACCURACY = "lret.accuracy"
ACCURACY_MET = "accuracy_met"
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
# What each figure is measured against: every view names it, so no fidelity stands bare.
NOISELESS = "the noiseless circuit"  # its state vector, same circuit without noise
EXACT = "the exact state of the same noisy circuit"  # fdm's: the engine's accuracy
BOUND = "a proven bound on the trace distance to the exact state"
TARGET = "optimize.target"

# The sections of a run's summary, in the order every view shows them: (title, reference)
SECTIONS = {
    "noise": ("noise", "against " + NOISELESS),
    "task": ("task", ""),
    "accuracy": ("engine accuracy", "against " + EXACT),
    "rank": ("ranks", ""),
    "cost": ("cost", ""),
}


@dataclass(frozen=True)
class Metric:
    """One result figure: how it is shown, which way is better, what it is measured against."""

    key: str  # the result field and the MLflow metric key
    label: str  # for tables and axes
    fmt: str  # how tables format it: time mb sci 6f int g
    higher_is_better: bool | None  # None: neither (a property, not a score)
    section: str  # the summary section (a key of SECTIONS)
    reference: str = ""  # what it is measured against ("" for a property of the run)
    unit: str = ""  # for axis labels
    optional: bool = False  # only some runs have it (a Hamiltonian, a target): hidden when absent

    @property
    def axis_label(self) -> str:
        return f"{self.label} ({self.unit})" if self.unit else self.label


METRICS: tuple[Metric, ...] = (
    Metric("ideal_fidelity", "fidelity to noiseless", "6f", True, "noise", NOISELESS),
    Metric("ideal_tvd", "TVD to noiseless output", "sci", False, "noise", NOISELESS),
    Metric(
        "ideal_hellinger_fidelity",
        "Hellinger fidelity to noiseless",
        "6f",
        True,
        "noise",
        NOISELESS,
    ),
    Metric("xeb_fidelity", "linear XEB (exact)", "6f", True, "noise", NOISELESS, optional=True),
    Metric(
        "xeb_fidelity_sampled",
        "linear XEB (from counts)",
        "6f",
        True,
        "noise",
        NOISELESS,
        optional=True,
    ),
    Metric("purity", "purity", "6f", None, "noise"),
    Metric("energy", "energy", "6f", False, "task", optional=True),
    Metric("ideal_energy", "noiseless energy", "6f", None, "task", NOISELESS, optional=True),
    Metric("expected_cut", "expected cut", "g", True, "task", optional=True),
    Metric("max_cut", "maximum cut", "int", None, "task", optional=True),
    Metric("target_fidelity", "fidelity to target", "6f", True, "task", TARGET, optional=True),
    Metric("exact_fidelity", "fidelity to exact", "6f", True, "accuracy", EXACT),
    Metric("exact_trace_distance", "trace distance to exact", "sci", False, "accuracy", EXACT),
    Metric("truncation_error", "truncation error bound", "sci", False, "accuracy", BOUND),
    Metric("largest_rank", "largest rank kept", "int", False, "rank"),
    Metric("final_rank", "final rank", "int", False, "rank"),
    # LRET: k channel branches times r columns, before the truncation cuts them (not a rank:
    # it may exceed 2^n)
    Metric(
        "widest_factor", "widest factor before truncation", "int", False, "rank", unit="columns"
    ),
    Metric("simulation_time_seconds", "simulation time", "time", False, "cost", unit="s"),
    # simulator=trajectories: the pure-state trajectories its estimates are the mean of
    Metric("trajectories", "trajectories sampled", "int", None, "cost", optional=True),
    Metric("memory_used_mb", "memory", "mb", False, "cost", unit="MB"),
    Metric("two_qubit_gates", "two-qubit gates", "int", None, "cost"),
)
METRIC = {m.key: m for m in METRICS}

# the metrics a sweep's summary table lists, those `compare` ranks, and those a listing shows
SUMMARY_METRICS = (
    "ideal_fidelity",
    "ideal_tvd",
    "exact_fidelity",
    "truncation_error",
    "final_rank",
    "largest_rank",
    "simulation_time_seconds",
    "memory_used_mb",
)
COMPARED_METRICS = (
    "ideal_fidelity",
    "ideal_tvd",
    "exact_fidelity",
    "truncation_error",
    "final_rank",
    "simulation_time_seconds",
    "memory_used_mb",
)
LISTED_METRICS = ("simulation_time_seconds", "ideal_fidelity", "exact_fidelity", "final_rank")
RANK_METRIC = "rank"  # the rank after every moment, a stepped metric (step = moment)
# 1 after a moment that LRET ended holding a dense matrix, else 0 (a stepped metric)
DENSE_METRIC = "dense"
EXPVAL_PREFIX = "expval_"  # + Pauli string: an observable's expectation value
IDEAL_EXPVAL_PREFIX = "ideal_expval_"  # + Pauli string: its value in the noiseless circuit
OBJECTIVE_PREFIX = "objective."  # + metric: the value an Optuna trial returned for it
# metric + this: its standard error (simulator=trajectories estimates figures by sampling),
# e.g. ideal_fidelity_se, expval_ZZ_se; probabilities_se: the largest over the measured
# outcomes' probabilities (the key of RunResult.standard_errors is the metric's)
SE_SUFFIX = "_se"


def dense_spans(flags: list[bool]) -> list[list[int]]:
    """[first, last] moment of every run of True in ``flags`` (LRET's dense phases)."""
    spans: list[list[int]] = []
    for moment, dense in enumerate(flags):
        if dense and spans and spans[-1][1] == moment - 1:
            spans[-1][1] = moment
        elif dense:
            spans.append([moment, moment])
    return spans


def dense_flags(spans: list[list[int]] | None, moments: int) -> list[int]:
    """1 for every moment inside one of ``spans``, else 0 (:data:`DENSE_METRIC`'s series)."""
    flags = [0] * moments
    for first, last in spans or []:
        flags[first : last + 1] = [1] * (last + 1 - first)
    return flags


# ---------------------------------------------------------------- result schema versions
# Version 2 (this one) named the engine-accuracy figures exact_*, added the figures against
# the noiseless circuit and split max_rank into largest_rank and widest_factor. A run
# without the tag is version 1: its metrics are read under today's names.
RESULT_SCHEMA = "lret.result_schema"
RESULT_SCHEMA_VERSION = "2"
LEGACY_METRICS = {  # version 1 name -> today's name (the same figure)
    "fidelity": "exact_fidelity",
    "trace_distance": "exact_trace_distance",
    "max_rank": "widest_factor",
}


def current_metrics(metrics: dict[str, float], tags: dict[str, str]) -> dict[str, float]:
    """A run's metrics under today's names (a version 1 run's renamed, see LEGACY_METRICS)."""
    if tags.get(RESULT_SCHEMA) is not None:
        return metrics
    return {LEGACY_METRICS.get(k, k): v for k, v in metrics.items()}


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
    """The config :func:`config_tags` stored (None if the run has none, or if its pieces do
    not read back as a config: the run's string params are used instead)."""
    import json

    pieces = []
    while (piece := tags.get(f"{CONFIG}.{len(pieces)}")) is not None:
        pieces.append(piece)
    if not pieces:
        return None
    try:
        config = json.loads("".join(pieces))
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


# ---------------------------------------------------------------- a user's tags (tags.KEY)
# the tags the runner writes besides its lret.* and mlflow.* ones: a user's tag may not set
# them (a reader would misread the run, an owner tag would leave it pending for good)
RUNNER_TAGS = frozenset(
    {
        SESSION, STATUS, ERROR, BACKEND_USED, CONFIG_HASH, JOB_NUM, IDEAL_REFERENCE,
        EXACT_REFERENCE, ACCURACY_MET, BATCH_ID, CANCELLED, SESSION_DESCRIPTION, *BATCH_COUNTS,
        "circuit", "noise", "simulator", "lret_runner_version", "git_commit",
    }
)  # fmt: skip
RESERVED_PREFIXES = ("lret.", "mlflow.")
TAG_KEY_MAX_CHARS = 250  # MLflow's limit on a tag key
_TAG_KEY = re.compile(r"^[\w.\- /]+$")


def check_user_tag(key: str, value: object) -> str | None:
    """Why ``tags.KEY=value`` cannot be a run's tag, or None: a reserved key, a key MLflow
    refuses (empty, too long, characters other than letters, digits, ``_ - . /`` and
    spaces, a ``..`` or absolute path), or a value that is too long or not text."""
    allowed = "letters, digits, _ - . / and spaces, at most 250 characters"
    if key in RUNNER_TAGS or key.startswith(RESERVED_PREFIXES):
        return (
            f"tags.{key} is reserved: the runner writes it (its own tags are "
            f"{', '.join(sorted(RUNNER_TAGS))} and every lret.* and mlflow.* key); choose "
            "another name"
        )
    if (
        not key
        or len(key) > TAG_KEY_MAX_CHARS
        or not _TAG_KEY.match(key)
        or key.startswith("/")
        or ".." in key.split("/")
    ):
        shown = key if len(key) <= 60 else key[:57] + "..."
        return f"tags.{shown!r} is not a valid tag name: use {allowed}, not a path with .."
    text = str(value)
    if len(text) > TAG_MAX_CHARS:
        return f"tags.{key}: the value has {len(text)} characters, more than {TAG_MAX_CHARS}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return f"tags.{key}: the value is not valid text (a lone surrogate)"
    if "\x00" in text:
        return f"tags.{key}: the value holds a NUL character"
    return None


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
