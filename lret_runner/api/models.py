"""Request and response models of the REST API (pydantic), apart from storage.

An experiment request mirrors the config groups: each section is the keys of one option
(``{"circuit": {"name": "ghz", "n_qubits": 3}}`` is ``circuit=ghz circuit.n_qubits=3``).
The sections are checked by the same schemas as the YAML when the request is composed
(:mod:`lret_runner.api.service`), not by a second definition here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

Section = dict[str, Any]


class ExperimentRequest(BaseModel):
    """One experiment: a preset and/or config sections, a session, tags, a parent run."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "circuit": {"name": "ghz", "n_qubits": 3},
                "noise": {"name": "depolarizing", "level": 0.01},
                "simulator": {"name": "lret"},
                "run": {"shots": 200},
                "session": "api",
                "tags": {"k": "v"},
            }
        },
    )

    experiment: str | None = Field(None, description="a single-run preset of conf/experiment")
    circuit: Section | None = Field(None, description="circuit option: name and its keys")
    noise: Section | None = Field(None, description="noise option: name and its keys")
    simulator: Section | None = Field(None, description="simulator option: name and its keys")
    backend: Section | None = Field(None, description="backend keys (dtype, threads)")
    run: Section | None = Field(None, description="run keys (shots, seed, observables, ...)")
    session: str = Field("api", description="the session (MLflow experiment) of the run")
    tags: dict[str, str] = Field(default_factory=dict, description="extra MLflow tags")
    parent: str | None = Field(None, description="lineage parent: an existing run id")


class Submitted(BaseModel):
    run_id: str
    status: str
    session: str


class Experiment(BaseModel):
    """A run: its status (pending, running, finished, failed, killed) and its record."""

    run_id: str
    status: str
    session: str
    run_name: str | None = None
    started: str | None = None
    ended: str | None = None
    error: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    counts: dict[str, int] | None = None
    rank_history: list[float] | None = None


class ExperimentList(BaseModel):
    total: int
    items: list[Experiment]


class Health(BaseModel):
    status: str  # ok or degraded
    version: str
    tracking_store: str
    tracking_reachable: bool
    queue_depth: int  # runs submitted and not finished
    workers: int


class Index(BaseModel):
    name: str
    version: str
    docs: str
    endpoints: list[str]


class MetricInfo(BaseModel):
    """One figure a run reports, from the metric registry every view draws from."""

    key: str  # the key in an experiment's ``metrics``
    label: str
    unit: str
    section: str  # noise, task, accuracy, rank, cost
    reference: str  # what it is measured against ("" for a property of the run)
    higher_is_better: bool | None
    optional: bool  # only some runs have it


class ErrorBody(BaseModel):
    message: str
    field: str | None = None


class BatchRequest(BaseModel):
    """Several experiments at once: a list, or a sweep (every combination of the values of
    ``sweep``, each a dotted key such as ``circuit.n_qubits``, applied to ``base``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "base": {"circuit": {"name": "ghz"}, "run": {"shots": 100}},
                "sweep": {"circuit.n_qubits": [2, 3, 4]},
                "session": "api",
            }
        },
    )

    experiments: list[ExperimentRequest] | None = None
    base: ExperimentRequest | None = None
    sweep: dict[str, list[Any]] | None = None
    session: str | None = Field(None, description="the session of every run (else each one's)")


class BatchSubmitted(BaseModel):
    batch_id: str
    run_ids: list[str]
    total: int


class Batch(BaseModel):
    batch_id: str
    status: str
    session: str
    total: int
    pending: int
    running: int
    completed: int
    failed: int
    killed: int
    results: list[Experiment]


class QueryRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"text": "qft on 6 qubits, exact", "dry_run": True}},
    )

    text: str = Field(..., max_length=2000, description="what to run, in plain English")
    dry_run: StrictBool = Field(False, description="only say what it understood")
    session: str | None = Field(None, description="the session of the runs (default: api)")


class QueryAnswer(BaseModel):
    """What a request was understood as and, unless a dry run, what was submitted."""

    understood: list[str]
    missing: list[str]
    experiment: dict[str, Any]
    sweep: dict[str, list[Any]]
    submitted: dict[str, Any] | None = None  # {run_id} or {batch_id, run_ids, total}
