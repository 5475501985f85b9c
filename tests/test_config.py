"""The config tree through Hydra's compose API: every preset and every group option
composes and prepares; typos, wrong types, keys of another option and out-of-range values
fail with the key's name; config.yaml is the architecture at a glance; config_hash and
the logged params hold only what affects the result."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
import yaml
from conftest import CONF_DIR
from conftest import compose_config as compose_cfg
from hydra.errors import ConfigCompositionException

from lret_runner.circuits import CIRCUIT_BUILDERS
from lret_runner.config import config_hash, result_config
from lret_runner.config.schemas import OPTIONS
from lret_runner.errors import CircuitFileNotFound, ConfigError
from lret_runner.experiment import prepare

GROUPS = ("circuit", "noise", "simulator", "backend", "tracking", "cloud", "hamiltonian")
PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
GROUP_OPTIONS = sorted((g, p.stem) for g in GROUPS for p in (CONF_DIR / g).glob("*.yaml"))


def _messages(exc: BaseException) -> str:
    """The message of an exception and of everything it was raised from."""
    parts = []
    seen: BaseException | None = exc
    while seen is not None:
        parts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


# ---------------------------------------------------------------- everything composes
def test_the_tree_has_presets_and_options() -> None:
    assert "quickstart" in PRESETS
    for group in GROUPS:
        assert any(g == group for g, _ in GROUP_OPTIONS), f"conf/{group}/ has no option"


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_validates(preset: str) -> None:
    prepare(compose_cfg([f"+experiment={preset}"]))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_a_global_package(preset: str) -> None:
    first = (CONF_DIR / "experiment" / f"{preset}.yaml").read_text().splitlines()[0]
    assert first.strip() == "# @package _global_"


# what an option needs from the rest of the config (the H2 Hamiltonian acts on two qubits)
NEEDS = {("hamiltonian", "h2"): ["circuit.n_qubits=2"]}


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes_and_validates(group: str, option: str) -> None:
    cfg = compose_cfg([f"{group}={option}", *NEEDS.get((group, option), [])])
    assert cfg[group].name == option
    prepare(cfg)


def test_a_hamiltonian_of_the_wrong_size_names_its_term() -> None:
    with pytest.raises(ConfigError, match=r"hamiltonian\.terms\.II: .*need a string of 4"):
        prepare(compose_cfg(["hamiltonian=h2", "circuit.n_qubits=4"]))


def test_qasm_option_resolves_the_shipped_file() -> None:
    cfg = compose_cfg(["circuit=qasm"])
    path = Path(cfg.circuit.path)
    assert path.is_absolute() and path.is_file()
    assert path.name == "example.qasm"


# ---------------------------------------------------------------- composition errors
@pytest.mark.parametrize(
    ("override", "key"),
    [("circuit.dpeth=3", "dpeth"), ("circuit.n_qubits=abc", "n_qubits")],
    ids=["typo-key", "wrong-type"],
)
def test_typo_and_wrong_type_fail_at_composition(override: str, key: str) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg([override])
    text = _messages(info.value)
    assert key in text
    assert "circuit" in text


# ---------------------------------------------------------------- semantic errors
@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["circuit.n_qubits=0"], ["circuit.n_qubits", "0", "[1, 30]"]),
        (["noise.level=1.5"], ["noise.level", "1.5", "[0, 1]"]),
        (["simulator.rank_threshold=-1"], ["simulator.rank_threshold", "-1", "[0, 1)"]),
        (["simulator=auto", "simulator.rank_threshold=2"], ["simulator.rank_threshold", "2"]),
        (["simulator.max_rank=0"], ["simulator.max_rank", "0", ">= 1"]),
        (["run.shots=-1"], ["run.shots", "-1", "[0, 1000000000]"]),
        (["circuit.n_qubits=4", "run.observables=[ZZ]"], ["run.observables", "ZZ", "4"]),
        (
            ["circuit.n_qubits=17", "run.save_probabilities=true"],
            ["run.save_probabilities", "17", "16"],
        ),
        (
            ["noise=thermal", "noise.t1=50e-6", "noise.t2=150e-6"],
            ["noise.t2", "0.00015", "noise.t1", "2"],
        ),
    ],
    ids=[
        "n_qubits-0",
        "noise-level",
        "rank_threshold",
        "auto-rank_threshold",
        "max_rank",
        "shots",
        "observable-length",
        "save_probabilities-17",
        "thermal-t2",
    ],
)
def test_prepare_names_key_value_and_range(overrides: list[str], needles: list[str]) -> None:
    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_missing_qasm_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent.qasm"
    cfg = compose_cfg(["circuit=qasm", f"circuit.path={missing}"])
    with pytest.raises(CircuitFileNotFound, match=re.escape(str(missing))):
        prepare(cfg)


def test_default_config_prepares() -> None:
    prepare(compose_cfg())


# ---------------------------------------------------------------- config.yaml
def _defaults_block(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("defaults:") + 1
    block = []
    for line in lines[start:]:
        if not line.startswith((" ", "-")):
            break
        if line.strip():
            block.append(line)
    return block


def test_config_yaml_lists_groups_in_order_then_self() -> None:
    defaults = yaml.safe_load((CONF_DIR / "config.yaml").read_text())["defaults"]
    groups = [next(iter(entry)) for entry in defaults if isinstance(entry, dict)]
    assert groups == list(GROUPS)
    assert defaults[-1] == "_self_"
    last_group = max(i for i, entry in enumerate(defaults) if isinstance(entry, dict))
    assert defaults.index("_self_") > last_group


def test_config_yaml_comments_every_group_line() -> None:
    block = _defaults_block((CONF_DIR / "config.yaml").read_text())
    group_lines = [line for line in block if re.match(r"\s*-\s*\w+\s*:", line)]
    assert len(group_lines) == len(GROUPS)
    for line in group_lines:
        assert re.search(r"#\s*\S", line), f"no comment on {line.strip()!r}"


def test_config_yaml_defaults_match_existing_options() -> None:
    defaults = yaml.safe_load((CONF_DIR / "config.yaml").read_text())["defaults"]
    for entry in defaults:
        if isinstance(entry, dict):
            ((group, option),) = entry.items()
            assert (CONF_DIR / group / f"{option}.yaml").is_file(), f"{group}={option}"


# ---------------------------------------------------------------- config_hash
def test_config_hash_equal_for_identical_configs() -> None:
    assert config_hash(compose_cfg()) == config_hash(compose_cfg())
    overrides = ["+experiment=quickstart", "circuit.n_qubits=5"]
    assert config_hash(compose_cfg(overrides)) == config_hash(compose_cfg(overrides))


def test_config_hash_changes_with_circuit_seed() -> None:
    assert config_hash(compose_cfg(["circuit.seed=0"])) != config_hash(
        compose_cfg(["circuit.seed=1"])
    )


@pytest.mark.parametrize(
    "overrides",
    [
        ["session.name=elsewhere"],
        ["session.description=another"],
        ["+tags.owner=alice"],
        ["tracking=none"],
        ["tracking.tracking_uri=sqlite:////tmp/other.db"],
    ],
    ids=["session-name", "session-description", "tags", "tracking-none", "tracking-uri"],
)
def test_config_hash_ignores_session_tags_and_tracking(overrides: list[str]) -> None:
    assert config_hash(compose_cfg(overrides)) == config_hash(compose_cfg())


@pytest.mark.parametrize(
    "overrides",
    [["run.quiet=true"], ["run.timeout_seconds=60"], ["backend.threads=1"], ["sweep.resume=true"]],
    ids=["quiet", "timeout", "threads", "resume"],
)
def test_config_hash_ignores_how_a_run_is_watched(overrides: list[str]) -> None:
    assert config_hash(compose_cfg(overrides)) == config_hash(compose_cfg())


# ---------------------------------------------------------------- one schema per option
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["simulator=fdm", "simulator.rank_threshold=0.1"], "rank_threshold"),
        (["simulator=cirq", "simulator.max_rank=4"], "max_rank"),
        (["noise=thermal", "noise.level=0.1"], "level"),
        (["noise=none", "noise.placement=moment"], "placement"),
        (["noise=depolarizing", "noise.t1=1e-5"], "t1"),
        (["circuit=ghz", "circuit.depth=3"], "depth"),
        (["tracking=none", "tracking.tracking_uri=sqlite:///x.db"], "tracking_uri"),
    ],
    ids=[
        "fdm-lret-key",
        "cirq-lret-key",
        "thermal-level",
        "none-placement",
        "depol-t1",
        "ghz-depth",
        "none-uri",
    ],
)
def test_a_key_of_another_option_fails_at_composition(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(overrides)
    assert key in _messages(info.value)


def test_composite_components_are_typed() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["noise=composite", "noise.components=[{name: depolarizing, levl: 0.1}]"])
    assert "levl" in _messages(info.value)
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["noise=composite", "noise.components=[{name: depolarizing, level: abc}]"])
    assert "level" in _messages(info.value)


def test_auto_carries_the_lret_keys() -> None:
    cfg = compose_cfg(["simulator=auto", "simulator.rank_threshold=1e-3"])
    assert result_config(cfg)["simulator"]["rank_threshold"] == 1e-3


def test_an_fdm_record_holds_no_lret_keys() -> None:
    simulator = result_config(compose_cfg(["simulator=fdm"]))["simulator"]
    assert simulator == {"name": "fdm"}


def test_the_record_holds_only_what_affects_the_result() -> None:
    record = result_config(compose_cfg())
    assert set(record) == {"circuit", "noise", "simulator", "backend", "run"}
    assert "quiet" not in record["run"] and "timeout_seconds" not in record["run"]
    assert "threads" not in record["backend"]


def test_a_name_that_is_not_the_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="simulator.name='fdm'.*simulator=lret"):
        prepare(compose_cfg(["simulator.name=fdm"]))


@pytest.mark.parametrize("name", sorted(CIRCUIT_BUILDERS))
def test_circuit_schema_keys_are_the_builder_parameters(name: str) -> None:
    fields = {f.name for f in dataclasses.fields(OPTIONS["circuit"][name])} - {"name"}
    assert fields == set(inspect.signature(CIRCUIT_BUILDERS[name]).parameters)


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_option_has_its_own_schema(group: str, option: str) -> None:
    text = (CONF_DIR / group / f"{option}.yaml").read_text()
    # a cloud option that also sets Hydra's launcher is global: its schema goes @cloud
    assert f"- {option}_schema" in text or f"- /{group}/{option}_schema@{group}" in text
    assert option in OPTIONS[group]


# ---------------------------------------------------------------- keys added with "+"
@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["+foo=1"], "foo=1 is not a key of the config"),
        (["+foo=bar"], "foo='bar' is not a key of the config"),
        (["+circuit.foo=1"], "circuit.foo=1 is not a key of the option circuit=random"),
        (["+run.bar=1"], "run.bar=1 is not a key of run"),
        (["+noise.foo=1"], "noise.foo=1 is not a key of the option noise=depolarizing"),
        (["+simulator.foo=1"], "simulator.foo=1 is not a key of the option simulator=lret"),
        (["simulator=fdm", "+simulator.rank_threshold=0.1"], "simulator.rank_threshold=0.1"),
        (["+backend.foo=1"], "backend.foo=1"),
        (["+cloud.foo=1"], "cloud.foo=1"),
        (["+tracking.foo=1"], "tracking.foo=1"),
        (["+session.foo=1"], "session.foo=1"),
        (["+sweep.foo=1"], "sweep.foo=1"),
        (["+lineage.foo=1"], "lineage.foo=1"),
        (["circuit=qasm", "+circuit.n_qubits=3"], "circuit.n_qubits=3"),
        (["+foo={a: 1}"], "foo={...}"),
        (
            ["noise=composite", "+noise.components.0.foo=1"],
            "noise.components[0].foo=1 is not a key of noise.components[0]",
        ),
    ],
)
def test_a_key_added_with_plus_is_refused_naming_it(overrides: list[str], needle: str) -> None:
    """Hydra adds a ``+key`` even to a struct node: prepare refuses every key that is not
    a field of its node's schema, with its name and the allowed keys."""
    cfg = compose_cfg(overrides)  # composes: '+' bypasses the schema
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    assert needle in message, message
    assert "allowed are" in message


