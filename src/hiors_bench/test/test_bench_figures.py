"""`hiors bench`: table/ratio bookkeeping (pure, hand-made numbers), the paper variants' switches, and two micro
figures for real at tiny size (their CSV columns and finite positive ratios; never their timings)."""

import csv
import math

import pytest

from hiors_bench.bench import SIZES, async_rows, median_row, recording_row, run_bench, weight_rows
from hiors_bench.bench_table import (
    bench_command,
    format_table,
    median,
    ratio,
    read_provenance,
    write_figure,
    write_provenance,
)
from hiors_bench.paper_bench import (
    FULL,
    SEEDED,
    SMALL,
    VARIANTS,
    learner_stats,
    online_stats,
    read_runs,
    report,
    retry_rows,
    run_overrides,
    spread,
    summarise,
    tts_rows,
    write_runs,
)
from hiors_bringup.graph import GraphArgs, robot_graph
from hiors_core.errors import ConfigError
from hiors_learner.params import EPISODE_FILTER, LEARNER


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


def test_recording_row_counts_distinct_observations():
    # 100 offered at 50 Hz, 100 frames written but only 80 distinct observations, in 2 s.
    row = recording_row("node 2x", 50.0, 100, 100, 80, 2.0, 1_000_000)
    assert row["achieved_hz"] == 40.0 and row["achieved_over_offered"] == 0.8 and row["fresh_fraction"] == 0.8
    assert row["achieved_over_sensor"] == 40.0 / 25.0 and row["MB_per_s"] == 40.0


def test_median_row_keeps_one_measurement_whole():
    rows = [{"r": 0.9, "hz": 9}, {"r": 0.5, "hz": 5}, {"r": 0.7, "hz": 7}]
    assert median_row(rows, "r") == {"r": 0.7, "hz": 7, "repeats": 3}
    assert median_row(rows[:2], "r")["hz"] == 5  # an even count: the lower middle one
    with pytest.raises(ValueError):
        median_row([], "r")


def test_async_rows_ratios_and_utd():
    def a(wall, steps, target, **kw):
        return {"wall_s": wall, "collect_wall_s": 5.0, "learner_steps": steps, "samples": 100, "target": target, **kw}

    acc = {
        "sync": a(10.0, 50, 0.0),
        "async": a(5.0, 40, 0.0),
        "sync_utd1": a(8.0, 100, 1.0),
        "async_utd1": a(6.0, 100, 1.0, online_over_target=0.75),
    }
    rows, columns, bar = async_rows(acc)
    by = {r["mode"]: r for r in rows}
    assert by["sync"]["steps_per_s"] == 5.0 and by["async"]["steps_per_s_over_sync"] == 8.0 / 5.0
    assert by["async"]["utd_achieved"] == 0.4 and by["sync"]["utd_target"] == ""  # gradient steps / samples
    assert by["async_utd1"]["utd_over_target"] == 1.0 and by["async_utd1"]["utd_online_over_target"] == 0.75
    assert by["async_utd1"]["wall_over_sync"] == 6.0 / 8.0 and by["sync_utd1"]["utd_online_over_target"] == ""
    assert set(columns) >= {"mode", "steps_per_s_over_sync", "utd_achieved", "utd_over_target"} and bar[0] == "mode"


def test_weight_rows_relative_to_serialisation():
    rows, columns, _ = weight_rows(2_000_000, 0.002, 0.010, 0.004, 3)
    assert [r["path"] for r in rows] == ["serialise only", "topic chunks", "shared disk"]
    assert [r["over_serialise"] for r in rows] == [1.0, 5.0, 2.0] and rows[0]["MB"] == 2.0
    assert columns == ["path", "MB", "versions", "median_ms", "over_serialise"]


def test_every_paper_switch_is_a_parameter_of_a_graph_node():
    specs = {s.name for s in robot_graph(GraphArgs(robot="tora_one"))}
    learner_keys, filter_keys = set(LEARNER), set(EPISODE_FILTER)  # what each node declares
    for name in VARIANTS:
        for node, key, _ in run_overrides(name, 1, "cuda", FULL.schedule):
            assert node in specs, f"variant {name}: no node {node!r}"
            if node == "learner":
                assert key in learner_keys, f"variant {name}: learner has no parameter {key!r}"
            if node == "episode_filter":
                assert key in filter_keys, f"variant {name}: episode_filter has no parameter {key!r}"


