"""Config schemas: one dataclass per option of every group, registered in Hydra's ConfigStore.

Each YAML option in ``conf/<group>/`` extends its schema (``defaults: [<option>_schema]``),
so a key that does not belong to the chosen option, a typo or a wrong type fails at
composition with the key's name. Ranges are checked later, when the run is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from lret_runner import accuracy


# ---------------------------------------------------------------- circuit/
# the keys of each option are exactly its builder's parameters (lret_runner.circuits)
@dataclass
class RandomCircuitConfig:
    name: str = "random"
    n_qubits: int = 4  # number of qubits
    depth: int = 10  # moments: single-qubit moments alternating with a two-qubit brickwork
    seed: int = 0  # seed of the gate and angle choices
    measure: bool = True  # append a terminal measurement of every qubit
    single_qubit_gates: list[str] = field(
        default_factory=lambda: ["h", "x", "y", "z", "s", "t", "rx", "ry", "rz"]
    )  # pool for the single-qubit moments
    two_qubit_gates: list[str] = field(
        default_factory=lambda: ["cnot", "cz", "iswap"]
    )  # pool for the brickwork moments


@dataclass
class LayeredCircuitConfig:
    name: str = "layered"
    n_qubits: int = 8  # number of qubits
    layers: int = 20  # layers: a random rotation on every qubit, then a CNOT brickwork
    seed: int = 0  # seed of the rotation angles
    measure: bool = True  # append a terminal measurement of every qubit


@dataclass
class GhzCircuitConfig:
    name: str = "ghz"
    n_qubits: int = 4  # number of qubits
    measure: bool = True  # append a terminal measurement of every qubit


@dataclass
class QftCircuitConfig:
    name: str = "qft"
    n_qubits: int = 4  # number of qubits
    measure: bool = True  # append a terminal measurement of every qubit
    final_swaps: bool = True  # include the bit-reversal swaps
    input_state: int = 0  # basis state prepared before the QFT (qubit 0 = most significant bit)


@dataclass
class QaoaCircuitConfig:
    name: str = "qaoa"
    n_qubits: int = 4  # number of qubits (graph vertices)
    measure: bool = True  # append a terminal measurement of every qubit
    seed: int = 0  # seed of the random graph and of unset angles
    p: int = 1  # QAOA layers
    graph: str = "ring"  # MaxCut graph: ring or random
    edge_probability: float = 0.5  # random graph: probability of each edge
    gammas: list[float] | None = None  # cost angles per layer (null: seeded)
    betas: list[float] | None = None  # mixer angles per layer (null: seeded)


@dataclass
class VqeCircuitConfig:
    name: str = "vqe"
    n_qubits: int = 4  # number of qubits
    depth: int = 2  # ansatz layers: the rotations on every qubit, then a CNOT chain
    seed: int = 0  # seed of the angles when they are not given
    rotations: list[str] = field(default_factory=lambda: ["ry", "rz"])  # per layer, in order
    # depth x len(rotations) x n_qubits angles (layer, rotation, qubit); null: seeded
    angles: list[float] | None = None
    measure: bool = True  # append a terminal measurement of every qubit


@dataclass
class GroverCircuitConfig:
    name: str = "grover"
    n_qubits: int = 3  # number of qubits
    measure: bool = True  # append a terminal measurement of every qubit
    seed: int = 0  # seed of the marked bitstring when it is not given
    marked: str | None = None  # marked bitstring (null: seeded)
    iterations: int | None = None  # null: the optimal floor(pi/4 sqrt(2^n))


@dataclass
class ArchitectureCircuitConfig:
    name: str = "architecture"
    n_qubits: int = 3  # number of qubits
    # the gates in order: none, GATE_Q (h_0, ry_2) or GATE_A_B (cnot_0_1, cz_1_2)
    slots: list[str] = field(default_factory=lambda: ["h_0", "cnot_0_1", "cnot_1_2"])
    angles: list[float] | None = None  # the angle of a rotation in slot i (null: pi/2 each)
    measure: bool = True  # append a terminal measurement of every qubit


@dataclass
class QasmCircuitConfig:
    name: str = "qasm"
    path: str = MISSING  # OpenQASM 2.0 or 3.0 file (relative paths: from where you launch)
    measure: bool = True  # measure every qubit at the end if the file measures nothing


# ---------------------------------------------------------------- noise/
@dataclass
class NoNoiseConfig:
    name: str = "none"


@dataclass
class ChannelNoiseConfig:
    """A one-parameter channel after every gate or every moment."""

    name: str = MISSING  # depolarizing amplitude_damping phase_damping bit_flip phase_flip
    level: float = 0.001  # the channel's probability
    # gate: after every gate on its qubits; moment: after every moment on every qubit
    placement: str = "gate"


@dataclass
class DepolarizingNoiseConfig(ChannelNoiseConfig):
    name: str = "depolarizing"


@dataclass
class AmplitudeDampingNoiseConfig(ChannelNoiseConfig):
    name: str = "amplitude_damping"


@dataclass
class PhaseDampingNoiseConfig(ChannelNoiseConfig):
    name: str = "phase_damping"


@dataclass
class BitFlipNoiseConfig(ChannelNoiseConfig):
    name: str = "bit_flip"


@dataclass
class PhaseFlipNoiseConfig(ChannelNoiseConfig):
    name: str = "phase_flip"


@dataclass
class ThermalNoiseConfig:
    name: str = "thermal"
    placement: str = "gate"  # gate: after every gate; moment: every qubit after every moment
    t1: float = 50e-6  # T1 in seconds
    t2: float = 70e-6  # T2 in seconds (<= 2 T1)
    gate_time_1q: float = 25e-9  # one-qubit gate duration in seconds
    gate_time_2q: float = 50e-9  # two-qubit gate duration in seconds


@dataclass
class ReadoutNoiseConfig:
    name: str = "readout"
    readout_error: float = 0.02  # bit-flip probability just before each measurement


@dataclass
class NoiseComponentConfig:
    """One model stacked by ``composite``; unset keys take the composite's values.

    A component may set only the keys its model uses (``level`` for the one-channel
    models, ``t1``/``t2`` for thermal, ``readout_error`` for readout): another is refused
    when the run is prepared, naming it."""

    name: str = MISSING  # any model but composite
    level: float | None = None  # one-channel models: the channel's probability
    t1: float | None = None  # thermal: T1 in seconds
    t2: float | None = None  # thermal: T2 in seconds
    readout_error: float | None = None  # readout: bit-flip probability


@dataclass
class CompositeNoiseConfig:
    name: str = "composite"
    components: list[NoiseComponentConfig] = field(default_factory=list)  # stacked in order
    placement: str = "gate"  # for every component
    level: float = 0.0  # default level of the components
    t1: float = 50e-6  # default T1 of thermal components (seconds)
    t2: float = 70e-6  # default T2 of thermal components (seconds)
    gate_time_1q: float = 25e-9  # one-qubit gate duration (seconds)
    gate_time_2q: float = 50e-9  # two-qubit gate duration (seconds)
    # default readout error of readout components (null: each sets its own)
    readout_error: float | None = None


@dataclass
class DeviceNoiseConfig:
    """A real device's calibrated noise (lret_runner.devices): per-gate depolarizing and
    T1/T2 relaxation and readout confusion, as Qiskit Aer's NoiseModel.from_backend."""

    name: str = "device"
    # a shipped snapshot's name (fake_manila, fake_nairobi: lret-runner device list) or the
    # path of a device file, YAML or JSON (relative paths: from where you launch)
    device: str = "fake_manila"
    scale: float = 1.0  # >= 0: multiplies every error rate, divides T1 and T2 (0: noiseless)
    # device qubit of each circuit qubit: circuit qubit i -> layout[i] (null: device qubit i)
    layout: list[int] | None = None
    idle: bool = True  # qubits idle in a moment relax (T1/T2) for its longest gate's duration