def test_tags_stay_open() -> None:
    prepare(compose_cfg(["+tags.owner=alice", "+tags.x=1"]))


def test_readout_has_no_level_key_at_composition() -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["noise=readout", "noise.level=0.1"])
    assert "noise.level" in _messages(info.value)


def test_a_readout_component_with_a_level_is_refused() -> None:
    """One knob means one thing: a readout component's level would have been its readout
    error; it is refused, naming it."""
    cfg = compose_cfg(["noise=composite", "noise.components=[{name: readout, level: 0.1}]"])
    with pytest.raises(ConfigError, match=r"noise\.components\[0\]\.level=0\.1 is invalid"):
        prepare(cfg)


# ---------------------------------------------------------------- values checked up front
@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["circuit.seed=-1"], ["circuit.seed=-1", ">= 0"]),
        (["circuit=vqe", "circuit.seed=-3"], ["circuit.seed=-3"]),
        (["run.seed=-1"], ["run.seed=-1", ">= 0"]),
        (["run.shots=100000000000000000000"], ["run.shots=100000000000000000000", "1000000000"]),
        (["run.shots=1000000001"], ["run.shots=1000000001"]),
        (["circuit.depth=10000000"], ["circuit.depth=10000000", "1,000,000", "<= 250000"]),
        (["noise=readout", "circuit.measure=false"], ["noise.readout_error", "circuit.measure"]),
    ],
)
def test_prepare_refuses_before_building(overrides: list[str], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        prepare(compose_cfg(overrides))
    for needle in needles:
        assert needle in str(info.value), str(info.value)


def test_the_largest_shot_count_is_accepted() -> None:
    from lret_runner.experiment import MAX_SHOTS

    assert prepare(compose_cfg([f"run.shots={MAX_SHOTS}"])).shots == MAX_SHOTS


def test_a_qasm_record_carries_the_file_qubit_count() -> None:
    cfg = compose_cfg(["circuit=qasm"])
    prepared = prepare(cfg)
    assert prepared.n_qubits == 3  # the shipped example.qasm
    assert "n_qubits" not in result_config(cfg)["circuit"]
    record = result_config(cfg, n_qubits=prepared.n_qubits)
    assert record["circuit"]["n_qubits"] == 3
    assert config_hash(cfg, n_qubits=3) != config_hash(cfg)
    # a builder's own n_qubits is kept as it is
    built = compose_cfg(["circuit.n_qubits=5"])
    assert result_config(built, n_qubits=5) == result_config(built)


# ---------------------------------------------------------------- issue 22: values checked once
@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (
            ["circuit=vqe", "circuit.n_qubits=1", "circuit.depth=1", "circuit.angles=[inf,0]"],
            "circuit.angles[0]=inf",
        ),
        (
            ["circuit=vqe", "circuit.n_qubits=1", "circuit.depth=1", "circuit.angles=['inf',0]"],
            "circuit.angles[0]=inf",
        ),
        (["circuit=qaoa", "circuit.gammas=[nan]"], "circuit.gammas[0]=nan"),
        (["circuit=qaoa", "circuit.gammas=[1e309]"], "circuit.gammas[0]=inf"),
        (["circuit=qaoa", "circuit.betas=[0.1,'-inf']", "circuit.p=2"], "circuit.betas[1]=-inf"),
        (["circuit=architecture", "circuit.angles=[0,nan,0]"], "circuit.angles[1]=nan"),
        (["hamiltonian=ising", "hamiltonian.coupling=nan"], "hamiltonian.coupling=nan"),
        (["hamiltonian=ising", "hamiltonian.field='inf'"], "hamiltonian.field=inf"),
        (["noise=thermal", "noise.gate_time_1q=inf"], "noise.gate_time_1q=inf"),
        (["noise=device", "noise.scale=nan"], "noise.scale=nan"),
        (["optimize.penalty=inf"], "optimize.penalty=inf"),
        (["tracking.timeout_seconds=nan"], "tracking.timeout_seconds=nan"),
    ],  # fmt: skip
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_non_finite_number_is_refused_naming_its_key(overrides: list[str], needle: str) -> None:
    """Every float of every config is finite: inf, nan, the strings "inf"/"nan" a float
    field converts and 1e309 (inf) are refused by the key (and index), before building."""
    cfg = compose_cfg(overrides)
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    assert needle in message and "must be a finite number" in message, message
    if overrides[0].startswith("circuit="):
        from lret_runner.errors import CircuitError

        assert isinstance(info.value, CircuitError)


