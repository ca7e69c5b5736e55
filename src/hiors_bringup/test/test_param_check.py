"""Parameter values are checked before anything runs: `hiors up --set` and config/<robot>.yaml against every node's
table (types, ranges, choices, names), one line per problem naming the node, the parameter, the value and what is
allowed. The tables are the ones the nodes declare from (hiors_core.params)."""

import pytest

from hiors_bringup.cli import main, parse_set
from hiors_bringup.graph import PARAM_TABLES, GraphArgs, param_table, robot_graph
from hiors_bringup.up import UpOptions, _apply_overrides
from hiors_core.errors import ConfigError, HiorsError

# Values that a node would run with, or crash on late: `hiors up --set` refuses each before anything starts.
BAD_SETS = [
    "arbiter.teleop_timeout_s=.inf",
    "arbiter.teleop_timeout_s=-1.0",
    "arbiter.policy_timeout_steps=-1",
    "arbiter.k_auto=1000000",
    "learner.utd_target=-1",
    "learner.utd_target=.nan",
    "learner.threshold_initial=.nan",
    "recorder.horizon=0",
    "policy.num_steps=-3",
    "learner.batch_size=0",
    "arbiter.control_rate_hz=-50.0",
    "learner.lr=.nan",
    "learner.batch_size=eight",  # a wrong type
    "arbiter.sampling_mode=duel",
]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    return robot_graph(GraphArgs(robot="tora_one", sim=True, run_dir=str(tmp_path_factory.mktemp("run"))))


@pytest.mark.parametrize("text", BAD_SETS)
def test_each_bad_set_value_is_refused_in_one_line_naming_node_parameter_value_and_range(specs, text, tmp_path):
    node, param, value = parse_set(text)
    with pytest.raises(HiorsError) as err:
        _apply_overrides(specs, UpOptions(robot="tora_one", overrides=((node, param, value),)), tmp_path)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"node {node}, parameter {param}: {value!r}")
    assert param_table(node)[param].allowed() in line and line.endswith("(from --set)")


def test_a_misspelt_parameter_and_an_unknown_node_name_the_closest_known_name(specs, tmp_path):
    def refuse(*override):
        with pytest.raises(HiorsError) as err:
            _apply_overrides(specs, UpOptions(robot="tora_one", overrides=(override,)), tmp_path)
        return str(err.value)

    assert refuse("learner", "utd_targt", 8) == (
        "node learner has no parameter 'utd_targt' (did you mean 'utd_target'?) (from --set)"
    )
    assert refuse("arbitr", "k_auto", 8).startswith(
        "--set arbitr.k_auto: no node 'arbitr' in the tora_one graph (did you mean 'arbiter'?)"
    )


def test_every_problem_of_several_sets_is_named(specs, tmp_path):
    overrides = tuple(parse_set(t) for t in ("learner.lr=.nan", "arbiter.k_auto=0", "learner.batch_size=0"))
    with pytest.raises(HiorsError) as err:
        _apply_overrides(specs, UpOptions(robot="tora_one", overrides=overrides), tmp_path)
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and {ln.split(",")[0] for ln in lines} == {"node learner", "node arbiter"}


def test_good_sets_go_through_widened_to_the_declared_type(specs, tmp_path):
    overrides = tuple(parse_set(t) for t in ("learner.utd_target=8", "learner.lr=1", "arbiter.k_auto=8"))
    out = {s.name: s.parameters for s in _apply_overrides(specs, UpOptions("tora_one", overrides=overrides), tmp_path)}
    assert out["learner"]["utd_target"] == 8.0 and type(out["learner"]["utd_target"]) is float
    assert type(out["learner"]["lr"]) is float and out["arbiter"]["k_auto"] == 8


def test_hiors_up_refuses_a_bad_set_before_anything_runs(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["up", "tora_one", "--sim", "--run-dir", str(run), "--set", "learner.utd_target=-1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        "hiors up: error: node learner, parameter utd_target: -1 is not allowed; expected a float in [0, 10000] "
        "(from --set)"
    ]
    assert not run.exists()  # no demonstrations recorded, no node started


@pytest.mark.parametrize(
    "section, words",
    [
        ("arbiter:\n  ros__parameters:\n    teleop_timeout_s: .inf\n", "node arbiter, parameter teleop_timeout_s: inf"),
        ("learner:\n  ros__parameters:\n    utd_targt: 8.0\n", "did you mean 'utd_target'?"),
        ("arbitr:\n  ros__parameters:\n    k_auto: 8\n", "no node 'arbitr' in a hiors graph (did you mean 'arbiter'?)"),
    ],
)
def test_a_config_file_value_outside_its_table_stops_the_graph_description(tmp_path, section, words):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(section)
    with pytest.raises(ConfigError) as err:
        robot_graph(GraphArgs(robot="tora_one", sim=True, config_file=str(cfg), run_dir=str(tmp_path)))
    assert words in str(err.value) and str(cfg) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("robot", ["tora_one", "xtrainer"])
@pytest.mark.parametrize("sim", [True, False])
def test_every_graph_node_has_a_table_and_every_parameter_a_description(robot, sim):
    for spec in robot_graph(GraphArgs(robot=robot, sim=sim, use_sim_time=sim)):
        table = param_table(spec.name)
        assert table and all(p.description for p in table.values()), spec.name
    assert all(param_table(name) for name in PARAM_TABLES)