def test_paper_runs_differ_only_by_their_switch_and_seed():
    base = run_overrides("hiors", 3, common=SMALL.schedule)
    assert set(base) == {(n, "seed", 3) for n in SEEDED} | set(SMALL.schedule)
    for name, switch in VARIANTS.items():
        mine = run_overrides(name, 3, common=SMALL.schedule)
        assert mine == base + switch  # the switch last: it wins over anything shared
    with pytest.raises(ConfigError, match="unknown paper variant 'hirs'"):
        run_overrides("hirs", 0)
    assert SMALL.tasks == (("tora_one", "raise_hand"),)


def _result(variant, seed, success, curve, retry_curve=(0.0, 0.25)):
    """A run's result with its success vs time budget (10 s, 20 s) `curve` and pass@k `retry_curve`."""
    return {
        "task": "tora_one/raise_hand",
        "variant": variant,
        "seed": seed,
        "online_success": success,
        "human_share": 0.5,
        "eval_success_1": curve[0],
        "eval_success_T": curve[-1],
        "eval_success_R": retry_curve[-1] if retry_curve else float("nan"),
        "eval_progress_1": 0.5 + success / 2,
        "operator_samples": 30,
        "learner_steps": 100,
        "learner_utd": 1.0,
        "time_budgets": [10.0, 20.0][: len(curve)],
        "time_curve": list(curve),
        "retry_curve": list(retry_curve),
    }


def test_summary_mean_and_range_and_test_time_scaling():
    results = [_result("hiors", 0, 0.25, [0.0, 0.5]), _result("hiors", 1, 0.75, [0.5, 1.0])]
    results.append(_result("bc", 0, 0.0, [0.0, 0.0]))
    rows = summarise(results)
    assert [r["variant"] for r in rows] == ["hiors", "bc"]  # VARIANTS order
    assert (
        rows[0]["seeds"] == 2 and rows[0]["online_success"] == 0.5 and rows[0]["online_success_range"] == "0.25..0.75"
    )
    assert rows[0]["eval_success_T"] == 0.75 and rows[0]["eval_success_T_range"] == "0.50..1.00"
    assert rows[0]["eval_progress_1"] == 0.75 and rows[0]["eval_progress_1_range"] == "0.62..0.88"
    tts = tts_rows(results)  # the main test-time scaling curve: success vs time budget
    assert [(r["variant"], r["budget_s"], r["success"], r["range"]) for r in tts] == [
        ("hiors", 10.0, 0.25, "0.00..0.50"),
        ("hiors", 20.0, 0.75, "0.50..1.00"),
        ("bc", 10.0, 0.0, "0.00..0.00"),
        ("bc", 20.0, 0.0, "0.00..0.00"),
    ]
    assert [(r["variant"], r["tries"], r["success"]) for r in retry_rows(results)] == [
        ("hiors", 1, 0.0),
        ("hiors", 2, 0.25),
        ("bc", 1, 0.0),
        ("bc", 2, 0.25),
    ]
    results[1]["time_budgets"] = [10.0, 30.0]  # seeds evaluated at other budgets cannot be averaged
    with pytest.raises(ValueError, match="budget_s differ"):
        tts_rows(results)
    assert spread([1.0]) == (1.0, 1.0, 1.0)


def test_paper_runs_csv_round_trip_and_report(tmp_path):
    bc = _result("bc", 0, 0.0, [0.0, 0.0]) | {"online_success": float("nan"), "human_share": float("nan")}
    results = [_result("hiors", 0, 0.25, [0.0, 0.5]), bc]  # bc has no online episodes
    write_runs(tmp_path / "paper_runs.csv", results)
    back = read_runs(tmp_path / "paper_runs.csv")
    assert [r["time_curve"] for r in back] == [[0.0, 0.5], [0.0, 0.0]] and back[0]["seed"] == 0
    assert back[0]["time_budgets"] == [10.0, 20.0] and back[0]["retry_curve"] == [0.0, 0.25]
    files = report(tmp_path, back, "paper (test)")
    names = ["paper.csv", "paper.png", "paper_tts.csv", "paper_tts.png", "paper_retries.csv"]
    assert [f.name for f in files] == names and all(f.is_file() for f in files)
    rows = _read(tmp_path / "paper.csv")
    assert [r["variant"] for r in rows] == ["hiors", "bc"] and rows[0]["eval_success_T"] == "0.5"
    assert rows[1]["online_success"] == "nan" and float(rows[1]["operator_samples"]) == 30.0  # bc: no online episode
    tts = _read(tmp_path / "paper_tts.csv")
    assert list(tts[0]) == ["task", "variant", "budget_s", "success", "range"] and len(tts) == 4
    assert list(_read(tmp_path / "paper_retries.csv")[0]) == ["task", "variant", "tries", "success", "range"]
    # a run without the pass@k view: no paper_retries.csv
    assert "paper_retries.csv" not in [f.name for f in report(tmp_path, [_result("hiors", 0, 0.5, [0.5], ())], "t")]


