"""task.terminal in-process: signals held back while the record is written, the timeout
over the whole run (preparing, simulating, the exact comparison)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import cirq  # noqa: F401  (imported up front: these tests' timeouts must not land inside
import matplotlib.figure  # noqa: F401  an import, which would leave it half-done for the
import pytest  # other tests of this process)

from lret_runner.errors import RunTimeout
from lret_runner.task.terminal import Signals, execute
from lret_runner.tracking import MlflowTracker


def _interrupt() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def test_an_interrupt_while_starting_is_raised_when_the_start_is_recorded() -> None:
    steps = []
    with Signals(None) as signals, pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        with signals.recording("start"):
            _interrupt()
            steps.append("the start was recorded")
    assert steps == ["the start was recorded"]


def test_an_interrupt_while_finishing_is_kept_for_the_caller() -> None:
    with Signals(None) as signals:
        with signals.recording("finish"):
            _interrupt()
    assert isinstance(signals.pending, KeyboardInterrupt)


def test_a_second_interrupt_is_raised_at_once() -> None:
    with Signals(None) as signals, pytest.raises(KeyboardInterrupt):
        with signals.recording("finish"):
            _interrupt()
            _interrupt()
            pytest.fail("the second interrupt did not stop the recording")


def test_outside_the_record_an_interrupt_is_raised_at_once() -> None:
    with Signals(None), pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        _interrupt()
        time.sleep(1)  # the signal arrives before this returns
        pytest.fail("not interrupted")


def test_the_timeout_no_longer_applies_once_the_result_is_recorded() -> None:
    with Signals(0.05) as signals:
        signals.arm()
        with signals.recording("finish"):
            time.sleep(0.2)  # the alarm fires in here
        time.sleep(0.1)
    assert signals.pending is None


def test_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with Signals(1.0) as signals:
        signals.arm()
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_timeout_covers_the_exact_comparison(compose, store_uri, tmp_path: Path) -> None:
    # lret at rank ~1 is quick; the 12-qubit exact reference it is compared with is not
    cfg = compose(
        [
            "circuit=ghz",
            "circuit.n_qubits=12",
            "noise.level=1e-6",
            "run.quiet=true",
            "run.timeout_seconds=0.5",
            f"tracking.tracking_uri={store_uri}",
        ]
    )
    start = time.perf_counter()
    result, interrupt = execute(cfg, tmp_path)
    assert time.perf_counter() - start < 10
    assert result.status == "FAILED" and isinstance(result.exception, RunTimeout)
    assert interrupt is None
    run = MlflowTracker(store_uri).client.get_run(result.run_id)
    assert run.info.status == "FAILED" and "run.timeout_seconds=0.5" in run.data.tags["error"]


def test_a_timeout_while_preparing_is_recorded_failed(compose, store_uri, tmp_path: Path) -> None:
    cfg = compose(
        ["run.quiet=true", "run.timeout_seconds=1e-4", f"tracking.tracking_uri={store_uri}"]
    )
    result, _ = execute(cfg, tmp_path)
    assert result.status == "FAILED" and isinstance(result.exception, RunTimeout)
