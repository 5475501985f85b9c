"""The package as a user gets it: the wheel, installed into a fresh venv, run from an
unrelated directory (the idea of Hydra's examples/advanced/hydra_app_example test).

The wheel is built and installed offline, from exactly what the ``Dockerfile`` copies into
the image (so the image's build context is proven sufficient without a Docker engine,
which these machines lack). The new venv sees the test venv's dependencies
through a ``.pth`` file naming the test venv's site-packages; ``.pth`` files inside that
directory are not processed, so the editable install's finder (which would import the
checkout) stays inactive, and ``lret_runner`` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from e2e.conftest import TrackingServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    python: Path  # the new venv's interpreter
    env: dict[str, str]  # the environment to run it in


def _clean_env() -> dict[str, str]:
    """The inherited environment without what would change what the app sees."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "HYDRA_", "LRET_", "PYTHON", "PIP_"))
        and key != "VIRTUAL_ENV"
    }
    env.update(OPENBLAS_NUM_THREADS="1", PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def _run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs
    )
    assert proc.returncode == 0, (
        f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


def docker_context(dst: Path) -> list[str]:
    """Copy what the Dockerfile's ``COPY`` lines name into ``dst``; the names copied."""
    names = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            names += sources
    for name in names:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(path, dst / name, ignore=ignore)
        else:
            shutil.copy2(path, dst / name)
    return names


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed_app")
    env = _clean_env()
    # build from a copy of the image's build context (an in-tree build would also write
    # build/ and *.egg-info into the checkout)
    src = base / "src"
    src.mkdir()
    docker_context(src)
    wheels = base / "wheels"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", wheels, src], env=env)  # fmt: skip
    (wheel,) = wheels.glob("lret_runner-*.whl")

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel], env=env)
    # after the install, so pip does not see the editable lret_runner as installed there
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                env=env).stdout.strip()  # fmt: skip
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "_lret_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))

    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(wheel=wheel, venv=venv, python=python, env=env)


def test_wheel_ships_the_config_tree(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert "lret_runner/conf/config.yaml" in names
    assert "lret_runner/conf/experiment/quickstart.yaml" in names
    source = ROOT / "lret_runner" / "conf"
    missing = [
        p.relative_to(ROOT).as_posix()
        for p in source.rglob("*.yaml")
        if p.relative_to(ROOT).as_posix() not in names
    ]
    assert not missing, f"package-data misses config files: {missing}"


def test_lret_runner_is_imported_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    out = _run(
        [installed.python, "-c", "import lret_runner; print(lret_runner.__file__)"],
        cwd=tmp_path,
        env=installed.env,
    ).stdout.strip()
    where = Path(out).resolve()
    assert where.is_relative_to(installed.venv.resolve()), where
    assert not where.is_relative_to(ROOT), where


def test_cfg_job_prints_the_composed_config(installed: Installed, tmp_path: Path) -> None:
    proc = _run(
        [installed.python, "-m", "lret_runner", "--cfg", "job"], cwd=tmp_path, env=installed.env
    )
    assert "circuit:" in proc.stdout and "simulator:" in proc.stdout
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["circuit"]["name"] == "random"
    assert cfg["simulator"]["name"] == "lret"
    assert cfg["session"]["name"] == "default"


READ_STORE = """
import json, sys
import mlflow
client = mlflow.MlflowClient(sys.argv[1])
ids = [e.experiment_id for e in client.search_experiments()]
runs = client.search_runs(ids)
print(json.dumps([{"status": r.info.status, "metrics": r.data.metrics} for r in runs]))
"""


def test_tracked_run(installed: Installed, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    env = {**installed.env, "MLFLOW_TRACKING_URI": uri}
    _run(
        [installed.python, "-m", "lret_runner", "circuit.n_qubits=2", "circuit.depth=2",
         "run.shots=10", "run.quiet=true"],
        cwd=tmp_path,
        env=env,
    )  # fmt: skip

    (result_file,) = (tmp_path / "outputs").rglob("result.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "FINISHED" and result["n_qubits"] == 2

    out = _run([installed.python, "-c", READ_STORE, uri], cwd=tmp_path, env=installed.env)
    (run,) = json.loads(out.stdout.strip().splitlines()[-1])
    assert run["status"] == "FINISHED"
    assert 0 < run["metrics"]["exact_fidelity"] <= 1


def test_optuna_sweeper_plugin_is_found_in_the_wheel(installed: Installed, tmp_path: Path) -> None:
    """The presets' sweeper comes from the wheel's hydra_plugins (and its entry point)."""
    uri = f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    env = {**installed.env, "MLFLOW_TRACKING_URI": uri}
    proc = _run(
        [installed.python, "-m", "lret_runner", "-m", "+optimize=vqe_energy",
         "hydra.sweeper.n_trials=2"],
        cwd=tmp_path,
        env=env,
    )  # fmt: skip
    assert "best energy" in proc.stdout
    assert (tmp_path / "mlruns" / "optuna.db").is_file()


def test_a_remote_job_runs_from_the_wheel(
    installed: Installed, tmp_path: Path, tracking_server: TrackingServer
) -> None:
    """What a pod of the image does: the Kubernetes dry run's ConfigMap, mounted as a
    folder, run by ``python -m lret_runner.cloud.entry FOLDER`` with the index the Job
    gives; the run reports to the tracking server."""
    session = f"wheel-remote-{tmp_path.name}"
    proc = _run(
        [installed.python, "-m", "lret_runner", "-m", "cloud=k8s", "cloud.dry_run=true",
         f"tracking.uri={tracking_server.uri}", f"session.name={session}",
         "circuit.n_qubits=2,3", "circuit.depth=2", "run.quiet=true"],
        cwd=tmp_path, env=installed.env,
    )  # fmt: skip
    manifests = [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict)]
    [configmap] = [d for d in manifests if d.get("kind") == "ConfigMap"]
    [job] = [d for d in manifests if d.get("kind") == "Job"]
    mount = job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    folder = tmp_path / "mounted"
    folder.mkdir()
    for name, text in configmap["data"].items():
        (folder / name).write_text(text)
    work = tmp_path / "pod"
    work.mkdir()
    args = [a.replace(mount, str(folder)) for a in command]
    assert args[:3] == ["python", "-m", "lret_runner.cloud.entry"]
    env = {**installed.env, "JOB_COMPLETION_INDEX": "1"}
    _run([installed.python, *args[1:]], cwd=work, env=env)

    import mlflow

    client = mlflow.MlflowClient(tracking_server.uri)
    exp = client.get_experiment_by_name(session)
    [run] = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["circuit.n_qubits"] == "3" and run.data.tags["job_num"] == "1"
