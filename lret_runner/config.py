"""Config schemas (dataclasses registered in Hydra's ConfigStore) and semantic validation.

Every option of every group in ``conf/`` extends one schema here, so an unknown key
or a wrong type fails at composition with the key's name. ``validate`` then checks
ranges, qubit counts and files before any simulation, by building the circuit, the
noise model and the engine (whose constructors name the key, the value and what is
allowed).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING, DictConfig, OmegaConf

if TYPE_CHECKING:
    import cirq


class ConfigError(ValueError):
    """A config value outside its allowed range; the message names key, value and range."""


# ---------------------------------------------------------------- circuit/
@dataclass
class CircuitConfig:
    name: str = MISSING  # builder: random ghz qft qaoa vqe grover qasm
    n_qubits: int = 4  # number of qubits (qasm: taken from the file)
    depth: int = 10  # moments (random) or layers (vqe); unused by ghz/qft/qaoa/grover/qasm
    seed: int = 0  # seed of the builder's random choices
    measure: bool = True  # append a terminal measurement of every qubit


@dataclass
class RandomCircuitConfig(CircuitConfig):
    name: str = "random"
    single_qubit_gates: list[str] = field(
        default_factory=lambda: ["h", "x", "y", "z", "s", "t", "rx", "ry", "rz"]
    )  # pool for the single-qubit moments
    two_qubit_gates: list[str] = field(
        default_factory=lambda: ["cnot", "cz", "iswap"]
    )  # pool for the brickwork moments


@dataclass
class GhzCircuitConfig(CircuitConfig):
    name: str = "ghz"


@dataclass
class QftCircuitConfig(CircuitConfig):
    name: str = "qft"
    final_swaps: bool = True  # include the bit-reversal swaps
    input_state: int = 0  # basis state prepared before the QFT (qubit 0 = most significant bit)


@dataclass
class QaoaCircuitConfig(CircuitConfig):
    name: str = "qaoa"
    p: int = 1  # QAOA layers
    graph: str = "ring"  # MaxCut graph: ring or random
    edge_probability: float = 0.5  # random graph: probability of each edge
    gammas: list[float] | None = None  # cost angles per layer (null: seeded)
    betas: list[float] | None = None  # mixer angles per layer (null: seeded)


@dataclass
class VqeCircuitConfig(CircuitConfig):
    name: str = "vqe"
    depth: int = 2  # ansatz layers (RY, RZ, CNOT chain)


@dataclass
class GroverCircuitConfig(CircuitConfig):
    name: str = "grover"
    n_qubits: int = 3
    marked: str | None = None  # marked bitstring (null: seeded)
    iterations: int | None = None  # null: the optimal floor(pi/4 sqrt(2^n))


@dataclass
class QasmCircuitConfig(CircuitConfig):
    name: str = "qasm"
    path: str = MISSING  # OpenQASM 2.0 file (relative paths: from where you launch)


# ---------------------------------------------------------------- noise/
@dataclass
class NoiseConfig:
    # model: none depolarizing amplitude_damping phase_damping bit_flip phase_flip thermal
    # readout composite
    name: str = MISSING
    level: float = 0.0  # the model's strength (a probability; unused by thermal)
    # gate: after every gate on its qubits; moment: after every moment on every qubit
    placement: str = "gate"
    t1: float = 50e-6  # thermal: T1 in seconds
    t2: float = 70e-6  # thermal: T2 in seconds (<= 2 T1)
    gate_time_1q: float = 25e-9  # thermal: one-qubit gate duration in seconds
    gate_time_2q: float = 50e-9  # thermal: two-qubit gate duration in seconds
    readout_error: float | None = None  # readout: bit-flip probability (null: level)
    components: list[Any] = field(default_factory=list)  # composite: [{name: ..., level: ...}, ...]


# ---------------------------------------------------------------- simulator/
@dataclass
class SimulatorConfig:
    name: str = MISSING  # engine: lret fdm cirq auto
    rank_threshold: float = 1e-4  # lret: trace weight one truncation may discard (0 = exact)
    max_rank: int | None = None  # lret: cap on the rank after a truncation (null: none)
    truncation: str = (
        "channel"  # lret: truncate after every channel, every moment, or at rank_bound
    )
    rank_bound: int = 64  # lret: rank that triggers truncation when truncation=rank


# ---------------------------------------------------------------- backend/ cloud/ tracking/
@dataclass
class BackendConfig:
    name: str = "cpu"  # where the linear algebra runs (an accelerator would be another option)
    dtype: str = "complex128"  # complex128 or complex64
    threads: int | None = None  # BLAS threads (null: the library's default)


@dataclass
class CloudConfig:
    name: str = "local"  # where the job runs


@dataclass
class TrackingConfig:
    name: str = MISSING  # mlflow or none
    tracking_uri: str | None = (
        None  # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns/mlflow.db
    )
    artifact_location: str | None = None  # null: <cwd>/mlruns/artifacts for the embedded store
    log_plots: bool = True  # histogram and summary PNGs as artifacts


# ---------------------------------------------------------------- top level
@dataclass
class RunConfig:
    shots: int = 1024  # samples drawn from the final diagonal (0: no counts)
    seed: int = 0  # sampling seed
    compare_to_exact: bool = True  # fidelity and trace distance vs fdm when affordable
    exact_max_qubits: int = 12  # largest n for the exact comparison
    observables: list[str] = field(default_factory=list)  # Pauli strings, e.g. [ZZII, XIIX]
    save_probabilities: bool = False  # store the 2^n probabilities (n <= 16)
    timeout_seconds: float | None = None  # stop the simulation after this long (null: never)
    quiet: bool = False  # no progress bar and no terminal summary


@dataclass
class SessionConfig:
    name: str = "default"  # the MLflow experiment the run goes to
    description: str = ""  # stored on the experiment when it is created


@dataclass
class LineageConfig:
    parent: str | None = None  # MLflow run id this run derives from (must exist)


@dataclass
class SweepConfig:
    resume: bool = False  # skip jobs whose config already has a FINISHED run in the session
    depth_rule: str = (
        "linear"  # scaling preset: depth from n: linear (2n), quadratic (n^2), constant
    )
    depth_constant: int = 10  # the depth of the constant rule


@dataclass
class LretRunnerConfig:
    circuit: Any = MISSING
    noise: Any = MISSING
    simulator: Any = MISSING
    backend: Any = MISSING
    cloud: Any = MISSING
    tracking: Any = MISSING
    run: RunConfig = field(default_factory=RunConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    lineage: LineageConfig = field(default_factory=LineageConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tags: dict[str, str] = field(default_factory=dict)  # extra MLflow tags


GROUP_SCHEMAS: dict[str, type] = {
    "circuit/random_schema": RandomCircuitConfig,
    "circuit/ghz_schema": GhzCircuitConfig,
    "circuit/qft_schema": QftCircuitConfig,
    "circuit/qaoa_schema": QaoaCircuitConfig,
    "circuit/vqe_schema": VqeCircuitConfig,
    "circuit/grover_schema": GroverCircuitConfig,
    "circuit/qasm_schema": QasmCircuitConfig,
    "noise/noise_schema": NoiseConfig,
    "simulator/simulator_schema": SimulatorConfig,
    "backend/backend_schema": BackendConfig,
    "cloud/cloud_schema": CloudConfig,
    "tracking/tracking_schema": TrackingConfig,
}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (the YAML options extend them)."""
    from hydra.core.config_store import ConfigStore

    from lret_runner.sweep import depth_rule

    OmegaConf.register_resolver("lret_data", _data_file, replace=True)
    OmegaConf.register_resolver("lret_depth", depth_rule, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=LretRunnerConfig)
    for path, schema in GROUP_SCHEMAS.items():
        group, name = path.split("/")
        cs.store(group=group, name=name, node=schema)