@dataclass
class SparseNoiseConfig:
    """Noise at a few random locations (lret_runner.noise.SparseNoiseModel): each location
    gets, with probability level, one channel drawn from channels of strength level x U(0,1)."""

    name: str = "sparse"
    level: float = 0.01  # the probability of a location's channel, and its largest strength
    # moment: every qubit after every moment; gate: each qubit a gate touched, after it
    placement: str = "moment"
    # drawn uniformly: depolarizing amplitude_damping phase_damping bit_flip phase_flip
    channels: list[str] = field(
        default_factory=lambda: ["depolarizing", "amplitude_damping", "phase_damping"]
    )
    seed: int = 0  # where the channels fall and which they are


# ---------------------------------------------------------------- simulator/
@dataclass
class LretSimulatorConfig:
    name: str = "lret"
    # trace weight one truncation may discard (0 = exact); null: spend run.accuracy over the
    # run as a budget, so that truncation_error <= run.accuracy
    rank_threshold: float | None = None
    max_rank: int | None = None  # cap on the rank after a truncation (null: none)
    truncation: str = "channel"  # truncate after every channel, every moment, or at rank_bound
    rank_bound: int = 64  # the rank that triggers truncation when truncation=rank
    # adaptive: continue dense where that is cheaper and fits (exact there); factor: never
    representation: str = "adaptive"
    # memory the run may use (null: 80% of the memory free at its start); caps the rank
    max_memory_gb: float | None = None