def test_paper_runs_csv_from_before_the_time_curve_reads_as_pass_at_k(tmp_path):
    (tmp_path / "old.csv").write_text("task,variant,seed,eval_success_1,success_vs_budget\nt,hiors,0,0.5,0.5 1.0\n")
    (old,) = read_runs(tmp_path / "old.csv")
    assert old["retry_curve"] == [0.5, 1.0] and old["time_curve"] == [] and old["time_budgets"] == []


def test_paper_sizes_evaluate_at_the_time_limit_first():
    """eval_success_1 is the time curve's first point: success within the task's time limit (1x)."""
    for size in (SMALL, FULL):
        assert size.eval_budgets[0] == 1.0 and list(size.eval_budgets) == sorted(set(size.eval_budgets))


def test_run_folder_readers(tmp_path):
    (tmp_path / "learner").mkdir()
    (tmp_path / "episodes.csv").write_text(
        "index,success,human_share,interventions\n1,1,0.2,0\n2,0,0.4,1\n3,0,0.0,0\n4,0,0.1,2\n"
    )
    (tmp_path / "learner" / "metrics.csv").write_text("step,utd\n1,0.5\n7,0.9\n")
    assert online_stats(tmp_path / "episodes.csv") == (0.25, pytest.approx(0.175), 1)  # 1 failed unattended
    assert learner_stats(tmp_path / "learner" / "metrics.csv") == (7, 0.9)
    assert learner_stats(tmp_path / "missing.csv") == (0, 0.0)


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _positive(row, key):
    v = float(row[key])
    return math.isfinite(v) and v > 0


@pytest.mark.node
def test_micro_recording_figure_drives_the_recorder_node(tmp_path):
    assert run_bench("recording", tmp_path, size="tiny") == 0
    rows = _read(tmp_path / "recording.csv")
    assert [r["offered"] for r in rows] == ["node 1x", "node 8x", "writer only"]
    assert list(rows[0]) == [
        "offered",
        "offered_hz",
        "frames",
        "achieved_hz",
        "achieved_over_offered",
        "fresh_fraction",
        "achieved_over_sensor",
        "MB_per_s",
        "repeats",
    ]
    for r in rows:
        assert int(r["frames"]) == (20 if r["offered"] == "writer only" else SIZES["tiny"].recording_frames)
        assert all(_positive(r, k) for k in ("achieved_over_offered", "fresh_fraction", "achieved_over_sensor"))
        assert float(r["fresh_fraction"]) <= 1.0
    assert (tmp_path / "recording.png").stat().st_size > 0


def test_micro_async_figure(tmp_path):
    assert run_bench("async", tmp_path, size="tiny") == 0
    rows = {r["mode"]: r for r in _read(tmp_path / "async.csv")}
    assert list(rows) == ["sync", "async", "sync_utd1", "async_utd1", "sync_utd16", "async_utd16"]
    for r in rows.values():  # unpaced modes may get no step in on a loaded machine: >= 0 there
        assert _positive(r, "wall_over_sync") and int(r["samples"]) > 0 and float(r["utd_achieved"]) >= 0
    for mode in list(rows)[2:]:  # paced: trained up to the target, never beyond
        assert _positive(rows[mode], "utd_achieved") and 0 < float(rows[mode]["utd_over_target"]) <= 1.0


