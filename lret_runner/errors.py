"""The error hierarchy and the validators every layer shares.

An entry point (``python -m lret_runner``, ``lret-runner``, later the API) catches
:class:`UserError` and prints its message: something the user can fix, naming the
setting, the value and what is allowed. Anything else is a bug in the code and keeps
its traceback. The kinds also subclass ``ValueError`` (or ``FileNotFoundError``) so
library callers can catch them the usual way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class UserError(Exception):
    """A problem the user can fix; the message says what and how."""


class ConfigError(UserError, ValueError):
    """A config value outside its allowed range; the message names key, value and range."""


class CircuitError(ConfigError):
    """An invalid circuit parameter or a malformed circuit file."""


class CircuitFileNotFound(UserError, FileNotFoundError):
    """A circuit file (OpenQASM) that does not exist."""


class NoiseError(ConfigError):
    """An invalid noise-model name or parameter."""


class SimulationError(UserError, RuntimeError):
    """A circuit the engines cannot simulate (non-terminal measurement, unknown op)."""


class MemoryRefusal(SimulationError):
    """The engine's state would not fit in the memory that is free; nothing was allocated."""


class RunTimeout(UserError, RuntimeError):
    """``run.timeout_seconds`` ran out between two moments."""


class ObjectiveUndefined(UserError, ValueError):
    """An Optuna trial's objective has no value for its run (the trial is recorded failed)."""


class TrackingError(UserError):
    """The tracking store cannot be used, or a session or run in it does not exist."""


class SessionError(TrackingError, ValueError):
    """A session that does not exist, already exists, or is closed/expired."""


# ---------------------------------------------------------------- validators


def check_number(
    field: str, value: Any, error: type[ConfigError] = ConfigError, *, integer: bool = False
) -> float:
    """``value`` as a finite number (an integer with ``integer``), else ``error``."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "an integer" if integer else "a number"
        raise error(f"{field}={value!r} is invalid: must be {kind}")
    if integer and not isinstance(value, numbers.Integral):
        raise error(f"{field}={value!r} is invalid: must be an integer")
    if not math.isfinite(value):
        raise error(f"{field}={value} is invalid: must be finite")
    return value if integer else float(value)  # type: ignore[return-value]


def check_range(
    field: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    error: type[ConfigError] = ConfigError,
    *,
    integer: bool = False,
    open_low: bool = False,
    open_high: bool = False,
    what: str = "",
) -> Any:
    """``value`` if it is a number in the range, else ``error`` naming field, value and range."""
    number = check_number(field, value, error, integer=integer)
    below = low is not None and (number <= low if open_low else number < low)
    above = high is not None and (number >= high if open_high else number > high)
    if below or above:
        if low is not None and high is not None:
            allowed = f"in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        elif low is not None:
            allowed = f"{'>' if open_low else '>='} {low}"
        else:
            allowed = f"{'<' if open_high else '<='} {high}"
        raise error(f"{field}={value} is invalid: {what or 'must be'} {allowed}".rstrip())
    return number


def check_probability(field: str, value: Any, error: type[ConfigError] = ConfigError) -> float:
    return float(check_range(field, value, 0, 1, error, what="a probability must be"))


def check_choice(
    field: str, value: Any, allowed: Sequence[str], error: type[ConfigError] = ConfigError
) -> str:
    if value not in allowed:
        raise error(f"{field}={value!r} is invalid: must be one of {', '.join(allowed)}")
    return str(value)
