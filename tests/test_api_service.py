"""The API's request composition in process (no server): the QASM folder rule, limits,
and that a request is checked by the same schemas as the YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from lret_runner.api.models import ExperimentRequest
from lret_runner.api.service import RequestError, Service, Settings

QASM = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n'


@pytest.fixture
def service(tmp_path: Path, fresh_store: Path) -> Service:
    (tmp_path / "qasm").mkdir()
    (tmp_path / "qasm" / "bell.qasm").write_text(QASM)
    (tmp_path / "secret.qasm").write_text(QASM)
    return Service(Settings(root=tmp_path, qasm_dir=tmp_path / "qasm", max_qubits=4))


def test_a_qasm_file_in_the_servers_folder_is_used(service: Service, tmp_path: Path) -> None:
    config = service.compose(ExperimentRequest(circuit={"name": "qasm", "path": "bell.qasm"}))
    assert config["circuit"]["path"] == str((tmp_path / "qasm" / "bell.qasm").resolve())


@pytest.mark.parametrize("path", ["../secret.qasm", "/etc/hosts", "sub/../../secret.qasm"])
def test_a_qasm_path_outside_the_folder_is_refused(service: Service, path: str) -> None:
    with pytest.raises(RequestError, match="outside the server's QASM folder") as err:
        service.compose(ExperimentRequest(circuit={"name": "qasm", "path": path}))
    assert err.value.field == "circuit.path"


def test_without_a_qasm_folder_no_file_is_taken(tmp_path: Path, fresh_store: Path) -> None:
    service = Service(Settings(root=tmp_path))
    with pytest.raises(RequestError, match="takes no QASM files"):
        service.compose(ExperimentRequest(circuit={"name": "qasm", "path": "bell.qasm"}))


def test_a_request_is_the_config_the_command_line_would_compose(service: Service) -> None:
    config = service.compose(
        ExperimentRequest(
            circuit={"name": "qft", "n_qubits": 3},
            noise={"name": "thermal", "t1": 1e-4},
            run={"shots": 10, "observables": ["ZZI"]},
            session="s",
            tags={"k": "v"},
        )
    )
    assert (config["circuit"]["name"], config["circuit"]["n_qubits"]) == ("qft", 3)
    assert config["noise"]["t1"] == 1e-4 and config["noise"]["t2"] == 70e-6
    assert config["session"]["name"] == "s" and config["tags"] == {"k": "v"}
    assert config["tracking"]["tracking_uri"] == service.uri
    with pytest.raises(RequestError, match="more than this server allows") as err:
        service.compose(ExperimentRequest(circuit={"name": "ghz", "n_qubits": 5}))
    assert err.value.field == "circuit.n_qubits"
    with pytest.raises(RequestError) as err:
        service.compose(ExperimentRequest(noise={"name": "thermal", "t2": 1.0}))
    assert err.value.field == "noise.t2"  # t2 <= 2 t1: the same check as a YAML run