@dataclass
class AutoSimulatorConfig(LretSimulatorConfig):
    """``auto`` carries the lret keys: they apply when it picks lret."""

    name: str = "auto"


@dataclass
class FdmSimulatorConfig:
    name: str = "fdm"


@dataclass
class CirqSimulatorConfig:
    name: str = "cirq"


@dataclass
class TrajectoriesSimulatorConfig:
    """Quantum trajectories: figures estimated from sampled pure states, each to a standard
    error of run.accuracy (lret_runner.simulators.trajectories)."""

    name: str = "trajectories"
    trajectories: int | None = None  # a fixed count instead of run.accuracy's (null: adaptive)
    max_trajectories: int = 100_000  # the most the accuracy rule may run
    stratify: bool = True  # simulate the error-free branch once where its weight is exact
    kernel: str = "auto"  # qsim (the trajectories extra), numpy, or auto: qsim if installed


# ---------------------------------------------------------------- hamiltonian/
@dataclass
class NoHamiltonianConfig:
    name: str = "none"  # no energy is computed


@dataclass
class PauliHamiltonianConfig:
    """A Hamiltonian as a sum of Pauli strings with real coefficients."""

    name: str = "pauli"
    # Pauli string (character q acts on qubit q) -> coefficient, e.g. {ZZ: -1.0, XI: 0.5}
    terms: dict[str, float] = field(default_factory=dict)


@dataclass
class H2HamiltonianConfig(PauliHamiltonianConfig):
    """H2 (STO-3G, 0.735 angstrom) on two qubits: the terms are in conf/hamiltonian/h2.yaml."""

    name: str = "h2"


@dataclass
class IsingHamiltonianConfig:
    """The transverse-field Ising chain on the circuit's qubits:
    H = -coupling sum Z_i Z_(i+1) - field sum X_i."""

    name: str = "ising"
    coupling: float = 1.0  # J
    field: float = 1.0  # h, the transverse field
    periodic: bool = False  # close the chain into a ring


# ---------------------------------------------------------------- backend/ cloud/ tracking/
@dataclass
class CpuBackendConfig:
    name: str = "cpu"  # where the linear algebra runs (an accelerator would be another option)
    dtype: str = "complex128"  # complex128 or complex64
    threads: int | None = None  # BLAS threads (null: the library's default)


@dataclass
class LocalCloudConfig:
    name: str = "local"  # where the job runs


@dataclass
class SlurmCloudConfig:
    """A Slurm cluster through submitit: one array job per sweep, run on a shared filesystem."""

    name: str = "slurm"
    partition: str | None = None  # null: the cluster's default partition
    account: str | None = None  # sbatch --account (null: your default)
    qos: str | None = None  # sbatch --qos
    timeout_min: int = 60  # each job's time limit, minutes
    cpus_per_task: int = 1  # cores per job (its BLAS threads)
    mem_gb: int | None = None  # memory per job, GB (null: the partition's default)
    array_parallelism: int = 256  # jobs of the array that run at once
    python: str | None = None  # the interpreter on the nodes (null: this one, shared filesystem)


@dataclass
class RayCloudConfig:
    """A running Ray cluster through Hydra's Ray launcher: one Ray task per job."""

    name: str = "ray"
    # the cluster's address HOST:PORT or ray://HOST:PORT ("auto": $RAY_ADDRESS, else the
    # cluster started on this machine)
    address: str = "auto"
    num_cpus: int = 1  # cores each job reserves


