"""The real CLI (``python -m lret_runner``) end to end, read back through MLflow.

Every run goes to a temporary SQLite store; successful and run-time-failing runs share
one store per module (each in its own session or located by its run id), config errors
get an empty store of their own so that "no run was created" is checkable.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow")

from conftest import sqlite_uri  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402

import lret_runner  # noqa: E402

RESULT_KEYS = {
    "run_id",
    "status",
    "backend_used",
    "n_qubits",
    "depth",
    "simulation_time_seconds",
    "final_rank",
    "largest_rank",
    "widest_factor",
    "rank_history",
    "dense_spans",
    "memory_used_mb",
    "truncation_error",
    "exact_fidelity",
    "exact_trace_distance",
    "exact_reference",
    "ideal_fidelity",
    "ideal_tvd",
    "ideal_hellinger_fidelity",
    "xeb_fidelity",
    "xeb_fidelity_sampled",
    "ideal_reference",
    "purity",
    "counts",
    "probabilities",
    "expectation_values",
    "error",
    "started_at",
    "completed_at",
}
ARTIFACTS = {"config.yaml", "result.json", "counts.json", "histogram.png", "summary.png"}
QUICK = ["+experiment=quickstart", "run.quiet=true", "circuit.n_qubits=4", "circuit.depth=6"]


# ---------------------------------------------------------------- helpers
def all_runs(uri: str) -> list[Any]:
    """Every run in a store; [] if the store was never created."""
    if not Path(uri.removeprefix("sqlite:///")).exists():
        return []
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL) if ids else []


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    out, err = proc.stdout[-3000:], proc.stderr[-3000:]
    return f"exit {proc.returncode}\n--- stdout\n{out}\n--- stderr\n{err}"


def result_files(cwd: Path) -> list[Path]:
    return sorted(cwd.glob("outputs/**/result.json"))


@dataclass
class Store:
    uri: str

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.uri}

    @cached_property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri)

    def session_runs(self, name: str) -> list[Any]:
        exp = self.client.get_experiment_by_name(name)
        assert exp is not None, f"no experiment {name!r}"
        return self.client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL)


@dataclass
class Done:
    """A finished CLI process, its launch dir, and where it recorded things."""

    proc: subprocess.CompletedProcess[str]
    cwd: Path
    store: Store | None = None

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    @cached_property
    def result_path(self) -> Path:
        files = result_files(self.cwd)
        assert len(files) == 1, f"expected one result.json, found {files}\n{describe(self.proc)}"
        return files[0]

    @cached_property
    def result(self) -> dict[str, Any]:
        return json.loads(self.result_path.read_text())

    @cached_property
    def run(self) -> Any:
        assert self.store is not None
        return self.store.client.get_run(self.result["run_id"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One SQLite store for the module, its schema created here (before any subprocess)."""
    root = tmp_path_factory.mktemp("store")
    (root / "mlruns").mkdir()
    shared = Store(sqlite_uri(root))
    shared.client.search_experiments(max_results=1)
    return shared


@pytest.fixture(scope="module")
def quickstart(run_cli: Any, store: Store, tmp_path_factory: pytest.TempPathFactory) -> Done:
    cwd = tmp_path_factory.mktemp("quickstart")
    return Done(run_cli(QUICK, cwd, env=store.env), cwd, store)


@pytest.fixture(scope="module")
def finished(quickstart: Done) -> Done:
    assert quickstart.proc.returncode == 0, describe(quickstart.proc)
    return quickstart


# ---------------------------------------------------------------- one successful run
def test_quickstart_exits_zero(quickstart: Done) -> None:
    assert quickstart.proc.returncode == 0, describe(quickstart.proc)
    assert "Traceback" not in quickstart.output


