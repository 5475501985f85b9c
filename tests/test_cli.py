"""``lret-runner``: sessions, runs, lineage and compare against a real MLflow store.

The runs are made by the real runner (``python -m lret_runner``) in subprocesses, once per
module (the store fixture); the CLI is then called in-process through ``cli.main``. The
query layer itself is tested in-process in test_queries.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lret_runner import cli
from lret_runner.tables import FULL, SPARKS
from lret_runner.tracking import vocabulary as V

RUNNER = [
    sys.executable,
    "-m",
    "lret_runner",
    "+experiment=quickstart",
    "circuit.n_qubits=3",
    "circuit.depth=4",
    "run.quiet=true",
    "tracking.log_plots=false",  # counts.json is enough here; skipping the PNGs saves a second
]
MISSING_RUN = "0123456789abcdef0123456789abcdef"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMPARED = (
    "ideal_fidelity",
    "ideal_tvd",
    "exact_fidelity",
    "truncation_error",
    "final_rank",
    "simulation_time_seconds",
    "memory_used_mb",
)


@dataclass
class Store:
    root: Path
    uri: str
    env: dict[str, str]
    a: str  # session alpha, depth 4
    b: str  # session alpha, lineage.parent=a, depth 5
    c: str  # session alpha, lineage.parent=b, depth 5, noise.level 0.01
    failed: str  # session beta, FAILED (run.timeout_seconds too small)
    bad_parent: subprocess.CompletedProcess[str]  # lineage.parent=<a run id that does not exist>
    refused: dict[str, subprocess.CompletedProcess[str]]  # runs into sessions shut and stale
    shut_closed: dict[str, Any]  # `sessions close shut --json`, before the refused run
    stale_listed: dict[str, str]  # `sessions list --all`: name -> status, before the runs
    resumed: subprocess.CompletedProcess[str]  # the run into shut after `sessions resume shut`

    def client(self):  # noqa: ANN201
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


def _start(root: Path, name: str, env: dict[str, str], *overrides: str) -> subprocess.Popen[str]:
    """The runner in its own working directory (Hydra output dirs are per second)."""
    cwd = root / "jobs" / name
    cwd.mkdir(parents=True)
    return subprocess.Popen(
        [*RUNNER, *overrides],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=240)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _run_all(
    root: Path, env: dict[str, str], jobs: dict[str, Sequence[str]]
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Runner processes side by side (each is mostly start-up time)."""
    started = {name: _start(root, name, env, *overrides) for name, overrides in jobs.items()}
    return {name: _finish(proc) for name, proc in started.items()}


def _newest_run(client, session: str) -> str:  # noqa: ANN001
    exp = client.get_experiment_by_name(session)
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    return runs[0].info.run_id


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"runner failed ({proc.returncode}):\n{proc.stderr[-3000:]}"


