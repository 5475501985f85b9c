"""The config: schemas in Hydra's ConfigStore, resolvers, and what of a config a run records.

``result_config(cfg)`` is the part of a config that determines a run's result: the
chosen circuit, noise, simulator and backend options with their keys, the run keys
that shape the record, and the SHA-256 of every input file it names (``inputs``: a
QASM file edited in place is a different experiment). It is what a run logs as MLflow
params and what ``config_hash`` (the key of ``sweep.resume``) hashes; session, tags,
tracking, sweep and the keys that only change how a run is watched (quiet, timeout,
threads) are not.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lret_runner.config.schemas import OPTIONS, LretRunnerConfig
from lret_runner.errors import CircuitError, ConfigError, NoiseError, check_choice

CONF_PACKAGE = "lret_runner.conf"  # the config tree, shipped inside the package
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEPTH_RULES = ("linear", "quadratic", "constant")
MAX_TIMEOUT_SECONDS = 10 * 24 * 3600  # run.timeout_seconds: at most 10 days
# keys with a closed set of values that a plain run would otherwise ignore
_CHOICES = {"sweep.depth_rule": DEPTH_RULES}
# the error each section's values raise (a circuit value is a CircuitError)
_SECTION_ERRORS: dict[str, type[ConfigError]] = {"circuit": CircuitError, "noise": NoiseError}
# keys that do not change a run's result
_NOT_RESULT = {"run": ("quiet", "timeout_seconds"), "backend": ("threads",)}
_RESULT_SECTIONS = ("circuit", "noise", "simulator", "backend", "run")
# keys that name input files (relative: to the launch dir); noise.device may instead name a
# shipped device snapshot: input_file() tells
INPUT_PATHS = ("circuit.path", "noise.device")


@functools.cache
def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore (the YAML options extend them) and the resolvers."""
    from hydra.core.config_store import ConfigStore

    OmegaConf.register_resolver("lret_data", data_file, replace=True)
    OmegaConf.register_resolver("lret_depth", depth_rule, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=LretRunnerConfig)
    for group, options in OPTIONS.items():
        for option, schema in options.items():
            cs.store(group=group, name=f"{option}_schema", node=schema)


def check_known_keys(cfg: Any) -> None:
    """Every key of ``cfg`` is a field of its node's schema, else a :class:`ConfigError`
    naming it.

    Composition already refuses a misspelt key (``circuit.dpeth=3``) because the nodes
    are in struct mode, but Hydra adds a key given with ``+`` (``+foo=1``,
    ``+circuit.foo=1``, ``+run.bar=1``) by opening the node first, whatever its schema
    says. This check finds such keys in the composed config; ``tags`` (a free mapping)
    and Hydra's own ``hydra`` node are open.
    """
    _check_node_keys(cfg, "")


def _check_node_keys(node: Any, path: str) -> None:
    if isinstance(node, DictConfig):
        schema = OmegaConf.get_type(node)
        fields = None
        if isinstance(schema, type) and dataclasses.is_dataclass(schema):
            fields = {f.name for f in dataclasses.fields(schema)}
        for key in node.keys():
            name = f"{path}.{key}" if path else str(key)
            child = node._get_node(key)
            if fields is not None and key not in fields and not (path == "" and key == "hydra"):
                raise ConfigError(_unknown_key(node, path, name, child, sorted(fields)))
            _check_node_keys(child, name)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            _check_node_keys(node._get_node(i), f"{path}[{i}]")


def _unknown_key(node: DictConfig, path: str, name: str, child: Any, fields: list[str]) -> str:
    shown = "{...}" if isinstance(child, DictConfig | ListConfig) else repr(child._value())
    if not path:
        where = "the config"
    elif path in OPTIONS and "name" in node:
        where = f"the option {path}={node._get_node('name')._value()}"
    else:
        where = path
    return (
        f"{name}={shown} is not a key of {where}: allowed are {', '.join(fields)}. "
        "Remove it or fix its spelling (a key given with '+' is added without being checked "
        "at composition)"
    )


def check_values(cfg: Any) -> None:
    """Every value of ``cfg`` resolves and every number is finite, else a
    :class:`ConfigError` naming the key (``circuit.angles[0]``), the value and what is
    allowed; also the keys a plain run would otherwise ignore (:data:`_CHOICES`) and the
    bound of ``run.timeout_seconds``.

    The one walk over the composed config, before anything reads it (the terminal arms
    the timeout with it, ``prepare`` builds from it): an interpolation that cannot resolve
    (``${oc.env:UNSET}``) and a float that is inf or nan, whether YAML's ``.inf`` or the
    string ``"inf"`` a float field converts, fail here in one line. Hydra's own ``hydra``
    node is not checked.
    """
    for key, allowed in _CHOICES.items():
        value = _resolved(cfg, key)
        if value is not None:
            check_choice(key, value, allowed)
    timeout = _resolved(cfg, "run.timeout_seconds")
    number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
    if timeout is not None and not (number and 0 < timeout <= MAX_TIMEOUT_SECONDS):
        raise ConfigError(  # signal.setitimer overflows on a huge one
            f"run.timeout_seconds={timeout} is invalid: must be in (0, {MAX_TIMEOUT_SECONDS}] "
            f"seconds (at most {MAX_TIMEOUT_SECONDS // 86400} days), or null for no timeout"
        )
    _check_node_values(cfg, "")


