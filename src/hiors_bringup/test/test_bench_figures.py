"""`hiors bench`: table/ratio bookkeeping (pure), the paper variants' switches, and one micro figure for real."""

import csv

import pytest

from hiors_bringup.bench_table import format_table, median, ratio, write_figure
from hiors_bringup.graph import GraphArgs, robot_graph
from hiors_bringup.paper_bench import VARIANTS, spread, summarise
from hiors_core.errors import ConfigError


def test_ratio_median_and_table():
    assert median([3.0, 1.0, 2.0]) == 2.0 and ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError):
        ratio(1.0, 0.0)
    with pytest.raises(ValueError):
        median([])
    text = format_table([{"a": "x", "b": 1.23456}], ["a", "b"])
    assert text.splitlines()[2].split() == ["x", "1.235"]


def test_figure_files(tmp_path):
    files = write_figure(tmp_path, "demo", [{"k": "a", "v": 1.5}, {"k": "b", "v": 0.5}], ["k", "v"], ("k", "v"))
    assert [f.name for f in files] == ["demo.csv", "demo.png"] and files[1].stat().st_size > 0
    with open(files[0]) as f:
        assert [r["v"] for r in csv.DictReader(f)] == ["1.5", "0.5"]


def test_every_paper_switch_names_a_node_of_the_graph():
    specs = {s.name for s in robot_graph(GraphArgs(robot="tora_one"))}
    for name, overrides in VARIANTS.items():
        for node, key, _ in overrides:
            assert node in specs, f"variant {name}: no node {node!r}"
            assert key, name


def test_summary_mean_and_range_per_variant():
    results = [
        {
            "variant": "hiors",
            "online_success": s,
            "human_share": 0.5,
            "eval_success_1": 0.0,
            "eval_success_R": s,
            "learner_steps": 100,
        }
        for s in (0.25, 0.75)
    ]
    (row,) = summarise(results)
    assert row["seeds"] == 2 and row["online_success"] == 0.5 and row["online_success_range"] == "0.25..0.75"
    assert spread([1.0]) == (1.0, 1.0, 1.0)


def test_micro_recording_figure(tmp_path):
    from hiors_bringup.bench import run_bench

    assert run_bench("recording", tmp_path) == 0
    with open(tmp_path / "recording.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert float(row["throughput_over_rate"]) > 0 and float(row["frames_per_s"]) > 0


def test_unknown_figure_is_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown benchmark 'plumbin'"):
        run_bench_unknown(tmp_path)


def run_bench_unknown(tmp_path):
    from hiors_bringup.bench import run_bench

    return run_bench("plumbin", tmp_path)


def test_results_doc_tables_come_from_the_csvs(tmp_path):
    from hiors_bringup.results_doc import render

    bench = tmp_path / "bench"
    write_figure(bench, "sim", [{"robot": "tora_one", "loop_rtf": 7.95}], ["robot", "loop_rtf"], ("robot", "loop_rtf"))
    text = render(bench, tmp_path / "docs")
    assert "| robot | loop_rtf |" in text and "| tora_one | 7.95 |" in text
    assert (tmp_path / "docs" / "results" / "sim.png").is_file() and "plumbing" not in text
