"""User presets outside the package: ``--config-dir DIR`` adds DIR to the search path; its
options sit beside the shipped ones and extend the shipped schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

MINE = """\
# @package _global_
defaults:
  - override /circuit: ghz
  - override /noise: depolarizing

circuit:
  n_qubits: 3
session:
  name: mine
"""

MY_NOISE = """\
defaults:
  - depolarizing_schema

name: depolarizing
level: 0.05
"""


@pytest.fixture
def my_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "my_conf"
    (conf / "experiment").mkdir(parents=True)
    (conf / "experiment" / "mine.yaml").write_text(MINE)
    (conf / "noise").mkdir()
    (conf / "noise" / "my_noise.yaml").write_text(MY_NOISE)
    return conf


def _ok(proc) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_user_experiment_preset(run_cli, my_conf: Path, tmp_path: Path, store_uri: str) -> None:
    args = ["--config-dir", str(my_conf), "+experiment=mine"]
    cfg = yaml.safe_load(_ok(run_cli([*args, "--cfg", "job"], cwd=tmp_path)))
    assert cfg["circuit"]["name"] == "ghz" and cfg["circuit"]["n_qubits"] == 3
    assert cfg["session"]["name"] == "mine"

    env = {"MLFLOW_TRACKING_URI": store_uri}
    _ok(run_cli([*args, "run.quiet=true"], cwd=tmp_path, env=env))
    (result_file,) = (tmp_path / "outputs").rglob("result.json")
    result = json.loads(result_file.read_text())
    assert result["status"] == "FINISHED" and result["n_qubits"] == 3

    from mlflow import MlflowClient

    client = MlflowClient(store_uri)
    session = client.get_experiment_by_name("mine")
    assert session is not None, [e.name for e in client.search_experiments()]
    (run,) = client.search_runs([session.experiment_id])
    assert run.info.run_id == result["run_id"] and run.info.status == "FINISHED"


def test_user_option_extends_a_shipped_schema(run_cli, my_conf: Path, tmp_path: Path) -> None:
    out = _ok(run_cli(["--config-dir", str(my_conf), "noise=my_noise", "--cfg", "job"],
                      cwd=tmp_path))  # fmt: skip
    assert "level: 0.05" in out
    noise = yaml.safe_load(out)["noise"]
    assert noise["name"] == "depolarizing" and noise["level"] == 0.05
    assert "placement" in noise  # a field the schema brings, not the user's file
