"""The natural-language front door: ``lret_runner.api.nl`` (sentences to experiment requests
and overrides) and the ``lret-runner ask`` command.

Every example sentence is checked against its full parse (experiment and sweep compared
exactly) and its overrides are composed with Hydra, so each mapped key exists in the
schemas. The command is called in-process through ``cli.main``; ``--run`` with the
subprocess replaced, so no simulation runs here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import compose_config

from lret_runner import cli
from lret_runner.api.nl import parse, to_overrides

S1 = "run a 10 qubit ghz circuit with 1% depolarizing noise on lret with 1000 shots"
S2 = "compare lret and cirq on 8 qubits depth 20"
S3 = "sweep qubits 8,10,12 at depth 20 with amplitude damping 0.01"
S4 = "qft on 6 qubits, exact"

# (sentence, experiment, sweep)
EXAMPLES: list[tuple[str, dict[str, Any], dict[str, list[Any]]]] = [
    (
        S1,
        {
            "circuit": {"name": "ghz", "n_qubits": 10},
            "noise": {"name": "depolarizing", "level": 0.01},
            "simulator": {"name": "lret"},
            "run": {"shots": 1000},
        },
        {},
    ),
    (
        S2,
        {"circuit": {"name": "random", "n_qubits": 8, "depth": 20}},
        {"simulator.name": ["lret", "cirq"]},
    ),
    (
        S3,
        {
            "circuit": {"name": "random", "depth": 20},
            "noise": {"name": "amplitude_damping", "level": 0.01},
        },
        {"circuit.n_qubits": [8, 10, 12]},
    ),
    (
        S4,
        {"circuit": {"name": "qft", "n_qubits": 6}, "simulator": {"name": "fdm"}},
        {},
    ),
    (
        "ghz for 4, 6 and 8 qubits without noise",
        {"circuit": {"name": "ghz"}, "noise": {"name": "none"}},
        {"circuit.n_qubits": [4, 6, 8]},
    ),
    (
        "random circuit, qubits from 4 to 10 step 2, depth 12",
        {"circuit": {"name": "random", "depth": 12}},
        {"circuit.n_qubits": [4, 6, 8, 10]},
    ),
    (
        "layered circuit on 8 qubits with 20 layers",
        {"circuit": {"name": "layered", "n_qubits": 8, "layers": 20}},
        {},
    ),
    (
        "QAOA maxcut on 6 qubits, p=2, seed 3",
        {"circuit": {"name": "qaoa", "n_qubits": 6, "p": 2}, "run": {"seed": 3}},
        {},
    ),
    (
        "VQE ansatz with 4 qubits and depth 3 under 0.5% dephasing after every moment",
        {
            "circuit": {"name": "vqe", "n_qubits": 4, "depth": 3},
            "noise": {"name": "phase_damping", "level": 0.005, "placement": "moment"},
        },
        {},
    ),
    (
        "noise levels 0.001, 0.01 for a 5 qubit QFT with bit-flip noise",
        {"circuit": {"name": "qft", "n_qubits": 5}, "noise": {"name": "bit_flip"}},
        {"noise.level": [0.001, 0.01]},
    ),
    (
        "random circuit with depths 10 and 20 on 6 qubits, depolarising noise 0.2%",
        {
            "circuit": {"name": "random", "n_qubits": 6},
            "noise": {"name": "depolarizing", "level": 0.002},
        },
        {"circuit.depth": [10, 20]},
    ),
    (
        "lret vs fdm on a 12-qubit GHZ with phase flip 0.001",
        {
            "circuit": {"name": "ghz", "n_qubits": 12},
            "noise": {"name": "phase_flip", "level": 0.001},
        },
        {"simulator.name": ["lret", "fdm"]},
    ),
    (
        "noiseless 8 qubit qft on the full density matrix simulator, 500 samples",
        {
            "circuit": {"name": "qft", "n_qubits": 8},
            "noise": {"name": "none"},
            "simulator": {"name": "fdm"},
            "run": {"shots": 500},
        },
        {},
    ),
    (
        "ideal grover search on 3 qubits with cirq, seed 11",
        {
            "circuit": {"name": "grover", "n_qubits": 3},
            "noise": {"name": "none"},
            "simulator": {"name": "cirq"},
            "run": {"seed": 11},
        },
        {},
    ),
    (
        "amplitude-damping 2% on a brickwork circuit of 10 qubits and 30 moments, low-rank",
        {
            "circuit": {"name": "random", "n_qubits": 10, "depth": 30},
            "noise": {"name": "amplitude_damping", "level": 0.02},
            "simulator": {"name": "lret"},
        },
        {},
    ),
    (
        "T1 decay at 1% on a 4-qubit GHZ, 2000 shots, compare to exact",
        {
            "circuit": {"name": "ghz", "n_qubits": 4},
            "noise": {"name": "amplitude_damping", "level": 0.01},
            "run": {"shots": 2000, "compare_to_exact": True},
        },
        {},
    ),
    (
        "thermal noise on a vqe with 6 qubits, idle noise, auto simulator",
        {
            "circuit": {"name": "vqe", "n_qubits": 6},
            "noise": {"name": "thermal", "placement": "moment"},
            "simulator": {"name": "auto"},
        },
        {},
    ),
    (
        "2% readout error on a 5 qubit ghz",
        {
            "circuit": {"name": "ghz", "n_qubits": 5},
            "noise": {"name": "readout", "readout_error": 0.02},
        },
        {},
    ),
    (
        "run examples/bell.qasm on cirq without exact comparison",
        {
            "circuit": {"name": "qasm", "path": "examples/bell.qasm"},
            "simulator": {"name": "cirq"},
            "run": {"compare_to_exact": False},
        },
        {},
    ),
    (
        "qft with 7 qubits in session scaling-study",
        {"circuit": {"name": "qft", "n_qubits": 7}, "session": "scaling-study"},
        {},
    ),
    (
        "GHZ 16 qubits, shots=4096, dense",
        {
            "circuit": {"name": "ghz", "n_qubits": 16},
            "simulator": {"name": "fdm"},
            "run": {"shots": 4096},
        },
        {},
    ),
    (
        "compare lret, cirq and exact on a 6 qubit qaoa with 3 layers",
        {"circuit": {"name": "qaoa", "n_qubits": 6, "p": 3}},
        {"simulator.name": ["lret", "cirq", "fdm"]},
    ),
    (
        "quantum fourier transform on 9 qubits with bit flip noise at 0.1% after every gate",
        {
            "circuit": {"name": "qft", "n_qubits": 9},
            "noise": {"name": "bit_flip", "level": 0.001, "placement": "gate"},
        },
        {},
    ),
    (
        "random circuit, qubits 10, depth 40, 1,000 shots, circuit seed 5",
        {
            "circuit": {"name": "random", "n_qubits": 10, "depth": 40, "seed": 5},
            "run": {"shots": 1000},
        },
        {},
    ),
    (
        "20 layers on 8 qubits with depol 0.005",
        {
            "circuit": {"name": "random", "n_qubits": 8, "depth": 20},
            "noise": {"name": "depolarizing", "level": 0.005},
        },
        {},
    ),
    (
        "layered circuit with 5, 10 and 15 layers on 6 qubits",
        {"circuit": {"name": "layered", "n_qubits": 6}},
        {"circuit.layers": [5, 10, 15]},
    ),
    (
        "ghz on 5q with no noise and 300 shots",
        {
            "circuit": {"name": "ghz", "n_qubits": 5},
            "noise": {"name": "none"},
            "run": {"shots": 300},
        },
        {},
    ),
    (
        "qubits 10 shots 100 depth 5",  # each keyword before its number
        {"circuit": {"name": "random", "n_qubits": 10, "depth": 5}, "run": {"shots": 100}},
        {},
    ),
    (
        "depth 20, 1000 shots",  # a keyword, then a unit: split between them
        {"circuit": {"name": "random", "depth": 20}, "run": {"shots": 1000}},
        {},
    ),
    (
        "phase damping 0.02 on a 5 qubit ghz, seeds 1, 2 and 3",
        {
            "circuit": {"name": "ghz", "n_qubits": 5},
            "noise": {"name": "phase_damping", "level": 0.02},
        },
        {"run.seed": [1, 2, 3]},
    ),
    (
        "compare LRET and Cirq on a 10-qubit random circuit of depth 15 with 1% depolarizing noise",
        {
            "circuit": {"name": "random", "n_qubits": 10, "depth": 15},
            "noise": {"name": "depolarizing", "level": 0.01},
        },
        {"simulator.name": ["lret", "cirq"]},
    ),
]

# (sentence, what `missing` says, by substring)
UNMAPPABLE = [
    ("", "circuit family"),
    ("hello world, how are you?", "circuit family"),
    ("1% depolarizing noise on 8 qubits", "circuit family"),
    ("ghz with 17", "'17'"),
    ("ghz on 10 qubits with depth 5", "depth is not a setting of circuit ghz"),
    ("ghz with depolarizing and bit flip noise", "one noise model"),
    ("random circuit with noise level 0.01", "noise model"),
    ("thermal noise 1% on a ghz", "level is not a setting of noise thermal"),
    ("random circuit of depth 0.5", "depth as a whole number"),
    ("random circuit with noise level 5 depolarizing", "probability between 0 and 1"),
    ("qft on 10 to 4 qubits", "counts up"),
    ("random circuit on 1 to 100000 qubits", "at most 1000 values"),
    ("ghz and qft on 5 qubits", "one circuit family"),
    ("ghz in session alpha and session beta", "one session"),
]


@pytest.mark.parametrize(("text", "experiment", "sweep"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_examples(text: str, experiment: dict[str, Any], sweep: dict[str, list[Any]]) -> None:
    parsed = parse(text)
    assert parsed.missing == []
    assert parsed.ok
    assert parsed.experiment == experiment
    assert parsed.sweep == sweep
    assert parsed.understood


def test_enough_examples() -> None:
    assert len(EXAMPLES) >= 25
    assert {S1, S2, S3, S4} <= {e[0] for e in EXAMPLES}


@pytest.mark.parametrize(("text", "needed"), UNMAPPABLE, ids=[u[0] or "empty" for u in UNMAPPABLE])
def test_unmappable(text: str, needed: str) -> None:
    parsed = parse(text)
    assert not parsed.ok
    assert any(needed in note for note in parsed.missing), parsed.missing


def test_unmappable_says_what_it_understood() -> None:
    parsed = parse("1% depolarizing noise on 8 qubits")
    assert parsed.understood == ["noise: depolarizing", "noise.level: 0.01", "circuit.n_qubits: 8"]
    assert parsed.missing == [
        "a circuit family (ghz, qft, random, layered, qaoa, vqe, grover, qasm, ...)"
    ]
    # a group whose option is missing is noted, not set
    assert parse("random circuit, noise levels 0.1, 0.2").sweep == {}


def test_notes() -> None:
    assert parse(S1).understood == [
        "circuit: ghz",
        "noise: depolarizing",
        "simulator: lret",
        "circuit.n_qubits: 10",
        "noise.level: 0.01",
        "run.shots: 1000",
    ]
    assert "circuit: random (a depth is given and no circuit family)" in parse(S2).understood
    assert "compare simulators: lret, cirq" in parse(S2).understood
    assert "sweep circuit.n_qubits: 8, 10, 12" in parse(S3).understood


@pytest.mark.parametrize(
    "text",
    [
        "%%%",
        "1e",
        "0.",
        "...",
        "-5 qubits",
        "qubits",
        "1,",
        "from to step",
        "\0 ghz \0 5 q",
        "ghz 99999999999999999999 qubits",
        "ghz 3 to 3 qubits step 7",
        "session",
        "session = 'x' qft",
    ],
)
def test_never_raises(text: str) -> None:
    parsed = parse(text)
    assert parsed.to_dict()["ok"] is parsed.ok
    to_overrides(parsed)


def test_to_dict() -> None:
    parsed = parse(S2)
    assert parsed.to_dict() == {
        "experiment": {"circuit": {"name": "random", "n_qubits": 8, "depth": 20}},
        "sweep": {"simulator.name": ["lret", "cirq"]},
        "understood": parsed.understood,
        "missing": [],
        "ok": True,
    }
    json.dumps(parsed.to_dict())


@pytest.mark.parametrize(
    ("text", "overrides"),
    [
        (
            S1,
            [
                "circuit=ghz",
                "circuit.n_qubits=10",
                "noise=depolarizing",
                "noise.level=0.01",
                "simulator=lret",
                "run.shots=1000",
            ],
        ),
        (S2, ["circuit=random", "circuit.n_qubits=8", "circuit.depth=20", "simulator=lret,cirq"]),
        (
            S3,
            [
                "circuit=random",
                "circuit.depth=20",
                "circuit.n_qubits=8,10,12",
                "noise=amplitude_damping",
                "noise.level=0.01",
            ],
        ),
        (S4, ["circuit=qft", "circuit.n_qubits=6", "simulator=fdm"]),
        (
            "run examples/bell.qasm on cirq without exact comparison",
            [
                "circuit=qasm",
                "circuit.path=examples/bell.qasm",
                "simulator=cirq",
                "run.compare_to_exact=false",
            ],
        ),
        (
            "qft with 7 qubits in session scaling-study",
            ["circuit=qft", "circuit.n_qubits=7", "session.name=scaling-study"],
        ),
        (
            "layered circuit with 5, 10 and 15 layers on 6 qubits",
            ["circuit=layered", "circuit.n_qubits=6", "circuit.layers=5,10,15"],
        ),
    ],
)
def test_to_overrides(text: str, overrides: list[str]) -> None:
    assert to_overrides(parse(text)) == overrides


def test_overrides_compose() -> None:
    cfg = compose_config(to_overrides(parse(S1)))
    assert cfg.circuit.name == "ghz"
    assert cfg.circuit.n_qubits == 10
    assert cfg.noise.name == "depolarizing"
    assert cfg.noise.level == 0.01
    assert cfg.simulator.name == "lret"
    assert cfg.run.shots == 1000


def test_every_example_composes() -> None:
    """Every mapped key exists in the schemas: each example composes (a sweep with its first
    value of each swept key)."""
    for text, experiment, _ in EXAMPLES:
        overrides = [o.split(",")[0] for o in to_overrides(parse(text))]
        cfg = compose_config(overrides)
        assert cfg.circuit.name == experiment["circuit"]["name"], text


# ---------------------------------------------------------------- lret-runner ask


def test_ask(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", S1]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == ["understood:", "  circuit: ghz"]
    assert "  noise.level: 0.01" in out
    assert out[-2:] == [
        "command:",
        "  python -m lret_runner circuit=ghz circuit.n_qubits=10 noise=depolarizing "
        "noise.level=0.01 simulator=lret run.shots=1000",
    ]


def test_ask_sweep_words(capsys: pytest.CaptureFixture[str]) -> None:
    # unquoted words work too; a sweep is a multirun (-m)
    assert cli.main(["ask", *S2.split()]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "  python -m lret_runner -m circuit=random circuit.n_qubits=8 circuit.depth=20 "
        "simulator=lret,cirq"
    )


def test_ask_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "--json", S3]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == parse(S3).to_dict() | {
        "command": ["python", "-m", "lret_runner", "-m", *to_overrides(parse(S3))]
    }


def test_ask_unmappable(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ask", "1% depolarizing noise on 8 qubits"]) == 2
    captured = capsys.readouterr()
    assert "  noise: depolarizing" in captured.out.splitlines()
    assert "command:" not in captured.out
    assert captured.err.startswith("lret-runner: error: cannot run this request: missing a circuit")
    assert captured.err.count("\n") == 1

    assert cli.main(["ask", "--json", "hello world"]) == 2
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["ok"] is False
    assert data["command"] is None
    assert "circuit family" in data["missing"][0]
    assert "circuit family" in captured.err


def test_ask_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(argv: list[str], env: dict[str, str], check: bool) -> Any:
        calls.append((argv, env))
        return subprocess.CompletedProcess(argv, 3)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert cli.main(["ask", "--run", "--tracking-uri", "sqlite:///x.db", S4]) == 3
    assert calls == [
        (
            [
                sys.executable,
                "-m",
                "lret_runner",
                "circuit=qft",
                "circuit.n_qubits=6",
                "simulator=fdm",
            ],
            calls[0][1],
        )
    ]
    assert calls[0][1]["MLFLOW_TRACKING_URI"] == "sqlite:///x.db"
    capsys.readouterr()

    assert cli.main(["ask", "--run", "hello"]) == 2  # nothing runs
    assert len(calls) == 1