def test_quickstart_run_is_finished_in_its_session(finished: Done, store: Store) -> None:
    exp = store.client.get_experiment_by_name("quickstart")
    assert exp is not None
    runs = store.session_runs("quickstart")
    assert finished.result["run_id"] in {r.info.run_id for r in runs}
    assert finished.run.info.experiment_id == exp.experiment_id
    assert finished.run.info.status == "FINISHED"


def test_quickstart_params_are_the_flattened_result_config(finished: Done) -> None:
    params = finished.run.data.params
    assert params["circuit.n_qubits"] == "4"
    assert params["circuit.depth"] == "6"
    assert params["circuit.name"] == "random"
    assert params["simulator.name"] == "lret"
    assert params["noise.name"] == "depolarizing"
    assert not any(k.startswith(("session.", "tracking.", "sweep.")) for k in params)
    assert "run.shots" in params
    assert not any(isinstance(v, dict) for v in params.values())


def test_quickstart_metrics(finished: Done) -> None:
    metrics = finished.run.data.metrics
    names = ("simulation_time_seconds", "final_rank", "truncation_error", "exact_fidelity", "rank")
    for name in (*names, "ideal_fidelity", "ideal_tvd", "xeb_fidelity", "dense"):
        assert name in metrics, f"metric {name} missing: {sorted(metrics)}"
    assert metrics["simulation_time_seconds"] >= 0
    assert metrics["final_rank"] >= 1
    assert metrics["truncation_error"] >= 0
    assert 0.0 <= metrics["exact_fidelity"] <= 1.0 + 1e-9
    assert metrics["final_rank"] == finished.result["final_rank"]
    assert metrics["exact_fidelity"] == pytest.approx(finished.result["exact_fidelity"])
    # the quickstart's noise moves the state: the fidelity to the noiseless circuit is < 1
    assert 0.0 < metrics["ideal_fidelity"] < 1.0
    assert metrics["ideal_fidelity"] == pytest.approx(finished.result["ideal_fidelity"])
    assert finished.run.data.tags["lret.result_schema"] == "2"
    assert finished.run.data.tags["ideal_reference"].startswith("noiseless state vector")


def test_quickstart_rank_is_a_stepped_metric_per_moment(finished: Done, store: Store) -> None:
    from omegaconf import OmegaConf

    from lret_runner.experiment import prepare

    history = sorted(
        store.client.get_metric_history(finished.result["run_id"], "rank"), key=lambda m: m.step
    )
    ranks = finished.result["rank_history"]
    assert ranks, "empty rank_history"
    assert [m.step for m in history] == list(range(1, len(ranks) + 1))
    assert [m.value for m in history] == [float(r) for r in ranks]
    assert history[-1].value == finished.result["final_rank"]
    # one step per moment of the noisy circuit the run simulated
    cfg = OmegaConf.load(finished.result_path.parent / "config.yaml")
    assert len(ranks) == len(prepare(cfg).program.moments)


def test_quickstart_tags(finished: Done) -> None:
    from omegaconf import OmegaConf

    from lret_runner.config import config_hash

    tags = finished.run.data.tags
    assert tags["session"] == "quickstart"
    assert tags["backend_used"] == "lret"
    assert tags["circuit"] == "random"
    assert tags["noise"] == "depolarizing"
    assert tags["lret_runner_version"] == lret_runner.__version__
    assert re.fullmatch(r"[0-9a-f]{8,64}", tags["config_hash"])
    saved = OmegaConf.load(finished.result_path.parent / "config.yaml")
    assert tags["config_hash"] == config_hash(saved)
    assert "error" not in tags


def test_quickstart_artifacts_are_logged_and_images_load(
    finished: Done, store: Store, tmp_path: Path
) -> None:
    import matplotlib.image as mpimg

    run_id = finished.result["run_id"]
    names = {f.path for f in store.client.list_artifacts(run_id)}
    assert ARTIFACTS <= names, f"missing {ARTIFACTS - names}"
    for png in ("histogram.png", "summary.png"):
        local = store.client.download_artifacts(run_id, png, str(tmp_path))
        image = mpimg.imread(local)
        assert image.ndim == 3 and image.shape[2] in (3, 4), image.shape
        assert image.shape[0] >= 100 and image.shape[1] >= 100, image.shape
        assert image.std() > 0, f"{png} is blank"
    logged = json.loads(
        Path(store.client.download_artifacts(run_id, "result.json", str(tmp_path))).read_text()
    )
    assert logged == finished.result


