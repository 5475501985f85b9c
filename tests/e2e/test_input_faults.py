"""Bad inputs through the real CLI: each fails before anything runs or is recorded, with
exit code 1, one paragraph naming the key (or the file), and no traceback.

The same refusals are tested in-process, with their exact messages, in tests/test_config.py,
tests/test_circuits.py, tests/test_noise.py, tests/test_experiment.py and
tests/test_simulators.py; this is the end-to-end check that the entry point reports them
as user errors. (An unreadable QASM file is tested in-process only: the tests run as root,
who reads any file, and the interpreter is not reachable for another user.)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from conftest import sqlite_uri  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import ViewType  # noqa: E402

FAST = ["run.quiet=true", "tracking=none"]
STORE = ["run.quiet=true"]  # the default tracking=mlflow: a store that must stay empty


def _qasm(directory: Path, body: str | bytes, name: str = "c.qasm") -> Path:
    path = directory / name
    head = b'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
    path.write_bytes(head + (body if isinstance(body, bytes) else body.encode()))
    return path


def _latin1(directory: Path) -> Path:
    return _qasm(directory, b"qreg q[1];\n// caf\xe9\nh q[0];\n")


def _no_qubits(directory: Path) -> Path:
    return _qasm(directory, "qreg q[2];\ncreg c[2];\n")


def _wide(directory: Path) -> Path:
    return _qasm(directory, "qreg q[31];\n" + "".join(f"h q[{i}];\n" for i in range(31)))


def _opaque_crlf(directory: Path) -> Path:
    return _qasm(directory, b"qreg q[1];\r\nopaque magic q;\r\nmagic q[0];\r\n")


def _dynamic(directory: Path) -> Path:
    return _qasm(directory, "qreg q[1];\ncreg c[1];\nh q[0];\nmeasure q[0] -> c[0];\nx q[0];\n")


def _free_bytes() -> float:
    import psutil

    return float(psutil.virtual_memory().available)


# id -> (arguments given the run's directory, what stderr must name, the tracking args)
CASES: dict[str, tuple[Callable[[Path], list[str]], str, list[str]]] = {
    "plus-top-level-int": (lambda d: ["+foo=1"], "foo=1", STORE),
    "plus-top-level-str": (lambda d: ["+foo=bar"], "foo='bar'", FAST),
    "plus-circuit-key": (lambda d: ["+circuit.foo=1"], "circuit.foo=1", FAST),
    "plus-run-key": (lambda d: ["+run.bar=1"], "run.bar=1", FAST),
    "readout-level": (lambda d: ["noise=readout", "noise.level=0.1"], "noise.level", FAST),
    "readout-component-level": (
        lambda d: ["noise=composite", "noise.components=[{name: readout, level: 0.1}]"],
        "noise.components[0].level=0.1",
        FAST,
    ),
    "readout-without-measure": (
        lambda d: ["noise=readout", "circuit.measure=false"],
        "circuit.measure=false",
        STORE,
    ),
    "circuit-seed": (lambda d: ["circuit.seed=-1"], "circuit.seed=-1", FAST),
    "run-seed": (lambda d: ["run.seed=-1"], "run.seed=-1", FAST),
    "run-shots": (lambda d: ["run.shots=100000000000000000000"], "run.shots=", FAST),
    "circuit-depth": (lambda d: ["circuit.depth=10000000"], "circuit.depth=10000000", FAST),
    "qasm-directory": (
        lambda d: ["circuit=qasm", f"circuit.path={d}"],
        "is a directory",
        STORE,
    ),
    "qasm-not-utf8": (
        lambda d: ["circuit=qasm", f"circuit.path={_latin1(d)}"],
        "not UTF-8",
        FAST,
    ),
    "qasm-no-qubits": (
        lambda d: ["circuit=qasm", f"circuit.path={_no_qubits(d)}"],
        "acts on no qubit",
        FAST,
    ),
    "qasm-31-qubits": (
        lambda d: ["circuit=qasm", f"circuit.path={_wide(d)}"],
        "acts on 31 qubits",
        FAST,
    ),
    "qasm-opaque-crlf": (
        lambda d: ["circuit=qasm", f"circuit.path={_opaque_crlf(d)}"],
        "line 4, column 1: `opaque magic q;`: 'opaque': an opaque gate has no definition",
        STORE,
    ),
    "qasm-dynamic-on-trajectories": (
        lambda d: ["circuit=qasm", "simulator=trajectories", f"circuit.path={_dynamic(d)}"],
        "simulator=trajectories cannot run a dynamic circuit",
        STORE,
    ),
    "cloud-dry-run-unreadable-qasm": (
        lambda d: [
            "-m",
            "cloud=k8s",
            "cloud.dry_run=true",
            "circuit=qasm",
            f"circuit.path={d / 'missing.qasm'}",
        ],  # fmt: skip
        "missing.qasm cannot be read",
        STORE,
    ),
    "lret-memory": (
        lambda d: ["simulator=lret", "circuit.n_qubits=30", "noise=none", "circuit.depth=1"],
        "simulator=lret refuses n_qubits=30",
        STORE,
    ),
    "gate-matrix-memory": (
        lambda d: ["circuit=grover", "circuit.n_qubits=20", "circuit.iterations=1", "noise=none"],
        "acts on 20 qubits",
        FAST,
    ),
}


def _runs(uri: str) -> list:
    if not Path(uri.removeprefix("sqlite:///")).exists():
        return []
    client = MlflowClient(tracking_uri=uri)
    ids = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(ids, run_view_type=ViewType.ALL) if ids else []


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_input_fails_cleanly_naming_its_key(case: str, run_cli, tmp_path: Path) -> None:
    make_args, needle, tracking = CASES[case]
    if case == "lret-memory" and _free_bytes() >= 2**30 * 16 * 3:
        pytest.skip("this machine has the 48 GiB free that a 30-qubit lret run needs")
    files = tmp_path / "files"
    files.mkdir()
    proc: subprocess.CompletedProcess[str] = run_cli([*make_args(files), *tracking], tmp_path)
    text = proc.stdout + proc.stderr
    detail = f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 1, detail
    assert "Traceback" not in text, detail
    assert needle in proc.stderr, detail
    assert not list(tmp_path.glob("outputs/**/result.json")), "a run was recorded"
    if tracking is STORE:
        assert _runs(sqlite_uri(tmp_path)) == [], "a run was recorded in the store"