@dataclass
class K8sCloudConfig:
    """A Kubernetes cluster: one Indexed Job per sweep, the job configs in a ConfigMap."""

    name: str = "k8s"
    namespace: str = "default"  # where the Job and ConfigMap are made
    image: str = "lret-runner:latest"  # the image `make image` builds, where the cluster pulls
    image_pull_policy: str = "IfNotPresent"  # Always, IfNotPresent or Never
    parallelism: int | None = None  # pods that run at once (null: every job at once)
    cpu_request: str = "1"  # resources.requests.cpu of each pod
    memory_request: str = "1Gi"  # resources.requests.memory
    cpu_limit: str | None = None  # resources.limits.cpu (null: none)
    memory_limit: str | None = "4Gi"  # resources.limits.memory (null: none)
    node_selector: dict[str, str] = field(default_factory=dict)  # spec.nodeSelector of the pods
    backoff_limit_per_index: int = 0  # retries of a failed index
    ttl_seconds_after_finished: int | None = 86400  # the cluster deletes the finished Job after
    service_account: str | None = None  # the pods' service account (null: the namespace's default)
    labels: dict[str, str] = field(default_factory=dict)  # extra labels (app, batch set)
    context: str | None = None  # kubeconfig context (null: the current one; in a pod: in-cluster)
    poll_seconds: float = 2.0  # first wait between status checks, doubled up to max_poll_seconds
    max_poll_seconds: float = 30.0
    timeout_minutes: float | None = None  # give up waiting (the Job is left running) after this
    dry_run: bool = False  # print the manifests and submit nothing


@dataclass
class AwsBatchCloudConfig:
    """AWS Batch: one array job per sweep, the job configs in S3. Credentials come from
    boto3's standard chain (environment, ~/.aws, instance role), never from this config."""

    name: str = "aws_batch"
    region: str | None = None  # null: the chain's region (AWS_DEFAULT_REGION, ~/.aws/config)
    job_queue: str | None = None  # the Batch job queue (required)
    image: str = "lret-runner:latest"  # the image `make image` builds, pushed to ECR
    job_definition: str | None = None  # an existing definition (null: one is registered from image)
    bucket: str | None = None  # the S3 bucket for job configs (required)
    prefix: str = "lret-runner"  # key prefix under the bucket
    vcpus: int = 1  # each job's vCPUs
    memory_mib: int = 2048  # each job's memory, MiB
    retry_attempts: int = 1  # attempts per array index (1: no retry)
    timeout_seconds: int = 3600  # Batch stops a job attempt after this
    tags: dict[str, str] = field(default_factory=dict)  # extra tags on the job and its definition
    endpoint_url: str | None = None  # another Batch/S3 endpoint (a local emulator); null: AWS
    poll_seconds: float = 2.0  # first wait between status checks, doubled up to max_poll_seconds
    max_poll_seconds: float = 30.0
    timeout_minutes: float | None = None  # give up waiting (the job is left running) after this
    dry_run: bool = False  # print the job definition and array job, submit nothing


@dataclass
class GcpBatchCloudConfig:
    """Google Cloud Batch: one job per sweep (a task per job), the job configs in GCS.
    Credentials come from Application Default Credentials, never from this config."""

    name: str = "gcp_batch"
    project: str | None = None  # the Google Cloud project (required)
    region: str | None = None  # the Batch location, e.g. europe-west4 (required)
    bucket: str | None = None  # the GCS bucket for job configs (required)
    prefix: str = "lret-runner"  # object prefix under the bucket
    image: str = "lret-runner:latest"  # the image `make image` builds, pushed to Artifact Registry
    machine_type: str = "e2-standard-2"  # the VMs' machine type
    spot: bool = False  # Spot VMs (cheaper, may be preempted)
    cpu_milli: int = 1000  # each task's CPU, thousandths of a core
    memory_mib: int = 2048  # each task's memory, MiB
    parallelism: int | None = None  # tasks that run at once (null: Batch decides)
    max_retry_count: int = 0  # retries of a failed task
    max_run_duration_seconds: int = 3600  # Batch stops a task after this
    labels: dict[str, str] = field(default_factory=dict)  # extra labels on the job
    endpoint: str | None = None  # another Batch API endpoint (a local stub); null: Google's
    poll_seconds: float = 2.0  # first wait between status checks, doubled up to max_poll_seconds
    max_poll_seconds: float = 30.0
    timeout_minutes: float | None = None  # give up waiting (the job is left running) after this
    dry_run: bool = False  # print the job, submit nothing