def test_yaml_inf_and_nan_are_refused() -> None:
    """``.inf``/``.nan`` in a YAML file (a preset, a user config) are floats like any other."""
    from omegaconf import OmegaConf

    for text, needle in (
        ("circuit:\n  angles: [.inf, 0.0]\n", "circuit.angles[0]=inf"),
        ("hamiltonian:\n  coupling: .nan\n", "hamiltonian.coupling=nan"),
        ("run:\n  timeout_seconds: .inf\n", "run.timeout_seconds=inf"),
    ):
        base = ["circuit=vqe", "circuit.n_qubits=1", "circuit.depth=1", "hamiltonian=ising"]
        cfg = OmegaConf.merge(compose_cfg(base), OmegaConf.create(text))
        with pytest.raises(ConfigError, match=re.escape(needle)):
            prepare(cfg)


@pytest.mark.parametrize("value", ["1e300", "inf", "864001"])
def test_a_timeout_beyond_ten_days_is_refused(value: str) -> None:
    """signal.setitimer overflows on a huge timeout: the bound (10 days) is said."""
    from lret_runner.config import MAX_TIMEOUT_SECONDS

    assert MAX_TIMEOUT_SECONDS == 864000
    with pytest.raises(ConfigError, match=r"run\.timeout_seconds=.*at most 10 days"):
        prepare(compose_cfg([f"run.timeout_seconds={value}"]))
    prepare(compose_cfg([f"run.timeout_seconds={MAX_TIMEOUT_SECONDS}"]))


