"""``cloud=NAME``: the presets, their settings checks, what the batch hands each job, and the
staged job configs of the remote engines run by the job-side entry (in process, on a
SQLite store; the engines themselves are tested in tests/test_cloud_*.py and tests/e2e)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_config
from omegaconf import OmegaConf

from lret_runner import cloud
from lret_runner.cloud import jobs
from lret_runner.errors import ConfigError

LAUNCHERS = {
    "local": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "slurm": "hydra_plugins.lret_slurm_launcher.lret_slurm_launcher.LretSlurmLauncher",
    "ray": "hydra_plugins.lret_ray_launcher.lret_ray_launcher.LretRayLauncher",
    "k8s": "hydra_plugins.lret_kubernetes_launcher.lret_kubernetes_launcher.KubernetesLauncher",
    "aws_batch": "hydra_plugins.lret_aws_batch_launcher.lret_aws_batch_launcher.AwsBatchLauncher",
    "gcp_batch": "hydra_plugins.lret_gcp_batch_launcher.lret_gcp_batch_launcher.GcpBatchLauncher",
}


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_each_preset_sets_its_launcher(name: str) -> None:
    cfg = compose_config([f"cloud={name}"], hydra=True)
    assert cfg.cloud.name == name
    assert cfg.hydra.launcher._target_ == LAUNCHERS[name]
    remote = name in cloud.REMOTE
    assert cfg.tracking.name == ("server" if remote else "mlflow")


def test_slurm_settings_reach_submitit() -> None:
    cfg = compose_config(
        ["cloud=slurm", "cloud.partition=debug", "cloud.timeout_min=5", "cloud.mem_gb=2"],
        hydra=True,
    )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["partition"] == "debug" and launcher["timeout_min"] == 5
    assert launcher["mem_gb"] == 2 and launcher["cpus_per_task"] == 1


def test_ray_settings_reach_the_launcher() -> None:
    cfg = compose_config(["cloud=ray", "cloud.address=10.0.0.1:6379", "cloud.num_cpus=2"], True)
    ray = OmegaConf.to_container(cfg.hydra.launcher.ray, resolve=True)
    assert ray == {"init": {"address": "10.0.0.1:6379"}, "remote": {"num_cpus": 2}}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["cloud.foo=1"], "Could not override 'cloud.foo'"),
        (["cloud.timeout_min=abc"], "cloud.timeout_min"),
    ],
)
def test_unknown_or_mistyped_settings_fail_at_composition(overrides: list[str], needle: str):
    with pytest.raises(Exception, match=needle):
        compose_config(["cloud=slurm", *overrides])


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["cloud=slurm", "cloud.timeout_min=0"], "cloud.timeout_min=0 is invalid: must be >= 1"),
        (["cloud=ray", "cloud.num_cpus=0"], "cloud.num_cpus=0 is invalid"),
        (["cloud=ray", "cloud.address=nowhere"], "cloud.address='nowhere' is invalid"),
        (["cloud=k8s", "cloud.poll_seconds=0"], "cloud.poll_seconds=0.0 is invalid: must be > 0"),
        (["cloud=aws_batch", "cloud.retry_attempts=11"], "cloud.retry_attempts=11"),
        (["cloud=gcp_batch", "cloud.max_retry_count=-1"], "cloud.max_retry_count=-1"),
        (["cloud=k8s", "tracking=none"], "tracking=none is invalid with cloud=k8s"),
        (["cloud=aws_batch", "tracking=mlflow"], "tracking.tracking_uri=the SQLite store"),
        (
            ["cloud=gcp_batch", "tracking=mlflow", "tracking.tracking_uri=sqlite:////x/m.db"],
            "they cannot reach a store on this machine's disk",
        ),
        (["cloud=k8s", "tracking.uri=ftp://x"], "tracking.uri='ftp://x' is invalid"),
    ],
)
def test_bad_settings_are_refused_naming_them(overrides: list[str], needle: str) -> None:
    cfg = compose_config(overrides)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        cloud.check(cfg, Path.cwd())


def test_local_needs_nothing() -> None:
    cloud.check(compose_config([]), Path.cwd())


def test_slurm_without_sbatch_says_how_to_get_a_cluster(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="make slurm-up"):
        cloud.check(compose_config(["cloud=slurm"]), Path.cwd())


def test_ray_address_forms(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert cloud.ray_address("10.1.2.3:6379") == ("10.1.2.3", 6379)
    assert cloud.ray_address("ray://head:10001") == ("head", 10001)
    monkeypatch.setenv("RAY_ADDRESS", "h:1")
    assert cloud.ray_address("auto") == ("h", 1)
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    assert cloud.ray_address("auto") is None  # no cluster was started here
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:6380\n")
    assert cloud.ray_address("auto") == ("127.0.0.1", 6380)


def test_ray_without_a_cluster_fails_before_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = compose_config(["cloud=ray", f"cloud.address=127.0.0.1:{port}"])
    with pytest.raises(ConfigError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        cloud.check(cfg, Path.cwd())


def test_server_and_database_tracking_are_accepted_for_remote_jobs() -> None:
    for overrides in (
        ["tracking=server", "tracking.uri=https://mlflow.example.org"],
        ["tracking=mlflow", "tracking.tracking_uri=postgresql://u@db/mlflow"],
    ):
        cloud.check_remote_tracking(compose_config(["cloud=k8s", *overrides]))


# ---------------------------------------------------------------- the batch's hand-off
def test_hand_off_reaches_every_job_composed_by_the_launcher(tmp_path: Path) -> None:
    """What the launching process resolved is in each job's config as Hydra composes it
    for the launcher (``load_sweep_config``), as ``hydra.*`` keys only."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from lret_runner.config import CONF_PACKAGE, register_configs
    from lret_runner.task.batch import hand_off

    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE):
        cfg = _multirun_config()
        weird = tmp_path / "it's a dir"
        hand_off(cfg, {"hydra.sweep.dir": str(weird), "hydra.job.env_set.LRET_X": "a=b"})
        job = GlobalHydra.instance().config_loader().load_sweep_config(cfg, ["run.seed=3"])
    assert job.hydra.sweep.dir == str(weird)
    assert job.hydra.job.env_set.LRET_X == "a=b"
    assert job.run.seed == 3
    assert list(job.hydra.overrides.task) == ["run.seed=3"]  # the user's own, unchanged