def test_quickstart_result_json(finished: Done) -> None:
    result = finished.result
    assert RESULT_KEYS <= set(result), f"missing {RESULT_KEYS - set(result)}"
    assert result["run_id"] == finished.run.info.run_id
    assert result["status"] == "FINISHED"
    assert result["error"] is None
    assert result["backend_used"] == "lret"
    assert result["n_qubits"] == 4
    assert result["final_rank"] <= result["largest_rank"] <= 2**4
    assert result["final_rank"] == result["rank_history"][-1]
    assert 0.0 <= result["exact_fidelity"] <= 1.0 + 1e-9
    shots = int(finished.run.data.params["run.shots"])
    assert shots > 0
    assert sum(result["counts"].values()) == shots
    assert all(len(bits) == 4 and set(bits) <= {"0", "1"} for bits in result["counts"])
    started = datetime.fromisoformat(result["started_at"])
    completed = datetime.fromisoformat(result["completed_at"])
    assert started <= completed
    counts_file = finished.result_path.parent / "counts.json"
    assert json.loads(counts_file.read_text()) == result["counts"]


# ---------------------------------------------------------------- sessions and observables
def test_session_name_and_description_create_the_experiment(
    run_cli: Any, store: Store, tmp_path: Path
) -> None:
    proc = run_cli(
        [
            *QUICK[:2],
            "circuit.n_qubits=2",
            "circuit.depth=2",
            "session.name=my_session",
            'session.description="hello"',
            "tracking.log_plots=false",
        ],
        tmp_path,
        env=store.env,
    )
    assert proc.returncode == 0, describe(proc)
    exp = store.client.get_experiment_by_name("my_session")
    assert exp is not None
    assert exp.tags.get("description") == "hello"
    runs = store.session_runs("my_session")
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert runs[0].data.tags["session"] == "my_session"
    # tracking.log_plots=false: a single run without its PNGs
    artifacts = {a.path for a in store.client.list_artifacts(runs[0].info.run_id)}
    assert artifacts == ARTIFACTS - {"histogram.png", "summary.png"}


def test_observables_are_logged(run_cli: Any, store: Store, tmp_path: Path) -> None:
    done = Done(
        run_cli(["+experiment=ghz_noise", "run.quiet=true"], tmp_path, env=store.env),
        tmp_path,
        store,
    )
    assert done.proc.returncode == 0, describe(done.proc)
    values = done.result["expectation_values"]
    assert set(values) == {"XXXXXXXX", "ZZIIIIII"}
    metrics = done.run.data.metrics
    for pauli, value in values.items():
        assert metrics[f"expval_{pauli}"] == pytest.approx(value)
        assert -1.0 - 1e-9 <= value <= 1.0 + 1e-9
    # a GHZ state has <X...X> = <ZZ> = 1; weak noise lowers them but keeps them positive
    assert 0.0 < values["XXXXXXXX"] < 1.0
    assert 0.5 < values["ZZIIIIII"] <= 1.0 + 1e-9


# ---------------------------------------------------------------- config errors: nothing recorded
def test_invalid_key_fails_before_anything_is_recorded(run_cli: Any, tmp_path: Path) -> None:
    proc = run_cli(["+experiment=quickstart", "circuit.dpeth=3"], tmp_path)
    assert proc.returncode != 0
    assert "dpeth" in proc.stderr
    assert all_runs(sqlite_uri(tmp_path)) == []
    assert result_files(tmp_path) == []


