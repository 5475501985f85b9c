"""The accuracy contract: what every run promises about its answer, and whether it kept it.

``run.accuracy`` is the one number a user sets. For the density-matrix engines it is the
largest trace distance to the exact noisy state the user accepts, a proven bound: ``fdm``
and ``cirq`` are exact (to floating point), ``lret`` spends it over its truncations (their
summed discarded weight, ``truncation_error``, bounds the trace distance). For the
trajectory engine it is the largest standard error of each reported figure, a statistical
guarantee. Every result says what was met (:class:`Accuracy`); a run that did not meet its
target says so first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lret_runner.errors import check_range

DEFAULT = 1e-3  # run.accuracy
BOUND = "bound"  # a proven bound on the trace distance to the exact noisy state
STATISTICAL = "statistical"  # the largest standard error of a reported figure
# the standard-error key of the measured distribution: the largest over its outcomes
PROBABILITIES_SE = "probabilities"


def check(value: Any) -> float:
    """``run.accuracy`` as a float in (0, 1), or a :class:`ConfigError` naming it."""
    return float(check_range("run.accuracy", value, 0, 1, open_low=True, open_high=True))


@dataclass(frozen=True)
class Accuracy:
    """What a run promised (``target``) and what it achieved, of one ``kind``."""

    target: float
    achieved: float
    kind: str  # BOUND or STATISTICAL

    @property
    def met(self) -> bool:
        return self.achieved <= self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}

    def sentence(self) -> str:
        """The outcome in plain words, after the word "accuracy" (the first line of a summary
        when it was not met)."""
        if self.kind == STATISTICAL:
            what = f"the largest standard error is {self.achieved:.2g}"
        elif self.achieved == 0:
            what = "the state is exact"
        else:
            what = f"the trace distance to the exact state is at most {self.achieved:.2g}"
        verdict = "met" if self.met else "NOT MET"
        return f"{verdict}: {what} (run.accuracy={self.target:g})"