def _multirun_config(overrides: list[str] | None = None) -> Any:
    from hydra import compose
    from hydra.types import RunMode
    from omegaconf import open_dict

    cfg = compose(config_name="config", overrides=overrides or [], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    return cfg


# ---------------------------------------------------------------- staged jobs
def _stage(tmp_path: Path, task: list[str], jobs_overrides: list[list[str]], first: int = 0):
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from lret_runner.config import CONF_PACKAGE, register_configs

    register_configs()
    with initialize_config_module(config_module=CONF_PACKAGE):
        cfg = _multirun_config(task)
        loader = GlobalHydra.instance().config_loader()
        return jobs.stage(loader, cfg, [[*task, *o] for o in jobs_overrides], first)


def test_staged_configs_hold_no_path_of_this_machine(tmp_path: Path, monkeypatch) -> None:
    qasm = tmp_path / "my circuit.qasm"
    qasm.write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRET_BATCH_RUN_ID", "f" * 32)
    staged = _stage(
        tmp_path,
        ["circuit=qasm", "circuit.path=my circuit.qasm", "tracking=server"],
        [["run.shots=10"], ["run.shots=20"]],
        first=4,
    )
    assert staged.count == 2 and staged.first_num == 4 and staged.name == "lret-ffffffff-4"
    names = sorted(staged.files)
    assert names[:2] == ["input-" + names[0].split("-")[1] + "-my_circuit.qasm", "job-0.yaml"]
    assert staged.files[names[0]] == qasm.read_bytes()
    for name in ("job-0.yaml", "job-1.yaml"):
        text = staged.files[name].decode()
        for local in (str(tmp_path), str(Path.home()), str(Path(jobs.__file__).parents[2])):
            assert local not in text, (name, local)
        cfg = OmegaConf.create(text)
        assert cfg.circuit.path == names[0]
        assert cfg.hydra.sweep.dir == f"lret-output/{staged.name}"
        assert cfg.hydra.mode == "MULTIRUN"
    assert OmegaConf.create(staged.files["job-1.yaml"].decode()).hydra.job.num == 5
    assert OmegaConf.create(staged.files["job-1.yaml"].decode()).run.shots == 20


def test_an_unreadable_input_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="circuit.path=.*missing.qasm cannot be read"):
        _stage(tmp_path, ["circuit=qasm", "circuit.path=missing.qasm"], [[]])