def _data_file(name: str) -> str:
    """``${lret_data:NAME}``: the path of a file shipped in ``lret_runner/data``."""
    from pathlib import Path

    return str(Path(__file__).with_name("data") / name)


# ---------------------------------------------------------------- building and validation
def circuit_params(cfg: Any) -> dict[str, Any]:
    """The circuit section as keyword arguments of its builder (keys it does not take dropped)."""
    from lret_runner.circuits import CIRCUIT_BUILDERS, CircuitError

    section = _plain(cfg.circuit)
    name = section.pop("name")
    if name not in CIRCUIT_BUILDERS:
        raise CircuitError(
            f"circuit.name={name!r} is unknown: choose one of {sorted(CIRCUIT_BUILDERS)}"
        )
    accepted = inspect.signature(CIRCUIT_BUILDERS[name]).parameters
    return {"name": name, **{k: v for k, v in section.items() if k in accepted}}


def build_noisy_circuit(cfg: Any) -> tuple[cirq.Circuit, cirq.Circuit]:
    """(circuit, noisy circuit) from the circuit and noise sections; raises on bad values."""
    from lret_runner.circuits import build_circuit
    from lret_runner.noise import add_noise, build_noise_model

    params = circuit_params(cfg)
    circuit = build_circuit(params.pop("name"), **params)
    noise = _plain(cfg.noise)
    model = build_noise_model(noise.pop("name"), **noise)
    return circuit, add_noise(circuit, model)