def _expire(uri: str, session: str) -> None:
    """Make a session with an idle timeout look idle for two hours."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(session)
    past = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="seconds")
    client.set_experiment_tag(exp.experiment_id, V.SESSION_ACCESS, past)


def _cli_json(uri: str, *argv: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["--tracking-uri", uri, *argv, "--json"])
    assert code == 0, argv
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Runs made by the real runner, in three rounds of parallel processes.

    Round 1: a (alpha), a FAILED run (beta), a run with a missing lineage.parent, and runs
    into a closed and an expired session. Round 2: b (parent a) and a run into the closed
    session after `sessions resume`. Round 3: c (parent b).
    """
    root = tmp_path_factory.mktemp("cli")
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OPENBLAS_NUM_THREADS": "1"}
    for var in ("COLUMNS", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        env.pop(var, None)

    _cli_json(uri, "sessions", "create", "shut")  # creates the store too
    shut_closed = _cli_json(uri, "sessions", "close", "shut")
    _cli_json(uri, "sessions", "create", "stale", "--timeout-hours", "0.5")
    _expire(uri, "stale")
    stale_listed = {s["name"]: s["status"] for s in _cli_json(uri, "sessions", "list", "--all")}

    done = _run_all(
        root,
        env,
        {
            "a": ["session.name=alpha"],
            "failed": ["session.name=beta", "run.timeout_seconds=1e-9"],
            "bad_parent": ["session.name=orphans", f"lineage.parent={MISSING_RUN}"],
            "refused-shut": ["session.name=shut"],
            "refused-stale": ["session.name=stale"],
        },
    )
    _ok(done["a"])
    assert done["failed"].returncode != 0, done["failed"].stderr[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    a = _newest_run(client, "alpha")
    failed = _newest_run(client, "beta")

    _cli_json(uri, "sessions", "resume", "shut")
    second = _run_all(
        root,
        env,
        {
            "b": ["session.name=alpha", f"lineage.parent={a}", "circuit.depth=5"],
            "resumed-shut": ["session.name=shut"],
        },
    )
    _ok(second["b"])
    b = _newest_run(client, "alpha")
    third = _run_all(
        root,
        env,
        {"c": ["session.name=alpha", f"lineage.parent={b}", "circuit.depth=5", "noise.level=0.01"]},
    )
    _ok(third["c"])
    c = _newest_run(client, "alpha")
    assert len({a, b, c}) == 3
    return Store(
        root=root,
        uri=uri,
        env=env,
        a=a,
        b=b,
        c=c,
        failed=failed,
        bad_parent=done["bad_parent"],
        refused={"shut": done["refused-shut"], "stale": done["refused-stale"]},
        shut_closed=shut_closed,
        stale_listed=stale_listed,
        resumed=second["resumed-shut"],
    )


def call(store: Store, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``lret-runner --tracking-uri URI ARGV``: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(["--tracking-uri", store.uri, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def call_json(store: Store, capsys: pytest.CaptureFixture[str], *argv: str):  # noqa: ANN201
    code, out, err = call(store, capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def user_error(code: int, err: str, *fragments: str) -> None:
    """Exit 2, one line on stderr, no traceback, naming the problem."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lret-runner: error:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


def _synthetic_run(
    client, session: str, params: dict[str, str], tags: dict[str, str] | None = None
) -> str:  # noqa: ANN001
    exp = client.get_experiment_by_name(session)
    eid = exp.experiment_id if exp else client.create_experiment(session)
    run = client.create_run(eid, tags=tags or {})
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


# ----------------------------------------------------------------------------- entry points


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


@pytest.mark.e2e
def test_module_help_and_console_script() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lret_runner.cli", "--help"],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for command in ("sessions", "runs", "lineage", "compare", "--tracking-uri"):
        assert command in proc.stdout
    script = shutil.which("lret-runner", path=str(Path(sys.executable).parent)) or shutil.which(
        "lret-runner"
    )
    if script is None:
        pytest.skip("the lret-runner console script is not installed (pip install -e .)")
    proc = subprocess.run(
        [script, "sessions", "--help"],
        capture_output=True,
        text=True,
        env=_subprocess_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for action in ("create", "list", "show", "close", "resume"):
        assert action in proc.stdout


@pytest.mark.e2e
def test_import_is_cheap() -> None:
    code = (
        "import sys, lret_runner.cli; "
        "heavy = [m for m in ('mlflow', 'matplotlib', 'cirq', 'rich') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env()
    )
    assert proc.returncode == 0, proc.stderr


def test_cli_does_not_import_mlflow() -> None:
    """The CLI reads through lret_runner.tracking, the only package that imports MLflow."""
    for path in Path(cli.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "import mlflow" not in text and "from mlflow" not in text, path


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["sessions"],
        ["sessions", "create"],
        ["sessions", "list"],
        ["sessions", "show"],
        ["sessions", "close"],
        ["sessions", "resume"],
        ["runs"],
        ["runs", "list"],
        ["runs", "show"],
        ["runs", "tag"],
        ["lineage"],
        ["compare"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lret-runner")
    if len(argv) == 2 or argv in (["lineage"], ["compare"]):
        assert "--json" in out and "--tracking-uri" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "required"),
        (["sessions"], "required"),
        (["nope"], "invalid choice"),
        (["runs", "list", "--status", "DONE"], "invalid choice"),
        (["runs", "list", "--limit", "0"], "--limit"),
        (["sessions", "create", "x", "--timeout-hours", "-1"], "--timeout-hours"),
        (["compare"], "RUN_ID"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", *argv])
    user_error(code, capsys.readouterr().err, fragment)


def test_missing_store_is_a_user_error_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "elsewhere" / "mlflow.db"
    code = cli.main(["--tracking-uri", f"sqlite:///{db}", "sessions", "list"])
    user_error(code, capsys.readouterr().err, "no MLflow store", str(db))
    assert not db.parent.exists()


@pytest.mark.e2e
def test_tracking_uri_defaults_to_the_environment(
    store: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    assert cli.main(["runs", "list", "--session", "beta", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [store.failed]
    # --tracking-uri is accepted after the subcommand too
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert (
        cli.main(["runs", "list", "--session", "beta", "--json", "--tracking-uri", store.uri]) == 0
    )
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [store.failed]


# --------------------------------------------------------------------------------- sessions


@pytest.mark.e2e
def test_sessions_create_list_show_close_resume(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    info = call_json(
        store, capsys, "sessions", "create", "gamma", "--description", "a [test] session"
    )
    assert (info["name"], info["status"], info["description"]) == (
        "gamma",
        "open",
        "a [test] session",
    )
    assert info["timeout_hours"] is None

    code, _, err = call(store, capsys, "sessions", "create", "gamma")
    user_error(code, err, "gamma", "already exists")

    listed = {s["name"]: s for s in call_json(store, capsys, "sessions", "list")}
    assert {"alpha", "beta", "gamma"} <= set(listed)
    assert (
        listed["alpha"]["runs"] == 3
        and listed["beta"]["runs"] == 1
        and listed["gamma"]["runs"] == 0
    )
    code, out, _ = call(store, capsys, "sessions", "list")
    assert code == 0
    for word in (
        "name",
        "status",
        "description",
        "runs",
        "last access",
        "alpha",
        "a [test] session",
    ):
        assert word in out

    closed = call_json(store, capsys, "sessions", "close", "gamma")
    assert closed["status"] == "closed"
    assert "gamma" not in {s["name"] for s in call_json(store, capsys, "sessions", "list")}
    every = {s["name"]: s["status"] for s in call_json(store, capsys, "sessions", "list", "--all")}
    assert every["gamma"] == "closed"
    code, out, _ = call(store, capsys, "sessions", "list", "--all")
    assert "gamma" in out and "closed" in out

    code, out, _ = call(store, capsys, "sessions", "resume", "gamma")
    assert code == 0 and "gamma" in out and "open" in out
    assert "gamma" in {s["name"] for s in call_json(store, capsys, "sessions", "list")}


@pytest.mark.e2e
def test_sessions_show(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    shown = call_json(store, capsys, "sessions", "show", "alpha")
    assert (shown["name"], shown["status"], shown["runs"], shown["batches"]) == (
        "alpha",
        "open",
        3,
        0,
    )
    assert shown["run_statuses"] == {"FINISHED": 3}
    assert shown["last_access"]
    assert [r["run_id"] for r in shown["latest_runs"]] == [
        store.c,
        store.b,
        store.a,
    ]  # newest first
    latest = call_json(store, capsys, "sessions", "show", "alpha", "--limit", "1")["latest_runs"]
    assert [r["run_id"] for r in latest] == [store.c]

    # a sweep: a parent run tagged lret.batch=true and its jobs
    client = store.client()
    parent = _synthetic_run(client, "sweeps", {}, {V.BATCH_TAG: "true"})
    for depth in ("4", "6"):
        _synthetic_run(client, "sweeps", {"circuit.depth": depth}, {V.PARENT_RUN: parent})
    shown = call_json(store, capsys, "sessions", "show", "sweeps")
    assert (shown["runs"], shown["batches"]) == (3, 1)

    code, out, _ = call(store, capsys, "sessions", "show", "alpha")
    assert code == 0
    for word in (
        "alpha",
        "open",
        "batches",
        "last access",
        store.a[:8],
        store.b[:8],
        store.c[:8],
        "FINISHED",
    ):
        assert word in out


@pytest.mark.e2e
@pytest.mark.parametrize("action", ["show", "close", "resume"])
def test_unknown_session_is_a_user_error(
    action: str, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = call(store, capsys, "sessions", action, "no-such-session")
    user_error(code, err, "no-such-session", "does not exist")


@pytest.mark.e2e
def test_expired_session_is_hidden(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    created = call_json(store, capsys, "sessions", "create", "stale-list", "--timeout-hours", "1")
    assert created["timeout_hours"] == 1.0
    assert "stale-list" in {s["name"] for s in call_json(store, capsys, "sessions", "list")}
    _expire(store.uri, "stale-list")
    assert "stale-list" not in {s["name"] for s in call_json(store, capsys, "sessions", "list")}
    every = {s["name"]: s["status"] for s in call_json(store, capsys, "sessions", "list", "--all")}
    assert every["stale-list"] == "expired"
    assert call_json(store, capsys, "sessions", "show", "stale-list")["status"] == "expired"
    assert call_json(store, capsys, "sessions", "resume", "stale-list")["status"] == "open"


@pytest.mark.e2e
def test_closed_and_expired_sessions_refuse_runs(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end (the runs are in the fixture): `sessions create` + `close`, and an expired
    session; the runner refuses both, and runs into the closed one after `sessions resume`."""
    assert store.shut_closed["status"] == "closed"
    assert store.stale_listed["stale"] == "expired"
    for name, result in store.refused.items():
        assert result.returncode != 0, f"a run into {name} was accepted"
        assert f"lret-runner sessions resume {name}" in result.stderr, result.stderr[-2000:]
        assert ("closed" if name == "shut" else "expired") in result.stderr
        assert "Traceback" not in result.stderr
    assert call_json(store, capsys, "sessions", "show", "stale")["runs"] == 0
    _ok(store.resumed)
    shown = call_json(store, capsys, "sessions", "show", "shut")
    assert (shown["status"], shown["runs"], shown["run_statuses"]) == ("open", 1, {"FINISHED": 1})


# ------------------------------------------------------------------------------------- runs


@pytest.mark.e2e
def test_runs_list_filters(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*argv: str) -> list[str]:
        return [r["run_id"] for r in call_json(store, capsys, "runs", "list", *argv)]

    assert ids("--session", "alpha") == [store.c, store.b, store.a]
    assert ids("--session", "beta") == [store.failed]
    everything = ids()
    assert {store.a, store.b, store.c, store.failed} <= set(everything)
    assert ids("--status", "FAILED") == [store.failed]
    assert store.failed not in ids("--status", "FINISHED")
    assert ids("--session", "alpha", "--status", "FAILED") == []
    assert ids("--session", "alpha", "--limit", "2") == [store.c, store.b]
    both = ids("--session", "alpha", "--tag", "circuit=random", "--tag", "noise=depolarizing")
    assert both == [store.c, store.b, store.a]
    assert ids("--tag", "circuit=ghz") == []

    row = call_json(store, capsys, "runs", "list", "--session", "alpha", "--limit", "1")[0]
    metrics = store.client().get_run(store.c).data.metrics
    assert row["session"] == "alpha" and row["status"] == "FINISHED"
    assert (row["circuit"], row["n_qubits"], row["backend_used"]) == ("random", 3, "lret")
    assert row["exact_fidelity"] == metrics["exact_fidelity"]
    assert row["ideal_fidelity"] == metrics["ideal_fidelity"]
    assert row["final_rank"] == metrics["final_rank"]
    assert row["simulation_time_seconds"] == metrics["simulation_time_seconds"]

    code, out, _ = call(store, capsys, "runs", "list", "--session", "alpha")
    assert code == 0
    for column in (
        "run id",
        "session",
        "status",
        "circuit",
        "backend_used",
        "F noiseless",
        "F exact",
        "final rank",
        "started",
    ):
        assert column in out
    assert store.a[:8] in out and store.a not in out  # short ids in the table

    code, _, err = call(store, capsys, "runs", "list", "--session", "no-such-session")
    user_error(code, err, "no-such-session")


@pytest.mark.e2e
def test_runs_show(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    client = store.client()
    record = call_json(store, capsys, "runs", "show", store.a)
    history = [
        m.value for m in sorted(client.get_metric_history(store.a, "rank"), key=lambda m: m.step)
    ]
    assert history and record["rank_history"] == history
    assert record["status"] == "FINISHED" and record["session"] == "alpha"
    assert record["params"]["circuit.depth"] == 4  # typed, from the config tags
    recorded = client.get_run(store.a).data.metrics
    assert record["metrics"]["exact_fidelity"] == recorded["exact_fidelity"]
    assert sum(record["counts"].values()) == 1024
    assert all(len(k) == 3 and set(k) <= {"0", "1"} for k in record["counts"])

    code, out, err = call(store, capsys, "runs", "show", store.a[:10])  # a unique prefix will do
    assert code == 0, err
    assert store.a in out
    for word in (
        "circuit",
        "random, 3 qubits",  # what was simulated
        "noise",
        "against the noiseless circuit",
        "fidelity to noiseless",
        "TVD to noiseless output",
        "engine accuracy",
        "against the exact state of the same noisy circuit",
        "fidelity to exact",
        "fdm (",  # how the exact state was obtained
        "noiseless state vector (",
        "simulation time",
        "final rank",
        "largest rank kept",
        "widest factor before truncation",
        "truncation error bound",
        "circuit.depth",
    ):
        assert word in out
    assert "rank history" in out
    assert any(ch in out for ch in SPARKS)  # the sparkline
    top = sorted(record["counts"].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    hist_line = next(line for line in out.splitlines() if line.startswith(top + "  "))
    assert FULL * 10 in hist_line and str(record["counts"][top]) in hist_line
    assert "Downloading artifacts" not in err


@pytest.mark.e2e
def test_runs_show_failed_and_unknown(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    record = call_json(store, capsys, "runs", "show", store.failed)
    assert (
        record["status"] == "FAILED" and record["counts"] is None and record["rank_history"] == []
    )
    code, out, _ = call(store, capsys, "runs", "show", store.failed)
    assert code == 0 and "RunTimeout" in out and "no readable counts" in out
    code, _, err = call(store, capsys, "runs", "show", MISSING_RUN)
    user_error(code, err, MISSING_RUN, "does not exist")


@pytest.mark.e2e
def test_runs_tag_then_list(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    tagged = call_json(
        store, capsys, "runs", "tag", store.b, "reviewed", "owner=alice", "note=depth [5]"
    )
    assert tagged["set"] == {"reviewed": "true", "owner": "alice", "note": "depth [5]"}
    assert tagged["tags"]["reviewed"] == "true" and tagged["tags"]["circuit"] == "random"
    assert store.client().get_run(store.b).data.tags["owner"] == "alice"

    def ids(*tags: str) -> list[str]:
        argv = [x for t in tags for x in ("--tag", t)]
        return [r["run_id"] for r in call_json(store, capsys, "runs", "list", *argv)]

    assert ids("reviewed") == [store.b]
    assert ids("reviewed=true", "owner=alice") == [store.b]
    assert ids("note=depth [5]") == [store.b]
    assert ids("owner=bob") == []

    code, out, _ = call(store, capsys, "runs", "tag", store.b, "quote=it's")
    assert code == 0 and "it's" in out and "depth [5]" in out  # prints the run's tags after
    assert ids("quote=it's") == [store.b]

    code, _, err = call(store, capsys, "runs", "tag", store.b, "=oops")
    user_error(code, err, "=oops")
    code, _, err = call(store, capsys, "runs", "tag", MISSING_RUN, "x=1")
    user_error(code, err, MISSING_RUN)


# ---------------------------------------------------------------------------------- lineage


@pytest.mark.e2e
def test_lineage_chain(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    lineage = call_json(store, capsys, "lineage", store.c)
    assert lineage["complete"] is True and lineage["note"] is None
    chain = lineage["chain"]
    assert [s["run_id"] for s in chain] == [store.a, store.b, store.c]
    assert chain[0]["changes"] == {}
    assert chain[1]["changes"] == {"circuit.depth": {"old": 4, "new": 5}}
    assert chain[2]["changes"] == {"noise.level": {"old": 0.002, "new": 0.01}}

    code, out, _ = call(store, capsys, "lineage", store.c)
    assert code == 0
    table = out.split("\n", 1)[1]  # below the title, which names c
    assert table.index(store.a[:8]) < table.index(store.b[:8]) < table.index(store.c[:8])
    assert (
        "circuit.depth: 4 -> 5" in out and "noise.level: 0.002 -> 0.01" in out and "(root)" in out
    )

    assert [s["run_id"] for s in call_json(store, capsys, "lineage", store.a)["chain"]] == [store.a]
    code, _, err = call(store, capsys, "lineage", MISSING_RUN)
    user_error(code, err, MISSING_RUN)


@pytest.mark.e2e
def test_runner_tags_the_lineage_parent(store: Store) -> None:
    tags = store.client().get_run(store.b).data.tags
    assert tags.get(V.LINEAGE_PARENT) == store.a


@pytest.mark.e2e
def test_runner_refuses_a_missing_lineage_parent(store: Store) -> None:
    proc = store.bad_parent
    assert proc.returncode != 0
    assert "lineage.parent" in proc.stderr and MISSING_RUN in proc.stderr


@pytest.mark.e2e
def test_lineage_missing_parent_and_cycle(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    client = store.client()
    gone = "f" * 32
    child = _synthetic_run(client, "synthetic", {"x": "1"}, {V.LINEAGE_PARENT: gone})
    grandchild = _synthetic_run(client, "synthetic", {"x": "2"}, {V.LINEAGE_PARENT: child})
    lineage = call_json(store, capsys, "lineage", grandchild)
    assert [s["run_id"] for s in lineage["chain"]] == [child, grandchild]
    assert (
        lineage["complete"] is False
        and gone in lineage["note"]
        and "missing parent" in lineage["note"]
    )
    assert lineage["chain"][1]["changes"] == {"x": {"old": "1", "new": "2"}}
    code, out, _ = call(store, capsys, "lineage", grandchild)
    assert code == 0 and "note: missing parent" in out and "x: 1 -> 2" in out

    first = _synthetic_run(client, "synthetic", {"x": "a"})
    second = _synthetic_run(client, "synthetic", {"x": "b"}, {V.LINEAGE_PARENT: first})
    client.set_tag(first, V.LINEAGE_PARENT, second)  # a cycle
    lineage = call_json(store, capsys, "lineage", second)
    assert [s["run_id"] for s in lineage["chain"]] == [first, second]
    assert lineage["complete"] is False and "cycle" in lineage["note"]


# ---------------------------------------------------------------------------------- compare


def _expected(
    values: list[float | None], higher: bool
) -> tuple[float | None, float | None, float | None]:
    present = [v for v in values if v is not None]
    best = (max if higher else min)(present)
    first = values[0]
    if best == first:
        return min(present), max(present), 0.0
    gain = best - first if higher else first - best
    return min(present), max(present), 100.0 * gain / abs(first)


@pytest.mark.e2e
def test_compare(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    client = store.client()
    ids = [store.a, store.b, store.c]
    result = call_json(store, capsys, "compare", *ids)
    assert [r["run_id"] for r in result["runs"]] == ids
    assert result["params"] == {  # typed values; lineage.parent is a tag, not a config param
        "circuit.depth": [4, 5, 5],
        "noise.level": [0.002, 0.002, 0.01],
    }

    metrics = [client.get_run(i).data.metrics for i in ids]
    for name in COMPARED:
        higher = "fidelity" in name
        values = [m[name] for m in metrics]
        lo, hi, improvement = _expected(values, higher)
        got = result["metrics"][name]
        assert got["values"] == values
        assert (got["min"], got["max"], got["higher_is_better"]) == (lo, hi, higher)
        assert got["improvement_percent"] == pytest.approx(improvement)
        assert got["best_run"] == ids[values.index((max if higher else min)(values))]

    code, out, _ = call(store, capsys, "compare", *ids)
    assert code == 0
    for word in (
        "circuit.depth",
        "noise.level",
        *(V.METRIC[name].label for name in COMPARED),
        "min",
        "max",
        "improvement",
        store.a[:8],
    ):
        assert word in out
    for name in COMPARED:
        assert f"{result['metrics'][name]['improvement_percent']:.2f}%" in out


@pytest.mark.e2e
def test_compare_plot(store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "charts" / "compare.png"
    result = call_json(store, capsys, "compare", store.a, store.c, store.failed, "--plot", str(png))
    assert result["plot"] == str(png)
    assert result["metrics"]["exact_fidelity"]["values"][2] is None  # the failed run
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image as mpimg

    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["a_directory", "a_file/compare.png"])
def test_compare_plot_to_a_bad_place(
    store: Store, capsys: pytest.CaptureFixture[str], tmp_path: Path, where: str
) -> None:
    (tmp_path / "a_directory").mkdir()
    (tmp_path / "a_file").write_text("not a directory")
    code, _, err = call(store, capsys, "compare", store.a, store.c, "--plot", str(tmp_path / where))
    user_error(code, err, "--plot", "cannot write the chart there")


@pytest.mark.e2e
def test_compare_errors(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(store, capsys, "compare", store.a)
    user_error(code, err, "at least two")
    code, _, err = call(store, capsys, "compare", store.a, MISSING_RUN)
    user_error(code, err, MISSING_RUN, "does not exist")
    code, _, err = call(store, capsys, "compare", store.a, "zzz")
    user_error(code, err, "zzz")


# ---------------------------------------------------------------- serve: settings checked first
@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lret-runner serve`` must refuse before the server starts: starting it fails."""
    import uvicorn

    for var in ("WORKERS", "MAX_QUBITS", "MAX_DEPTH", "MAX_SHOTS", "MAX_BATCH", "QASM_DIR"):
        monkeypatch.delenv(f"LRET_API_{var}", raising=False)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server started"))


@pytest.mark.parametrize(
    ("env", "argv", "fragments"),
    [
        ({"LRET_API_WORKERS": "abc"}, [], ["LRET_API_WORKERS='abc'", "integer >= 1"]),
        ({"LRET_API_WORKERS": "0"}, [], ["LRET_API_WORKERS='0'", "integer >= 1"]),
        ({"LRET_API_MAX_QUBITS": "-5"}, [], ["LRET_API_MAX_QUBITS='-5'", "integer >= 1"]),
        ({"LRET_API_MAX_SHOTS": "1e6"}, [], ["LRET_API_MAX_SHOTS='1e6'"]),
        ({"LRET_API_QASM_DIR": "{tmp}/nowhere"}, [], ["LRET_API_QASM_DIR=", "does not exist"]),
        ({}, ["--qasm-dir", "{tmp}/nowhere"], ["--qasm-dir=", "nowhere does not exist"]),
        ({}, ["--qasm-dir", "{tmp}/a_file"], ["--qasm-dir=", "is not a directory"]),
        ({}, ["--port", "70000"], ["--port", "70000", "[1, 65535]"]),
        ({}, ["--port", "0"], ["--port", "[1, 65535]"]),
        ({}, ["--workers", "0"], ["--workers"]),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(
    env: dict[str, str],
    argv: list[str],
    fragments: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_server: None,
) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    for var, value in env.items():
        monkeypatch.setenv(var, value.format(tmp=tmp_path))
    argv = [a.format(tmp=tmp_path) for a in argv]
    code = cli.main(["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "serve", *argv])
    user_error(code, capsys.readouterr().err, *fragments)
    assert not (tmp_path / "mlflow.db").exists()


def test_serve_settings_from_options_then_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_server: None
) -> None:
    from lret_runner.api.service import env_settings

    monkeypatch.setenv("LRET_API_WORKERS", "3")
    monkeypatch.setenv("LRET_API_MAX_QUBITS", "abc")  # an option given wins: not read
    monkeypatch.setenv("LRET_API_QASM_DIR", str(tmp_path))
    args = cli.build_parser().parse_args(["serve", "--max-qubits", "12", "--port", "65535"])
    assert args.port == 65535
    settings = env_settings(max_qubits=args.max_qubits, workers=args.workers)
    assert (settings.workers, settings.max_qubits, settings.qasm_dir) == (3, 12, tmp_path)