def test_an_unresolvable_interpolation_names_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LRET_SURELY_UNSET", raising=False)
    cfg = compose_cfg(["circuit.n_qubits=${oc.env:LRET_SURELY_UNSET}"])
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    assert message.startswith("circuit.n_qubits=${oc.env:LRET_SURELY_UNSET} cannot be resolved")
    assert "LRET_SURELY_UNSET" in message.split("cannot be resolved")[1]
    assert "\n" not in message
    cfg = compose_cfg(["run.observables=[ZZZZ,'${nowhere}']"])
    with pytest.raises(ConfigError, match=re.escape("run.observables[1]=${nowhere} cannot be")):
        prepare(cfg)


def test_the_terminal_refuses_before_reading_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal arms the timeout and opens the tracker before preparing: a huge timeout
    (setitimer's OverflowError) and an unresolvable key are refused first, as user errors,
    and nothing is recorded."""
    from lret_runner.task import terminal

    monkeypatch.delenv("LRET_SURELY_UNSET", raising=False)
    monkeypatch.setattr(
        "lret_runner.tracking.make_tracker",
        lambda *a, **k: pytest.fail("the tracker was made for an invalid config"),
    )
    for overrides, needle in (
        (["run.timeout_seconds=1e300"], "run.timeout_seconds=1e+300"),
        (["run.quiet=${oc.env:LRET_SURELY_UNSET}"], "run.quiet=${oc.env:LRET_SURELY_UNSET}"),
        (["tracking.tracking_uri=${oc.env:LRET_SURELY_UNSET}"], "tracking.tracking_uri="),
    ):
        cfg = compose_cfg(overrides)
        with pytest.raises(ConfigError, match=re.escape(needle)):
            terminal.execute(cfg, tmp_path / "out", root=tmp_path)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["sweep.depth_rule=foo"], ["sweep.depth_rule='foo'", "linear, quadratic, constant"]),
        (["+experiment=scaling", "sweep.depth_rule=foo"], ["sweep.depth_rule='foo'", "linear"]),
    ],
)
def test_an_unknown_depth_rule_is_refused_on_a_single_run(
    overrides: list[str], needles: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        prepare(compose_cfg(overrides))
    for needle in needles:
        assert needle in str(info.value), str(info.value)