def test_a_staged_job_runs_as_a_child_of_its_batch(tmp_path: Path, monkeypatch) -> None:
    """The entry runs job i of a folder of staged files: the run (with the staged input
    file) is the batch's child number first+i, as any launcher's job would be."""
    from lret_runner.cloud.entry import main
    from lret_runner.task.batch import hand_off
    from lret_runner.tracking import MlflowTracker

    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    tracker = MlflowTracker(uri, None, 10.0)
    parent = tracker.start_run("cloudy", "", run_name="batch", tags={"lret.batch": "true"})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.qasm").write_text('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nx q[0];\n')

    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from lret_runner.config import CONF_PACKAGE, register_configs

    register_configs()
    task = ["circuit=qasm", "circuit.path=c.qasm", "noise=none", "run.quiet=true",
            f"tracking.tracking_uri={uri}", "session.name=cloudy"]  # fmt: skip
    with initialize_config_module(config_module=CONF_PACKAGE):
        cfg = _multirun_config(task)
        hand_off(cfg, {"hydra.job.env_set.LRET_BATCH_RUN_ID": parent})
        loader = GlobalHydra.instance().config_loader()
        staged = jobs.stage(loader, cfg, [[*task, "run.shots=7"], [*task, "run.shots=9"]], 2)
    folder = tmp_path / "staged"
    folder.mkdir()
    for name, content in staged.files.items():
        (folder / name).write_bytes(content)
    work = tmp_path / "job"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("LRET_BATCH_RUN_ID", raising=False)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert main([str(folder)]) == 0
    [run] = tracker.batch_jobs(parent)
    assert run.status == "FINISHED" and run.job_num == 3
    assert run.params["run.shots"] == 9 and run.metrics["exact_fidelity"] == pytest.approx(1.0)
    assert list(work.glob(f"lret-output/{staged.name}/3/result.json"))

    # what Hydra's sweeper gets back: job 3 from the store, job 2 failed by the engine
    outcomes = [jobs.Outcome(0, False, "OOMKilled", "log line"), jobs.Outcome(1, True)]
    rets = jobs.returns(staged, outcomes, cfg)
    assert [r.status.name for r in rets] == ["FAILED", "COMPLETED"]
    with pytest.raises(RuntimeError, match="job 2 .*OOMKilled[\\s\\S]*log line"):
        _ = rets[0].return_value


def test_job_index_comes_from_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert jobs.job_index({}) == 0
    assert jobs.job_index({"AWS_BATCH_JOB_ARRAY_INDEX": "7"}) == 7
    assert jobs.job_index({"BATCH_TASK_INDEX": "2", "JOB_COMPLETION_INDEX": ""}) == 2


def test_an_optuna_trial_gets_the_objectives_its_run_logged(monkeypatch: pytest.MonkeyPatch):
    """A remote job returns nothing to the launcher itself: its trial's values are the
    ``objective.*`` metrics its run logged in the tracking server."""
    from types import SimpleNamespace

    staged = jobs.Staged("lret-x-0", "p" * 32, 0, [["a=1"], ["a=2"], ["a=3"]])
    runs = {
        0: SimpleNamespace(status="FINISHED", error=None, metrics={"objective.energy": -1.5}),
        1: SimpleNamespace(
            status="FINISHED", error=None, metrics={"objective.time": 2.0, "objective.f": 0.9}
        ),
        2: SimpleNamespace(status="FINISHED", error=None, metrics={"exact_fidelity": 0.9}),
    }
    monkeypatch.setattr(jobs, "_job_runs", lambda staged, config: runs)
    outcomes = [jobs.Outcome(i, True) for i in range(3)]
    one = compose_config(["optimize.objective=energy"])
    assert jobs.returns(staged, outcomes[:1], one)[0].return_value == -1.5
    # several objectives come back in the order optimize.objective lists them
    two = compose_config(["optimize.objective=[f,time]"])
    rets = jobs.returns(staged, outcomes[1:], two)
    assert [r.return_value for r in rets] == [[0.9, 2.0], None]