def _resolved(cfg: Any, key: str) -> Any:
    """The value at the dotted ``key`` (None where it is absent), resolution errors named."""
    node: Any = cfg
    path = ""
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = _child(node, part, f"{path}.{part}" if path else part)
        path = f"{path}.{part}" if path else part
    return node


def _child(node: DictConfig | ListConfig, key: Any, name: str) -> Any:
    """``node[key]`` resolved, or a :class:`ConfigError` naming ``name`` and why not."""
    from omegaconf.errors import OmegaConfBaseException

    error = _error_for(name)
    if OmegaConf.is_missing(node, key):
        raise error(f"{name}=??? has no value: set it ({name}=...)")
    try:
        return node[key]
    except OmegaConfBaseException as exc:
        shown = OmegaConf.to_container(node, resolve=False)[key]  # as written: ${...}
        why = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        why = why.split(" raised while resolving interpolation: ", 1)[-1].strip("'\"")
        raise error(f"{name}={shown} cannot be resolved: {why}") from None


def _error_for(name: str) -> type[ConfigError]:
    return _SECTION_ERRORS.get(name.split(".")[0].split("[")[0], ConfigError)


def _check_node_values(node: Any, path: str) -> None:
    if isinstance(node, DictConfig):
        keys: Any = [k for k in node.keys() if path or k != "hydra"]
    elif isinstance(node, ListConfig):
        keys = range(len(node))
    else:
        return
    for key in keys:
        if isinstance(node, ListConfig):
            name = f"{path}[{key}]"
        else:
            name = f"{path}.{key}" if path else str(key)
        value = _child(node, key, name)
        if isinstance(value, float) and not math.isfinite(value):
            raise _error_for(name)(
                f"{name}={value} is invalid: must be a finite number (not inf or nan)"
            )
        _check_node_values(value, name)


def check_option_names(cfg: Any) -> None:
    """Each group's ``name`` is the one of the schema its option extends: ``simulator.name=fdm``
    on the lret option would run fdm with lret's keys."""
    for group in OPTIONS:
        node = cfg[group]
        schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
        fields = getattr(schema, "__dataclass_fields__", {})
        expected = fields["name"].default if "name" in fields else None
        if isinstance(expected, str) and node.name != expected:
            raise ConfigError(
                f"{group}.name={node.name!r} is invalid with the option {group}={expected}: "
                f"choose the option instead ({group}={node.name})"
            )


def input_file(cfg: Any, key: str) -> str | None:
    """The file the input key ``key`` (one of :data:`INPUT_PATHS`) names in ``cfg``; None
    when it is unset or empty, or when ``noise.device`` names a shipped snapshot."""
    value = OmegaConf.select(cfg, key, default=None)
    if not isinstance(value, str) or not value:
        return None
    if key == "noise.device":
        from lret_runner.devices import is_shipped

        if is_shipped(value):
            return None
    return value


def data_file(name: str) -> str:
    """``${lret_data:NAME}``: the path of a file shipped in ``lret_runner/data``."""
    return str(DATA_DIR / name)


def depth_rule(rule: str, n_qubits: int, constant: int = 10) -> int:
    """``${lret_depth:RULE,N,CONSTANT}``: circuit depth from the qubit count (scaling sweeps)."""
    rule = check_choice("sweep.depth_rule", rule, DEPTH_RULES)
    return {"linear": 2 * n_qubits, "quadratic": n_qubits**2, "constant": constant}[rule]


def plain(node: Any) -> Any:
    """A config node as plain Python data (resolved)."""
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def result_config(cfg: Any, *, n_qubits: int | None = None) -> dict[str, Any]:
    """What of ``cfg`` determines the result (see the module docstring).

    ``n_qubits`` is the prepared circuit's qubit count (``Prepared.n_qubits``): it is
    recorded as ``circuit.n_qubits`` where the config does not set it (a QASM file's
    count comes from the file).
    """
    out = {}
    for section in _RESULT_SECTIONS:
        data = dict(plain(cfg[section]))
        for key in _NOT_RESULT.get(section, ()):
            data.pop(key, None)
        out[section] = data
    if n_qubits is not None:
        out["circuit"].setdefault("n_qubits", n_qubits)
    inputs = {}
    for key in INPUT_PATHS:
        path = input_file(cfg, key)
        if path is not None and Path(path).is_file():
            inputs[key.replace(".", "_")] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if inputs:
        out["inputs"] = inputs  # params inputs.circuit_path: the file's SHA-256
    return out


def config_hash(cfg: Any, *, n_qubits: int | None = None) -> str:
    """A stable hash of :func:`result_config` (with the same ``n_qubits``)."""
    text = json.dumps(result_config(cfg, n_qubits=n_qubits), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
