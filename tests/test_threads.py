"""simulators.threads: BLAS threads from the cores the process may use and the jobs next to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lret_runner.simulators import threads


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(threads, "_CGROUP_V2", tmp_path / "cpu.max")
    monkeypatch.setattr(threads, "_CGROUP_V1", tmp_path / "v1")
    monkeypatch.delenv(threads.PARALLEL_ENV, raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0)
    return tmp_path


def test_alone_a_run_uses_every_available_core(two_cores: Path) -> None:
    assert threads.default_threads() == 2


def test_parallel_jobs_share_the_cores(two_cores: Path, monkeypatch) -> None:
    monkeypatch.setenv(threads.PARALLEL_ENV, "2")
    assert threads.default_threads() == 1
    monkeypatch.setenv(threads.PARALLEL_ENV, "8")
    assert threads.default_threads() == 1  # never zero


@pytest.mark.parametrize(("cpu_max", "cores"), [("100000 100000", 1), ("max 100000", 2)])
def test_a_cgroup_v2_quota_caps_the_cores(two_cores: Path, cpu_max: str, cores: int) -> None:
    (two_cores / "cpu.max").write_text(cpu_max)
    assert threads.available_cores() == cores


def test_a_cgroup_v1_quota_caps_the_cores(two_cores: Path) -> None:
    (two_cores / "v1").mkdir()
    (two_cores / "v1" / "cpu.cfs_quota_us").write_text("150000")
    (two_cores / "v1" / "cpu.cfs_period_us").write_text("100000")
    assert threads.available_cores() == 1


def test_cores_busy_with_other_processes_are_left_to_them(two_cores: Path, monkeypatch) -> None:
    monkeypatch.setattr(threads, "busy_cores", lambda: 1)
    assert threads.default_threads() == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 2)
    assert threads.default_threads() == 1  # never zero


def test_busy_cores_sees_a_busy_process() -> None:
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.busy_cores(0.3) >= 1
    finally:
        proc.kill()
        proc.wait()


def test_affinity_limits_the_cores(two_cores: Path, monkeypatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {1})
    assert threads.default_threads() == 1


def test_a_run_records_its_threads(compose, tmp_path: Path, monkeypatch) -> None:
    from lret_runner import experiment

    monkeypatch.setenv(threads.PARALLEL_ENV, str(threads.available_cores()))
    cfg = compose(["circuit.n_qubits=2", "circuit.depth=2", "run.quiet=true", "tracking=none"])
    result, _ = experiment.simulate(experiment.prepare(cfg))
    assert result.threads == 1
    cfg = compose(["circuit.n_qubits=2", "circuit.depth=2", "backend.threads=2"])
    assert experiment.simulate(experiment.prepare(cfg))[0].threads == 2


@pytest.mark.parametrize(("n_jobs", "expected"), [(2, 2), (1, 1), (-1, 2), (-2, 1), (None, 1)])
def test_joblib_parallel_jobs(n_jobs, expected, monkeypatch) -> None:
    from omegaconf import OmegaConf

    from lret_runner.task import batch

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    launcher = {} if n_jobs is None else {"n_jobs": n_jobs}
    cfg = OmegaConf.create({"hydra": {"launcher": launcher}})
    assert batch.parallel_jobs(cfg) == expected