def test_chunk_gaps_overlapping_a_transfer():
    from hiors_bench.pi0_bench import chunk_gaps

    assert chunk_gaps([0.0, 1.0, 4.0, 5.0], 2.0, 3.0) == 3.0  # the gap that spans the transfer
    assert chunk_gaps([0.0, 1.0, 1.5, 5.0], 1.2, 1.4) == 0.5  # not the one after it ended
    assert chunk_gaps([0.0, 1.0], 2.0, 3.0) == 2.0  # no chunk since: the wait until the end
    assert chunk_gaps([], 2.0, 3.0) == 1.0


def test_chunk_stalls_and_latencies_around_a_transfer():
    from hiors_bench.pi0_bench import chunk_stalls, split_latencies

    chunks = [(1.0, 1.0), (2.0, 1.0), (4.5, 1.5), (5.5, 1.0)]  # (arrival, its inference latency)
    assert chunk_stalls(chunks, 2.5, 3.0) == 1.0  # 2.5 s between chunks, 1.5 s of it inferring
    assert chunk_stalls(chunks, 4.8, 5.0) == 0.0  # back to back
    assert chunk_stalls(chunks, 9.0, 9.5) == 0.0
    quiet, busy = split_latencies(chunks, [(2.5, 3.5)])
    assert busy == [1.5] and quiet == [1.0, 1.0, 1.0]


def test_pi0_sync_rows_pair_each_transfer_with_its_save_file():
    from hiors_bench.pi0_bench import sync_rows

    def transfer(nice, at, ser_s, total_s):
        return {
            "nice": nice, "serialise_s": ser_s, "serialise_peak": 3e9, "serialise_at": (at, at + ser_s),
            "t0": at + ser_s, "t_written": at + ser_s + 1.0, "t_announced": at + ser_s + 1.0,
            "t1": at + ser_s + total_s, "peak": 4e9,
            "load_s": total_s - 1.5, "swap_wait_s": 0.5,
        }  # fmt: skip

    transfers = [transfer(0, 100.0, 2.0, 6.0), transfer(10, 200.0, 4.0, 8.0)]
    # one inference a second; during the nice-0 transfer's node part (103-108) two took 3 s and 2 s, and the
    # actor stalled 0.5 s before the first of them
    chunks = [(float(t), 1.0) for t in range(90, 105)] + [(107.5, 3.0), (109.5, 2.0)]
    chunks += [(float(t), 1.0) for t in range(110, 215)]
    rows = {r["path"]: r for r in sync_rows(2e9, 1e9, transfers, chunks, "note")}
    assert rows["serialise only (save_file)"]["median_s"] == 3.0
    nice0, nice10 = rows["shared disk, loader nice 0"], rows["shared disk, loader nice 10"]
    assert nice0["over_serialise"] == 3.0 and nice10["over_serialise"] == 2.0  # each over its own save_file
    assert nice0["over_serialise_without_wait"] == 2.75  # (6 s - 0.5 s waiting for the chunk in progress) / 2 s
    assert nice0["write_s"] == 1.0 and nice0["load_s"] == 4.5 and nice0["peak_own_over_model"] == 1.5
    assert nice0["longest_chunk_gap_s"] == 3.5 and nice0["gap_over_inference"] == 3.5
    assert nice0["longest_stall_s"] == 0.5 and nice0["inference_slowdown"] == 2.0
    assert nice10["longest_chunk_gap_s"] == 1.0 and nice10["longest_stall_s"] == 0.0


def test_pi0_bench_runs_its_paths_at_the_tiny_size(tmp_path):
    """`hiors bench pi0` end to end at the tiny preset: build, save, load, a chunk through the node, and weight
    sync over the shared-disk path (swapped in while the node infers) beside serialisation."""
    from hiors_bench.pi0_bench import run_pi0

    assert run_pi0(tmp_path, "test", versions=1, chunks=1, preset="tiny") == 0
    load = _read(tmp_path / "pi0_load.csv")
    assert [r["step"].split(" ")[0] for r in load] == ["build", "save", "load"]
    assert all(_positive(r, "seconds") and _positive(r, "model_GB") for r in load)
    (chunk,) = _read(tmp_path / "pi0_chunk.csv")
    assert chunk["cameras"] == "2" and _positive(chunk, "graph_s")
    sync = {r["path"]: r for r in _read(tmp_path / "pi0_weight_sync.csv")}
    assert list(sync) == [
        "serialise only (save_file)",
        "shared disk, loader nice 0",
        "shared disk, loader nice 10",
        "topic chunks",
    ]
    assert sync["serialise only (save_file)"]["over_serialise"] == "1.0"
    for nice in (0, 10):
        row = sync[f"shared disk, loader nice {nice}"]
        assert row["versions"] == "1" and _positive(row, "over_serialise") and _positive(row, "longest_chunk_gap_s")
        assert float(row["longest_stall_s"]) >= 0
    assert sync["topic chunks"]["median_s"] == ""
    assert "command: test" in (tmp_path / "pi0.run.txt").read_text()


