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


def test_a_huge_sweep_is_refused_before_it_is_expanded(service: Service) -> None:
    """10^9 combinations (3 keys x 1,000 values) is refused from the product of the lists'
    lengths, in well under a second, naming sweep and the server's limit: no experiment
    is built (a 10^9 expansion would take minutes and gigabytes)."""
    import time

    from lret_runner.api.models import BatchRequest

    values = list(range(1, 1001))
    request = BatchRequest(
        base=ExperimentRequest(circuit={"name": "random"}),
        sweep={"circuit.n_qubits": values, "circuit.depth": values, "circuit.seed": values},
    )
    start = time.perf_counter()
    with pytest.raises(RequestError, match=r"1,000,000,000 experiments, more than") as err:
        service.submit_batch(request)
    assert time.perf_counter() - start < 1.0
    assert err.value.field == "sweep"


def test_a_batch_in_several_sessions_is_refused(service: Service) -> None:
    """A batch is one parent run in one session: experiments naming two sessions are refused
    naming the second one (its totals and cancellation would cover only the first)."""
    from lret_runner.api.models import BatchRequest

    ghz = {"name": "ghz", "n_qubits": 2}
    request = BatchRequest(
        experiments=[
            ExperimentRequest(circuit=ghz, session="a"),
            ExperimentRequest(circuit=ghz, session="b"),
        ]
    )
    with pytest.raises(RequestError, match=r"experiments\[1\]\.session='b' differs") as err:
        service.submit_batch(request)
    assert err.value.field == "experiments[1].session"


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("lret.config.1", "is reserved"),
        ("lret.owner.host", "is reserved"),
        ("mlflow.parentRunId", "is reserved"),
        ("batch_id", "is reserved"),
        ("status", "is reserved"),
        ("a/../b", "not a valid tag name"),
        ("", "not a valid tag name"),
        ("x" * 251, "not a valid tag name"),
        ("nul\x00key", "not a valid tag name"),
    ],
)
def test_a_request_tag_may_not_set_a_reserved_or_invalid_key(
    service: Service, key: str, reason: str
) -> None:
    """A user's tag never overwrites what the runner writes (a reader would fail, an owner
    tag would leave the run pending for good, a parentRunId would join another batch), and
    a key MLflow refuses is refused at submission: 422 naming tags.<key>."""
    request = ExperimentRequest(circuit={"name": "ghz", "n_qubits": 2}, tags={key: "x"})
    with pytest.raises(RequestError, match=reason) as err:
        service.compose(request)
    assert err.value.field == f"tags.{key}"


def test_a_tag_value_that_is_not_text_is_refused(service: Service) -> None:
    """A lone surrogate in a value (valid JSON, not UTF-8) is refused naming the tag."""
    request = ExperimentRequest(circuit={"name": "ghz", "n_qubits": 2}, tags={"k": "\ud800"})
    with pytest.raises(RequestError, match="not valid text") as err:
        service.compose(request)
    assert err.value.field == "tags.k"


def test_a_run_whose_config_tag_is_unreadable_is_still_listed() -> None:
    """A corrupted lret.config.* tag does not break the readers: the run's config reads as
    absent (its string params are used), never an exception."""
    from lret_runner.tracking import vocabulary as V

    assert V.config_from_tags({"lret.config.0": '{"a": 1'}) is None
    assert V.config_from_tags({"lret.config.0": "[1, 2]"}) is None
    assert V.config_from_tags({"lret.config.0": '{"a": 1}'}) == {"a": 1}


@pytest.mark.parametrize("name", ["\ud800", "tab\there", ""])
def test_an_unusable_session_name_is_refused_at_submission(service: Service, name: str) -> None:
    """A lone surrogate (valid JSON, not text), a control character or an empty name: 422
    naming session, before anything is written (it was a 500 from MLflow)."""
    request = ExperimentRequest(circuit={"name": "ghz", "n_qubits": 2}, session=name)
    with pytest.raises(RequestError, match=r"session\.name=.* is invalid") as err:
        service.compose(request)
    assert err.value.field == "session"


def test_an_option_the_server_does_not_have_is_refused(service: Service) -> None:
    """backend.name=gpu was ignored (the run went to the cpu backend): refused naming the
    only option."""
    request = ExperimentRequest(circuit={"name": "ghz", "n_qubits": 2}, backend={"name": "gpu"})
    with pytest.raises(RequestError, match=r"backend\.name='gpu' is invalid.*backend=cpu") as err:
        service.compose(request)
    assert err.value.field == "backend.name"
    ok = ExperimentRequest(circuit={"name": "ghz", "n_qubits": 2}, backend={"name": "cpu"})
    assert service.compose(ok)["backend"]["name"] == "cpu"
