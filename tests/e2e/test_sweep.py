"""Sweeps as real Hydra multiruns: one batch parent run, one child run per job.

Every test launches ``python -m lret_runner -m ...`` as a subprocess from a temporary
directory, with ``MLFLOW_TRACKING_URI`` pointing at a SQLite store in that directory,
and reads the records back with ``mlflow.MlflowClient``. Circuits are tiny (3 qubits,
4 moments) unless a test needs jobs that take seconds. Creating the schema of a new
SQLite store takes several seconds, so most tests start from a copy of one empty
store made once per session; the parallel-writers test starts from no store at all.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
import signal
import subprocess
import time
from itertools import product
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("hydra")

from conftest import sqlite_uri  # noqa: E402

from e2e.conftest import Sweep  # noqa: E402

TINY = ["circuit.n_qubits=3", "circuit.depth=4", "run.quiet=true"]
DETERMINISTIC = ("final_rank", "truncation_error", "exact_fidelity")

# Regressions guarded here: before 24f837f, `_RetryingClient.__getattr__` recursed while
# being unpickled, so joblib/submitit workers (which unpickle the Hydra context and its
# BatchCallback tracker) died before any job ran; and SIGTERM outside a job's simulation
# killed a sweep outright, leaving the batch parent RUNNING.


def value(text: str) -> Any:
    """An MLflow param as a number when it is one (0 and 0.0 compare equal)."""
    try:
        return float(text)
    except ValueError:
        return text


def combos(kids: list[Any], keys: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return {tuple(value(k.data.params[key]) for key in keys) for k in kids}


def metric(run: Any, name: str) -> float:
    return run.data.metrics[name]


def check_finished_batch(sw: Sweep, n_jobs: int, plots: set[str]) -> tuple[Any, list[Any]]:
    """The one batch of the store finished every job, and carries its summary artifacts."""
    [parent] = sw.batches()
    pid = parent.info.run_id
    kids = sw.children(parent)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["cancelled"] == "false"
    counts = {k: metric(parent, k) for k in ("total", "completed", "failed", "killed", "skipped")}
    assert counts == {"total": n_jobs, "completed": n_jobs, "failed": 0, "killed": 0, "skipped": 0}
    assert len(kids) == n_jobs
    assert [k.info.status for k in kids] == ["FINISHED"] * n_jobs
    assert all(k.data.tags["mlflow.parentRunId"] == pid for k in kids)
    assert sorted(int(k.data.tags["job_num"]) for k in kids) == list(range(n_jobs))
    # every run of the store is the parent or one of its children
    assert {r.info.run_id for r in sw.runs()} == {pid} | {k.info.run_id for k in kids}

    for kid in kids:  # tracking.log_plots is auto: a sweep's jobs render no PNGs
        assert sw.artifact_names(kid.info.run_id) == {"config.yaml", "result.json", "counts.json"}

    assert {"sweep.json", "summary"} <= sw.artifact_names(pid)
    definition = json.loads(sw.artifact_text(pid, "sweep.json"))
    assert {"sweeper", "launcher", "overrides", "sweep_dir"} <= set(definition)
    assert sw.artifact_names(pid, "summary") == {"jobs.csv", "jobs.txt", *plots}
    rows = list(csv.DictReader(sw.artifact_text(pid, "summary/jobs.csv").splitlines()))
    assert len(rows) == n_jobs
    assert {r["run_id"] for r in rows} == {k.info.run_id for k in kids}
    assert {r["status"] for r in rows} == {"FINISHED"}
    table = sw.artifact_text(pid, "summary/jobs.txt")
    assert all(k.info.run_id in table for k in kids)
    assert table.splitlines()[0].split()[:2] == ["run_id", "status"]
    return parent, kids


# ---------------------------------------------------------------- 1. every sweep preset
N_D = ("circuit.n_qubits", "circuit.depth")
PRESETS = [
    pytest.param(
        ["+experiment=grid_sweep", "circuit.n_qubits=3,4", "circuit.depth=4,6", "run.quiet=true"],
        N_D,
        set(product([3.0, 4.0], [4.0, 6.0])),
        {"scaling.png", "fidelity_over_runs.png"},
        id="grid_sweep",
    ),
    pytest.param(
        ["+experiment=scaling", "circuit.n_qubits=3,4", "run.quiet=true"],
        N_D,
        {(3.0, 6.0), (4.0, 8.0)},  # linear: depth = 2n
        {"scaling.png", "fidelity_over_runs.png"},
        id="scaling-linear",
    ),
    pytest.param(
        [
            "+experiment=scaling",
            "circuit.n_qubits=3,4",
            "sweep.depth_rule=quadratic",
            "run.quiet=true",
        ],
        N_D,
        {(3.0, 9.0), (4.0, 16.0)},  # quadratic: depth = n^2
        {"scaling.png", "fidelity_over_runs.png"},
        id="scaling-quadratic",
    ),
    pytest.param(
        ["+experiment=noise_sweep", "noise.level=0,0.01", *TINY],
        ("noise.name", "noise.level"),
        set(product(["depolarizing", "amplitude_damping", "phase_damping"], [0.0, 0.01])),
        {"noise_impact.png", "fidelity_over_runs.png"},
        id="noise_sweep",
    ),
    pytest.param(
        ["+experiment=backend_comparison", *TINY],
        ("simulator.name", "circuit.n_qubits"),
        {("lret", 3.0), ("fdm", 3.0), ("cirq", 3.0)},
        {"backend_comparison.png", "fidelity_over_runs.png"},
        id="backend_comparison",
    ),
    pytest.param(
        ["+experiment=linear_sweep", "simulator.rank_threshold=0,1e-2", *TINY],
        ("simulator.rank_threshold",),
        {(0.0,), (0.01,)},
        {"fidelity_over_runs.png"},
        id="linear_sweep",
    ),
]


@pytest.mark.parametrize(("overrides", "keys", "expected", "plots"), PRESETS)
def test_sweep_preset_is_one_finished_batch(
    sweep: Sweep, overrides: list[str], keys: tuple[str, ...], expected: set, plots: set[str]
) -> None:
    sweep.ok(*overrides)
    _, kids = check_finished_batch(sweep, len(expected), plots)
    assert combos(kids, keys) == expected


def test_ghz_noise_sweep_fidelity_to_the_noiseless_circuit_falls_with_the_level(
    sweep: Sweep,
) -> None:
    # the question of a noise sweep (noise_sweep's, here on a GHZ circuit): the fidelity to
    # the noiseless GHZ state falls with the level, as Cirq's density matrix says it does
    import cirq
    import numpy as np

    from lret_runner.circuits import ghz
    from lret_runner.noise import add_noise, build_noise_model

    levels = (0.0, 0.001, 0.01, 0.1)
    sweep.ok(
        "circuit=ghz",
        "circuit.n_qubits=4",
        "noise=depolarizing",
        "noise.placement=moment",
        f"noise.level={','.join(map(str, levels))}",
        "run.quiet=true",
    )
    parent, kids = check_finished_batch(sweep, 4, {"noise_impact.png", "fidelity_over_runs.png"})
    by_level = {value(k.data.params["noise.level"]): k.data.metrics for k in kids}
    circuit = ghz(n_qubits=4, measure=False)
    psi = cirq.final_state_vector(circuit, dtype=np.complex128)
    expected = []
    for level in levels:
        noisy = add_noise(
            circuit, build_noise_model("depolarizing", level=level, placement="moment")
        )
        rho = cirq.DensityMatrixSimulator(dtype=np.complex128).simulate(noisy).final_density_matrix
        expected.append(float(np.vdot(psi, rho @ psi).real))
    got = [by_level[level]["ideal_fidelity"] for level in levels]
    # lret at its default threshold: within the truncation bound, as the summary's ± says
    for level, g, e in zip(levels, got, expected, strict=True):
        assert abs(g - e) <= by_level[level]["truncation_error"] + 1e-12, level
    assert got[0] == pytest.approx(1.0) and got == sorted(got, reverse=True) and got[-1] < 0.6
    # the engine agrees with the exact state at every level: a different question
    assert all(by_level[level]["exact_fidelity"] > 0.999 for level in levels)


def test_log_plots_true_renders_every_jobs_pngs(sweep: Sweep) -> None:
    sweep.ok(*TINY, "circuit.seed=1,2", "tracking.log_plots=true")
    [parent] = sweep.batches()
    kids = sweep.children(parent)
    assert len(kids) == 2
    for kid in kids:
        assert {"histogram.png", "summary.png"} <= sweep.artifact_names(kid.info.run_id)
    assert "fidelity_over_runs.png" in sweep.artifact_names(parent.info.run_id, "summary")


def test_scaling_invalid_depth_rule_fails_naming_the_key(sweep: Sweep) -> None:
    out = sweep.run(
        "+experiment=scaling", "circuit.n_qubits=3,4", "sweep.depth_rule=cubic", "run.quiet=true"
    )
    assert out.returncode != 0
    assert "sweep.depth_rule='cubic' is invalid" in out.stderr
    assert not [r for r in sweep.runs() if r.info.status == "FINISHED"]


# ---------------------------------------------------------------- 2, 3. launchers
LAUNCHER_AXES = [
    "circuit.n_qubits=3,4",
    "circuit.seed=1,2",
    "circuit.depth=4",
    "noise.level=0.01",
    "run.quiet=true",
]
LAUNCHER_KEYS = ("circuit.n_qubits", "circuit.seed")


def records(kids: list[Any]) -> dict[tuple[Any, ...], dict[str, float]]:
    """Deterministic metrics by parameter combination."""
    out = {}
    for k in kids:
        key = tuple(value(k.data.params[p]) for p in LAUNCHER_KEYS)
        assert key not in out, f"two jobs ran {key}"
        out[key] = {m: k.data.metrics[m] for m in DETERMINISTIC}
    return out


def assert_same_records(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, metrics in want.items():
        for name, expected in metrics.items():
            assert math.isclose(got[key][name], expected, rel_tol=0, abs_tol=1e-9), (key, name)


@pytest.fixture(scope="module")
def basic_records(
    tmp_path_factory: pytest.TempPathFactory, empty_store: Path, run_cli: Any, start_cli: Any
) -> dict:
    """The reference sweep on Hydra's basic (in-process, sequential) launcher."""
    sw = Sweep(tmp_path_factory.mktemp("basic"), empty_store, run_cli, start_cli)
    sw.ok(*LAUNCHER_AXES)
    _, kids = check_finished_batch(sw, 4, {"scaling.png", "fidelity_over_runs.png"})
    return records(kids)


