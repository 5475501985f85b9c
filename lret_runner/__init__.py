"""lret_runner: a declarative runner for noisy quantum-circuit experiments."""

__version__ = "0.1.0"