def test_unknown_names_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown benchmark 'plumbin'"):
        run_bench("plumbin", tmp_path)
    with pytest.raises(ConfigError, match="unknown bench size 'huge'"):
        run_bench("sim", tmp_path, size="huge")
    with pytest.raises(ConfigError, match="for `hiors bench paper`"):
        run_bench("sim", tmp_path, seeds=(0, 1))
    with pytest.raises(ConfigError, match="unknown paper variant 'nope'"):
        run_bench("paper", tmp_path, variants=("nope",))


def test_results_doc_tables_and_commands_come_from_the_run(tmp_path):
    from hiors_bench.results_doc import render

    bench = tmp_path / "bench"
    write_figure(bench, "sim", [{"robot": "tora_one", "loop_rtf": 7.95}], ["robot", "loop_rtf"], ("robot", "loop_rtf"))
    command = bench_command("all", "runs/b", False, "small")
    assert command == "hiors bench all --run-dir runs/b"
    write_provenance(bench, "sim", command, 12.3, 1.5)
    assert read_provenance(bench / "sim.run.txt")["command"] == command and read_provenance(tmp_path / "x") == {}
    text = render(bench, tmp_path / "docs")
    assert "| robot | loop_rtf |" in text and "| tora_one | 7.95 |" in text
    assert f"`{command}`" in text and "12 s on" in text and "1.50 before" in text
    assert f"```\n{command}\npython -m hiors_bench.results_doc {bench} {tmp_path / 'docs'}\n```" in text
    assert (tmp_path / "docs" / "results" / "sim.png").is_file() and "plumbing" not in text
    paper = bench_command("paper", "runs/p", True, "full", ("hiors", "bc"), (0, 1))
    assert paper == "hiors bench paper --run-dir runs/p --full --variants hiors,bc --seeds 0,1"


def test_results_doc_shows_the_time_curve_as_the_test_time_scaling_figure(tmp_path):
    from hiors_bench.results_doc import render

    bench = tmp_path / "bench"
    results = [_result("hiors", 0, 0.25, [0.0, 0.5]), _result("bc", 0, 0.0, [0.0, 0.0])]
    report(bench, results, "paper (test)")
    write_provenance(bench, "paper", "hiors bench paper --run-dir runs/p", 60.0, 1.0)
    text = render(bench, tmp_path / "docs")
    tts = text.index("## Test-time scaling: success vs time budget within one attempt")
    retries = text.index("## Success vs tries over resets (pass@k, a second view)")
    assert tts < retries and "| task | variant | budget_s | success | range |" in text[tts:retries]
    assert "| tora_one/raise_hand | hiors | 20 | 0.5 | 0.50..0.50 |" in text[tts:retries]
    assert "![paper_tts](results/paper_tts.png)" in text and (tmp_path / "docs/results/paper_tts.png").is_file()
    assert text[retries:].count("`hiors bench paper --run-dir runs/p`") == 1  # the paper run's provenance


def test_earlier_paper_runs_are_moved_aside_not_resumed(tmp_path):
    from hiors_bench.paper_bench import keep_previous_runs

    assert keep_previous_runs(tmp_path / "runs") is None
    (tmp_path / "runs" / "tora_one-raise_hand-hiors-seed0").mkdir(parents=True)
    (tmp_path / "runs" / "tora_one-raise_hand-hiors-seed0" / "episodes.csv").write_text("index\n1\n")
    first = keep_previous_runs(tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    second = keep_previous_runs(tmp_path / "runs")
    assert not (tmp_path / "runs").exists() and first != second and first.parent == second.parent == tmp_path
    assert (first / "tora_one-raise_hand-hiors-seed0" / "episodes.csv").read_text() == "index\n1\n"