@dataclass
class MlflowTrackingConfig:
    name: str = "mlflow"
    # null: $MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlruns/mlflow.db
    tracking_uri: str | None = None
    artifact_location: str | None = None  # null: <store dir>/artifacts for a SQLite store
    # histogram.png and summary.png of a run, as artifacts: true, false, or null (auto): for a
    # single run, not for the jobs of a sweep (their batch keeps its summary plots)
    log_plots: bool | None = None
    timeout_seconds: float = 10.0  # give up on an unreachable tracking server after this long


@dataclass
class ServerTrackingConfig:
    """An MLflow tracking server shared by every job (`make tracking-server` runs one here)."""

    name: str = "server"
    uri: str = "http://127.0.0.1:5000"  # the server every job reports to (http:// or https://)
    artifact_location: str | None = None  # null: the server's --artifacts-destination
    log_plots: bool | None = None  # as for mlflow
    timeout_seconds: float = 10.0  # give up on an unreachable server after this long


@dataclass
class NoTrackingConfig:
    name: str = "none"
    # histogram.png and summary.png in the output directory: true, false, or null (auto: for
    # a single run, not for the jobs of a sweep)
    log_plots: bool | None = False


# ---------------------------------------------------------------- top level
@dataclass
class RunConfig:
    # the accuracy every run must meet: the largest trace distance to the exact noisy state
    # (a proven bound: lret spends it over its truncations, fdm and cirq are exact), or for
    # simulator=trajectories the largest standard error of each reported figure
    accuracy: float = accuracy.DEFAULT
    shots: int = 1024  # samples drawn from the final diagonal (0: no counts)
    seed: int = 0  # sampling seed
    # the engine's accuracy: exact_fidelity and exact_trace_distance against fdm's exact
    # density matrix of the same noisy circuit, when affordable
    compare_to_exact: bool = True
    exact_max_qubits: int = 12  # largest n for the exact comparison
    # largest n for the figures against the noiseless circuit (its 2^n state vector)
    ideal_max_qubits: int = 30
    observables: list[str] = field(default_factory=list)  # Pauli strings, e.g. [ZZII, XIIX]
    save_probabilities: bool = False  # store the 2^n probabilities (n <= 16)
    # a dynamic circuit (mid-circuit measurements, if): the most branches it may hold at once
    max_branches: int = 1024
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
    # scaling preset: depth from n: linear (2n), quadratic (n^2), constant
    depth_rule: str = "linear"
    depth_constant: int = 10  # the depth of the constant rule