def test_basic_launcher_reference(basic_records: dict) -> None:
    assert set(basic_records) == set(product([3.0, 4.0], [1.0, 2.0]))


def test_joblib_launcher_records_like_basic(sweep: Sweep, basic_records: dict) -> None:
    sweep.ok(*LAUNCHER_AXES, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    _, kids = check_finished_batch(sweep, 4, {"scaling.png", "fidelity_over_runs.png"})
    assert_same_records(records(kids), basic_records)
    # two workers share the cores: each job's BLAS threads are the cores / 2
    from lret_runner.simulators.threads import available_cores

    results = [json.loads(p.read_text()) for p in sweep.root.glob("multirun/**/result.json")]
    assert {r["threads"] for r in results} == {max(1, available_cores() // 2)}


def test_submitit_local_launcher_records_like_basic(sweep: Sweep, basic_records: dict) -> None:
    axes = [a if not a.startswith("circuit.seed=") else "circuit.seed=1" for a in LAUNCHER_AXES]
    sweep.ok(*axes, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5")
    _, kids = check_finished_batch(sweep, 2, {"scaling.png", "fidelity_over_runs.png"})
    want = {k: v for k, v in basic_records.items() if k[1] == 1.0}
    assert_same_records(records(kids), want)
    assert list((sweep.root / "multirun").glob("*/*/.submitit")), "submitit did not run the jobs"


def test_batch_callback_pickles_into_launcher_workers(tmp_path: Path) -> None:
    """joblib and submitit pickle the Hydra context, BatchCallback and its live tracker included."""
    from lret_runner.task.batch import BatchCallback
    from lret_runner.tracking import MlflowTracker

    callback = BatchCallback()
    callback.tracker = MlflowTracker(sqlite_uri(tmp_path))
    callback.tracker.sessions.ensure("pickled")  # a live client
    copy = pickle.loads(pickle.dumps(callback))
    assert copy.tracker.client.get_experiment_by_name("pickled") is not None


# ---------------------------------------------------------------- 4. a failing job
@pytest.mark.parametrize(
    ("overrides", "bad", "message"),
    [
        pytest.param(
            ["circuit.n_qubits=0,3", "circuit.depth=4", "run.quiet=true"],
            0.0,
            "circuit.n_qubits=0 is invalid",
            id="validation-error",
        ),
        pytest.param(
            [
                "simulator=fdm",
                "circuit.n_qubits=16,3",
                "circuit.depth=4",
                "run.compare_to_exact=false",
                "run.quiet=true",
            ],
            16.0,
            "MemoryRefusal",
            id="fdm-memory-refusal",
        ),
    ],
)
def test_failing_job_is_recorded_and_the_sweep_goes_on(
    sweep: Sweep, overrides: list[str], bad: float, message: str
) -> None:
    if bad == 16.0:
        psutil = pytest.importorskip("psutil")
        if psutil.virtual_memory().available > 190 * 2**30:
            pytest.skip("enough free memory for a 16-qubit dense density matrix: no refusal")
    out = sweep.run(*overrides)
    assert out.returncode != 0
    assert message in out.stderr
    [parent] = sweep.batches()
    kids = sweep.children(parent)
    assert len(kids) == 2
    failed, good = kids  # job 0 failed, and job 1 still ran after it
    assert value(failed.data.params["circuit.n_qubits"]) == bad
    assert value(good.data.params["circuit.n_qubits"]) == 3.0
    assert good.info.status == "FINISHED" and "error" not in good.data.tags
    assert failed.info.status == "FAILED"
    assert message in failed.data.tags["error"]
    assert all(k.data.tags["mlflow.parentRunId"] == parent.info.run_id for k in kids)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["cancelled"] == "false"
    counts = {k: metric(parent, k) for k in ("total", "completed", "failed", "killed")}
    assert counts == {"total": 2, "completed": 1, "failed": 1, "killed": 0}
    jobs_csv = sweep.artifact_text(parent.info.run_id, "summary/jobs.csv")
    rows = list(csv.DictReader(jobs_csv.splitlines()))
    assert sorted(r["status"] for r in rows) == ["FAILED", "FINISHED"]
    assert message in next(r["error"] for r in rows if r["status"] == "FAILED")


# ---------------------------------------------------------------- 5. resume
def test_resume_runs_only_the_new_job(sweep: Sweep) -> None:
    axes = ["circuit.n_qubits=3", "circuit.depth=4", "run.quiet=true"]
    sweep.ok(*axes, "circuit.seed=1,2,3")
    [first] = sweep.batches()
    first_kids = sweep.children(first)
    assert [k.info.status for k in first_kids] == ["FINISHED"] * 3

    sweep.ok(*axes, "circuit.seed=1,2,3,4", "sweep.resume=true")
    batches = sweep.batches()
    assert len(batches) == 2
    assert batches[0].info.run_id == first.info.run_id
    second = batches[1]
    new_kids = sweep.children(second)
    assert len(new_kids) == 1  # only seed 4 made a run
    [new] = new_kids
    assert new.info.status == "FINISHED"
    assert value(new.data.params["circuit.seed"]) == 4.0
    assert new.data.tags["job_num"] == "3"
    assert len(sweep.runs()) == 2 + 3 + 1  # two batches, 3 + 1 job runs
    counts = {k: metric(second, k) for k in ("total", "completed", "failed", "killed", "skipped")}
    assert counts == {"total": 4, "completed": 1, "failed": 0, "killed": 0, "skipped": 3}
    assert second.info.status == "FINISHED"
    assert second.data.tags["cancelled"] == "false"
    skipped = {k: v for k, v in second.data.tags.items() if k.startswith("lret.skipped.")}
    assert skipped == {f"lret.skipped.{k.data.tags['job_num']}": k.info.run_id for k in first_kids}
    # the first batch is untouched
    assert sweep.children(first)[0].info.run_id == first_kids[0].info.run_id
    assert metric(sweep.batches()[0], "completed") == 3


# ---------------------------------------------------------------- 6. cancellation
# The exact engine (fdm) on 12 qubits, 60 moments: one job simulates for ~5 s on a 2-core
# machine (plus a fraction of a second of job overhead), and its time is bound by the 4^n
# density matrix (the LRET jobs used before became ~100x faster as the engine improved, and
# a signal then arrived after the sweep had ended; fdm in the Pauli basis then made 11
# qubits and 20 moments too short: a third job started before the signal).
LONG_JOBS = [
    "simulator=fdm",
    "circuit.n_qubits=12",
    "circuit.depth=60",
    "noise.level=0.01",
    "run.compare_to_exact=false",
    "run.shots=0",
    "run.quiet=true",
    "circuit.seed=1,2,3,4",
]


def poll(proc: subprocess.Popen[str], what: str, check: Any, timeout: float = 180) -> Any:
    """Call `check` until it returns something truthy; fail if the sweep ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the sweep ended (exit {proc.returncode}) before {what}\n{err[-3000:]}")
        try:
            found = check()
        except Exception as exc:  # the store is being written by the sweep
            if "locked" not in str(exc).lower():
                raise
            found = None
        if found:
            return found
        time.sleep(0.2)
    proc.kill()
    proc.communicate()
    pytest.fail(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the sweep did not stop within 120 s of {sig.name}")
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_the_sweep(sweep: Sweep, sig: signal.Signals) -> None:
    proc = sweep.popen(*LONG_JOBS)

    def first_done_second_running() -> Any:
        batches = sweep.batches()
        if not batches:
            return None
        kids = sweep.children(batches[0])
        states = [k.info.status for k in kids]
        return (batches[0], kids) if states == ["FINISHED", "RUNNING"] else None

    parent, kids = poll(proc, "job 0 FINISHED and job 1 RUNNING", first_done_second_running)
    time.sleep(1.0)  # well inside job 1 (its simulation takes seconds)
    code, err = stop(proc, sig)
    assert code != 0, err[-3000:]

    [parent] = sweep.batches()
    kids = sweep.children(parent)
    assert [k.data.tags["job_num"] for k in kids] == ["0", "1"], "a job started after the signal"
    assert kids[0].info.status == "FINISHED"
    assert kids[1].info.status == "KILLED"
    assert kids[1].data.tags.get("error")
    assert parent.info.status == "KILLED"
    assert parent.data.tags["cancelled"] == "true"
    counts = {k: metric(parent, k) for k in ("total", "completed", "failed", "killed")}
    assert counts == {"total": 4, "completed": 1, "failed": 0, "killed": 1}
    time.sleep(1.0)
    assert len(sweep.runs()) == 3, "runs were created after the sweep stopped"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_before_the_first_job_cancels_the_batch(sweep: Sweep, sig: signal.Signals) -> None:
    """A signal while the batch exists but no job has started (the job is still importing)."""
    proc = sweep.popen(*LONG_JOBS)
    poll(proc, "the batch parent", lambda: sweep.batches())
    if len(sweep.runs()) != 1:
        proc.kill()
        proc.communicate()
        pytest.skip("the first job started before the signal could be sent")
    code, err = stop(proc, sig)
    assert code != 0
    [parent] = sweep.batches()
    assert len(sweep.children(parent)) <= 1
    assert parent.info.status == "KILLED", f"the batch was left {parent.info.status}: {err}"
    assert parent.data.tags.get("cancelled") == "true"


# ---------------------------------------------------------------- 7. parallel writers
def test_parallel_writers_lose_no_run(tmp_path: Path, run_cli: Any, start_cli: Any) -> None:
    sw = Sweep(tmp_path, None, run_cli, start_cli)  # a new store: its creation races too
    sw.ok(
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=4",
        "circuit.n_qubits=2",
        "circuit.depth=2",
        "circuit.seed=range(40)",
        "run.compare_to_exact=false",
        "run.shots=0",
        "run.quiet=true",
        timeout=600,
    )
    [parent] = sw.batches()
    kids = sw.children(parent)
    assert len(kids) == 40
    assert [k.info.status for k in kids] == ["FINISHED"] * 40
    seeds = sorted(value(k.data.params["circuit.seed"]) for k in kids)
    assert seeds == [float(s) for s in range(40)]
    assert metric(parent, "completed") == 40
    assert metric(parent, "total") == 40
    assert parent.info.status == "FINISHED"
    assert len(sw.runs()) == 41


# ---------------------------------------------------------------- 8. Slurm
SLURM = {
    "partition": "debug",
    "timeout_min": 30,
    "mem_gb": 4,
    "cpus_per_task": 2,
    "gpus_per_node": 0,
    "array_parallelism": 8,
}


def test_slurm_launcher_config_and_submission_script(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitit = pytest.importorskip("submitit")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    out = run_cli(
        [
            "hydra/launcher=submitit_slurm",
            *[f"hydra.launcher.{k}={v}" for k, v in SLURM.items()],
            "--cfg",
            "hydra",
            "-p",
            "hydra.launcher",
            "--resolve",
        ],
        tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    launcher = OmegaConf.to_container(OmegaConf.create(out.stdout))
    assert isinstance(launcher, dict)
    assert launcher["_target_"].endswith("hydra_submitit_launcher.submitit_launcher.SlurmLauncher")
    assert {k: launcher[k] for k in SLURM} == SLURM
    assert not (tmp_path / "mlruns").exists(), "composing the config must not touch the store"

    # Mirror BaseSubmititLauncher.launch (hydra_submitit_launcher 1.4): init keys, then the
    # base keys as-is and every other key prefixed with the executor's name.
    # SlurmExecutor() refuses to exist without `srun` on PATH; pretend it is there
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    params = {k: v for k, v in launcher.items() if k != "_target_"}
    init_keys = {"max_num_timeout", "python"}
    folder = tmp_path / ".submitit" / "%j"
    executor = submitit.AutoExecutor(
        folder=folder,
        cluster="slurm",
        **{f"slurm_{k}": v for k, v in params.items() if k in init_keys},
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{
            (k if k in base else f"slurm_{k}"): v
            for k, v in params.items()
            if k not in init_keys | {"submitit_folder"}
        }
    )
    # An N-job sweep is one array job: SlurmExecutor._internal_process_submissions copies
    # the executor and sets map_count = N before writing the sbatch file.
    n_jobs = 12
    slurm = executor._executor
    array = submitit.SlurmExecutor(slurm.folder, slurm.max_num_timeout)
    array.update_parameters(**slurm.parameters)
    array.parameters["map_count"] = n_jobs
    text = array._make_submission_file_text(array._submitit_command_str, "uid")
    lines = text.splitlines()
    for line in [
        "#SBATCH --partition=debug",
        "#SBATCH --time=30",
        "#SBATCH --mem=4GB",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --gpus-per-node=0",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --nodes=1",
        f"#SBATCH --array=0-{n_jobs - 1}%8",
        "#SBATCH --job-name=__main__",
        "#SBATCH --signal=USR2@120",
    ]:
        assert line in lines, f"{line!r} not in\n{text}"
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in lines)
    # fewer jobs than array_parallelism: all of them at once
    array.parameters["map_count"] = 3
    assert "#SBATCH --array=0-2%3" in array._make_submission_file_text("true", "uid").splitlines()