def test_invalid_value_fails_with_key_and_value_and_no_traceback(
    run_cli: Any, tmp_path: Path
) -> None:
    proc = run_cli(["+experiment=quickstart", "circuit.n_qubits=0"], tmp_path)
    assert proc.returncode != 0
    assert "circuit.n_qubits=0" in proc.stderr, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all_runs(sqlite_uri(tmp_path)) == []


def test_missing_qasm_file_fails_clearly(run_cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.qasm"
    proc = run_cli(["circuit=qasm", f"circuit.path={missing}"], tmp_path)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr, describe(proc)
    assert "not found" in proc.stderr.lower()
    assert "Traceback" not in proc.stdout + proc.stderr
    assert all_runs(sqlite_uri(tmp_path)) == []


def test_malformed_qasm_file_fails(run_cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.qasm"
    bad.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncx q[0] q[1;\n')
    proc = run_cli(["circuit=qasm", f"circuit.path={bad}"], tmp_path)
    assert proc.returncode != 0
    assert "bad.qasm" in proc.stderr, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr


def test_verbose_failure_shows_a_traceback(run_cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.qasm"
    proc = run_cli(["circuit=qasm", f"circuit.path={missing}", "hydra.verbose=true"], tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr, describe(proc)
    assert str(missing) in proc.stderr


# ---------------------------------------------------------------- run-time failures: FAILED
def _fdm_needs_more_than_free_memory() -> bool:
    import psutil

    return psutil.virtual_memory().available < 3 * 16 * 4**16


@pytest.mark.skipif(
    not _fdm_needs_more_than_free_memory(), reason="this machine could hold a 16-qubit fdm"
)
def test_oversized_fdm_is_refused_before_anything_is_recorded(
    run_cli: Any, store: Store, tmp_path: Path
) -> None:
    args = [
        "simulator=fdm",
        "circuit.n_qubits=16",
        "run.compare_to_exact=false",
        "run.quiet=true",
        "session.name=fdm_oversized",
    ]
    proc = run_cli(args, tmp_path, env=store.env)
    assert proc.returncode == 1
    assert "simulator=lret" in proc.stderr, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert store.client.get_experiment_by_name("fdm_oversized") is None
    assert result_files(tmp_path) == []


def test_timeout_is_recorded_failed(run_cli: Any, store: Store, tmp_path: Path) -> None:
    args = [
        *QUICK[:2],
        "circuit.n_qubits=8",
        "circuit.depth=40",
        "run.timeout_seconds=0.001",
        "session.name=timeout_test",
    ]
    done = Done(run_cli(args, tmp_path, env=store.env), tmp_path, store)
    assert done.proc.returncode != 0
    assert "timeout" in done.proc.stderr.lower(), describe(done.proc)
    (run,) = store.session_runs("timeout_test")
    assert run.info.status == "FAILED"
    assert "timeout" in run.data.tags["error"].lower()
    assert done.result["status"] == "FAILED"
    assert "timeout" in done.result["error"].lower()
    assert "simulation_time_seconds" not in run.data.metrics


# ---------------------------------------------------------------- no tracking, no run
def test_tracking_none_records_nothing(run_cli: Any, tmp_path: Path) -> None:
    args = [*QUICK[:2], "circuit.n_qubits=3", "circuit.depth=4", "tracking=none"]
    done = Done(run_cli(args, tmp_path, env={"MLFLOW_TRACKING_URI": None}), tmp_path)
    assert done.proc.returncode == 0, describe(done.proc)
    assert not (tmp_path / "mlruns").exists()
    assert done.result["status"] == "FINISHED"
    assert isinstance(done.result["run_id"], str) and len(done.result["run_id"]) >= 8


def test_cfg_job_prints_the_config_and_runs_nothing(run_cli: Any, tmp_path: Path) -> None:
    import yaml

    proc = run_cli(["+experiment=quickstart", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0, describe(proc)
    printed = yaml.safe_load(proc.stdout)
    assert printed["circuit"]["name"] == "random"
    assert printed["circuit"]["n_qubits"] == 6
    assert printed["session"]["name"] == "quickstart"
    assert {"circuit", "noise", "simulator", "backend", "cloud", "tracking", "run"} <= set(printed)
    assert "hydra" not in printed
    assert not (tmp_path / "outputs").exists()
    assert not (tmp_path / "mlruns").exists()


# ---------------------------------------------------------------- Ctrl-C: recorded KILLED
@dataclass
class Killed:
    proc: subprocess.Popen[str]
    stdout: str
    stderr: str
    run: Any
    cwd: Path


@pytest.fixture(scope="module")
def killed(start_cli: Any, store: Store, tmp_path_factory: pytest.TempPathFactory) -> Killed:
    """large_lret (n=20, about a minute) interrupted with SIGINT once its run is RUNNING."""
    cwd = tmp_path_factory.mktemp("killed")
    proc = start_cli(["+experiment=large_lret", "run.quiet=true"], cwd, env=store.env)
    try:
        running = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            exp = store.client.get_experiment_by_name("large_lret")
            if exp is not None:
                runs = store.client.search_runs([exp.experiment_id])
                # params are logged right before the simulation starts
                running = next(
                    (r for r in runs if r.info.status == "RUNNING" and r.data.params), None
                )
                if running is not None:
                    break
            time.sleep(0.5)
        assert running is not None, f"no RUNNING run within 60 s (exit code {proc.poll()})"
        time.sleep(1.0)  # well inside the simulation, which takes far longer
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return Killed(proc, stdout, stderr, store.client.get_run(running.info.run_id), cwd)


def test_sigint_records_the_run_killed(killed: Killed) -> None:
    assert killed.proc.returncode != 0
    assert killed.run.info.status == "KILLED", killed.stderr[-2000:]
    assert killed.run.data.tags.get("status") == "KILLED"
    assert "interrupted" in killed.run.data.tags.get("error", "")
    (path,) = result_files(killed.cwd)
    result = json.loads(path.read_text())
    assert result["status"] == "KILLED"
    assert result["run_id"] == killed.run.info.run_id
    assert "KILLED" in killed.stderr
    assert "Traceback" not in killed.stdout + killed.stderr


def test_sigint_error_says_ctrl_c(killed: Killed) -> None:
    assert killed.run.data.tags.get("error") == "interrupted (Ctrl-C)"


# ---------------------------------------------------------------- hydra.job.chdir
def test_chdir_keeps_the_default_store_and_relative_inputs(run_cli: Any, tmp_path: Path) -> None:
    import shutil

    from lret_runner.circuits import EXAMPLE_QASM

    shutil.copy(EXAMPLE_QASM, tmp_path / "mine.qasm")
    args = ["circuit=qasm", "circuit.path=mine.qasm", "run.quiet=true", "hydra.job.chdir=true"]
    done = Done(
        run_cli(args, tmp_path, env={"MLFLOW_TRACKING_URI": None}),
        tmp_path,
        Store(sqlite_uri(tmp_path)),
    )
    assert done.proc.returncode == 0, describe(done.proc)
    assert done.run.info.status == "FINISHED"  # in <launch dir>/mlruns, not the run's dir
    assert not list(tmp_path.glob("outputs/**/mlruns"))
    assert done.run.data.params["circuit.path"] == str(tmp_path / "mine.qasm")


def test_a_cloud_preset_without_multirun_is_refused(run_cli: Any, tmp_path: Path) -> None:
    """cloud=slurm sends a sweep's jobs; a single run would silently run here instead."""
    proc = run_cli(["cloud=slurm", "run.quiet=true"], tmp_path)
    assert proc.returncode == 1, describe(proc)
    assert "cloud=slurm sends the jobs of a sweep: add -m" in proc.stderr
    assert not (tmp_path / "mlruns").exists()
    assert not list(tmp_path.glob("outputs/*/*/result.json"))