@dataclass
class OptimizeConfig:
    """What an Optuna sweep (``+optimize=NAME``) optimises and how it searches.

    Read by the task (the objective it returns), by the sweeper (sampler, study, search
    space) and by the batch run's report; a plain run ignores it except ``target``."""

    # a result metric (exact_fidelity, exact_infidelity, ideal_fidelity, ideal_infidelity,
    # energy, expected_cut, simulation_time_seconds, target_fidelity, fitness,
    # expval_<PAULI>, ...), or a list of them for several objectives
    objective: Any = "exact_fidelity"
    direction: Any = "maximize"  # minimize or maximize, or a list matching objective
    # tpe random grid cmaes gp qmc nsgaii (null: hydra/sweeper/sampler decides)
    sampler: str | None = None
    seed: int | None = 0  # the sampler's seed (null: random)
    n_startup_trials: int = 10  # tpe, gp, cmaes: random trials before the model takes over
    # the search space the sweeper adds to hydra.sweeper.params: angles (the vqe or qaoa
    # circuit's angles), architecture (the architecture circuit's slots), or null
    space: str | None = None
    study_name: str | None = None  # null: <session.name>-<preset>
    storage: str | None = None  # null: sqlite optuna.db next to the MLflow store
    # single objective: a trial whose fidelity to the exact state (exact_fidelity) is below
    # this is penalised (see penalty)
    min_exact_fidelity: float | None = None
    penalty: float = 100.0  # per unit of exact_fidelity below min_exact_fidelity
    # target state for target_fidelity and fitness: ghz, w, a bitstring, a .qasm path
    target: str | None = None
    two_qubit_penalty: float = 0.0  # fitness = target_fidelity - this x two-qubit gates
    max_depth: int = 6  # architecture: slots searched
    gates: list[str] = field(
        default_factory=lambda: ["h", "x", "y", "z", "s", "t", "rx", "ry", "rz", "cnot", "cz"]
    )  # architecture: the gate pool
    connectivity: str = "all"  # architecture: two-qubit gates on all pairs or linear neighbours
    search_angles: bool = False  # architecture: search each rotation's angle too (else pi/2)
    population_size: int = 50  # nsgaii: individuals per generation
    mutation_prob: float | None = None  # nsgaii: per parameter (null: 1 / parameters)
    crossover_prob: float = 0.9  # nsgaii: probability a child is a crossover
    swapping_prob: float = 0.5  # nsgaii: uniform crossover's per-parameter swap probability
    stop_at: float | None = None  # end the study once a trial's objective reaches this


@dataclass
class LretRunnerConfig:
    """The whole config. The groups are ``Any`` here because each option brings its own
    schema; their keys are still closed: composition refuses an unknown key, and a key
    added with ``+`` (which Hydra adds even to a struct node) is refused when the run is
    prepared (``lret_runner.config.check_known_keys``)."""

    circuit: Any = MISSING
    noise: Any = MISSING
    simulator: Any = MISSING
    backend: Any = MISSING
    cloud: Any = MISSING
    tracking: Any = MISSING
    hamiltonian: Any = MISSING
    run: RunConfig = field(default_factory=RunConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    lineage: LineageConfig = field(default_factory=LineageConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    tags: dict[str, str] = field(default_factory=dict)  # extra MLflow tags
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)


# group -> option -> schema; conf/<group>/<option>.yaml extends "<option>_schema"
OPTIONS: dict[str, dict[str, type]] = {
    "circuit": {
        "random": RandomCircuitConfig,
        "layered": LayeredCircuitConfig,
        "ghz": GhzCircuitConfig,
        "qft": QftCircuitConfig,
        "qaoa": QaoaCircuitConfig,
        "vqe": VqeCircuitConfig,
        "grover": GroverCircuitConfig,
        "qasm": QasmCircuitConfig,
        "architecture": ArchitectureCircuitConfig,
    },
    "noise": {
        "none": NoNoiseConfig,
        "depolarizing": DepolarizingNoiseConfig,
        "amplitude_damping": AmplitudeDampingNoiseConfig,
        "phase_damping": PhaseDampingNoiseConfig,
        "bit_flip": BitFlipNoiseConfig,
        "phase_flip": PhaseFlipNoiseConfig,
        "thermal": ThermalNoiseConfig,
        "readout": ReadoutNoiseConfig,
        "composite": CompositeNoiseConfig,
        "device": DeviceNoiseConfig,
        "sparse": SparseNoiseConfig,
    },
    "simulator": {
        "lret": LretSimulatorConfig,
        "fdm": FdmSimulatorConfig,
        "cirq": CirqSimulatorConfig,
        "trajectories": TrajectoriesSimulatorConfig,
        "auto": AutoSimulatorConfig,
    },
    "backend": {"cpu": CpuBackendConfig},
    "cloud": {
        "local": LocalCloudConfig,
        "slurm": SlurmCloudConfig,
        "ray": RayCloudConfig,
        "k8s": K8sCloudConfig,
        "aws_batch": AwsBatchCloudConfig,
        "gcp_batch": GcpBatchCloudConfig,
    },
    "tracking": {
        "mlflow": MlflowTrackingConfig,
        "server": ServerTrackingConfig,
        "none": NoTrackingConfig,
    },
    "hamiltonian": {
        "none": NoHamiltonianConfig,
        "pauli": PauliHamiltonianConfig,
        "h2": H2HamiltonianConfig,
        "ising": IsingHamiltonianConfig,
    },
}