def simulator_params(cfg: Any) -> dict[str, Any]:
    """Engine keyword arguments from the simulator and backend sections."""
    sim = _plain(cfg.simulator)
    sim.pop("name")
    sim["dtype"] = cfg.backend.dtype
    return sim


def validate(cfg: Any) -> None:
    """Check everything a run needs before simulating; errors name the key and the value."""
    from lret_runner.metrics import validate_pauli
    from lret_runner.simulators import ENGINES, make_engine

    _check_range("run.shots", cfg.run.shots, 0, None)
    _check_range("run.exact_max_qubits", cfg.run.exact_max_qubits, 1, 20)
    if cfg.run.timeout_seconds is not None:
        _check_range("run.timeout_seconds", cfg.run.timeout_seconds, 0, None, open_low=True)
    if cfg.backend.threads is not None:
        _check_range("backend.threads", cfg.backend.threads, 1, None)
    name = cfg.simulator.name
    if name != "auto" and name not in ENGINES:
        raise ConfigError(f"simulator.name={name!r} is invalid: choose one of {(*ENGINES, 'auto')}")
    make_engine(
        "lret", **simulator_params(cfg)
    )  # validates the lret keys (present for every engine)
    if cfg.circuit.name != "qasm":
        _check_range("circuit.n_qubits", cfg.circuit.n_qubits, 1, 30)
    circuit, _ = build_noisy_circuit(cfg)
    n = len(circuit.all_qubits())
    for i, obs in enumerate(cfg.run.observables):
        try:
            validate_pauli(obs, n)
        except ValueError as exc:
            raise ConfigError(f"run.observables[{i}]: {exc}") from None
    if cfg.run.save_probabilities and n > 16:
        raise ConfigError(
            f"run.save_probabilities=true is invalid with n_qubits={n}: allowed up to 16 qubits"
        )


def _check_range(
    key: str, value: Any, low: float, high: float | None, open_low: bool = False
) -> None:
    ok = value > low if open_low else value >= low
    if high is not None:
        ok = ok and value <= high
    if not ok:
        bound = f"> {low}" if open_low else f">= {low}"
        allowed = f"in [{low}, {high}]" if high is not None else bound
        raise ConfigError(f"{key}={value} is invalid: must be {allowed}")


def _plain(node: Any) -> dict[str, Any]:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def config_hash(cfg: Any) -> str:
    """A stable hash of what determines a run's result (everything but tracking, session, tags)."""
    ignored = ("hydra", "tracking", "session", "tags", "lineage", "sweep", "cloud")
    data = {k: _plain(cfg[k]) for k in cfg if k not in ignored}
    data["run"] = {k: v for k, v in data["run"].items() if k != "quiet"}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
