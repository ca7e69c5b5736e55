"""`hiors export --lerobot`: accepted episodes of a run become a LeRobot v2.1 dataset that lerobot's loader rules
accept (`lerobot_v2_rules`), one row per control step, and that reads back command for command."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hiors_bringup.export import export_lerobot
from hiors_bringup.up import EPISODE_FIELDS
from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import HiorsError
from hiors_core.schema import AUTHORITY_HUMAN, AUTHORITY_POLICY
from hiors_testing.episodes import make_episode
from hiors_testing.lerobot_v2 import check_lerobot_v2


def write_run(run: Path, episodes, verdicts: dict[str, int]) -> Path:
    log = EpisodeLog(run / "episodes")
    for ep in episodes:
        log.write_episode(ep)
    with open(run / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EPISODE_FIELDS, restval="0")
        w.writeheader()
        w.writerows(
            {"index": k + 1, "episode_id": eid, "accepted": acc} for k, (eid, acc) in enumerate(verdicts.items())
        )
    return run


@pytest.fixture
def run(tmp_path):
    """A run folder as `hiors up` leaves it: an episode log and episodes.csv (the monitor's columns) with the
    verdicts. The rejected episode has a success reward: only the verdict decides."""
    verdicts = {"ep-000000": 1, "ep-000001": 0, "ep-000002": 1}
    episodes = [make_episode(eid, steps=12 + k, seed=k, reward=1.0) for k, eid in enumerate(verdicts)]
    return write_run(tmp_path, episodes, verdicts)


def read_episode(out: Path, index: int) -> dict:
    return pq.read_table(out / "data" / "chunk-000" / f"episode_{index:06d}.parquet").to_pydict()


def test_accepted_episodes_export_every_control_step_and_pass_lerobots_rules(run):
    out = export_lerobot(run, run / "ds")
    info = check_lerobot_v2(out)
    episodes = [json.loads(line) for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert info["codebase_version"] == "v2.1" and info["total_episodes"] == 2 and info["fps"] == 25
    assert [e["hiors_episode_id"] for e in episodes] == ["ep-000000", "ep-000002"]  # the rejected one is left out
    log = EpisodeLog(run / "episodes")
    for e in episodes:
        src = log.read(e["hiors_episode_id"])
        table = read_episode(out, e["episode_index"])
        frames = {f.step: f for f in src.frames}
        assert len(table["index"]) == e["length"] == len(src.executed)  # every command, the first one sampled
        assert table["timestamp"] == pytest.approx([k / 25 for k in range(e["length"])], abs=1e-6)
        latest = None
        for k, cmd in enumerate(src.executed):
            latest = frames.get(cmd.step, latest)
            assert np.allclose(table["action"][k], cmd.action) and table["authority"][k] == cmd.authority
            assert table["sampled"][k] == (cmd.step in frames)
            # the observation is the latest one recorded at or before this step
            assert np.allclose(table["observation.state"][k], latest.state)
            png = np.frombuffer(table["observation.images.top"][k]["bytes"], np.uint8)
            assert np.array_equal(cv2.imdecode(png, cv2.IMREAD_COLOR)[..., ::-1], latest.images["top"])
        # both of Hi-ORS's rates are kept: every human step is a sample, a policy step every 3rd (the factory's)
        human = [s for s, a in zip(table["sampled"], table["authority"], strict=True) if a == AUTHORITY_HUMAN]
        policy = [s for s, a in zip(table["sampled"], table["authority"], strict=True) if a == AUTHORITY_POLICY]
        assert human and all(human)
        assert 0 < sum(policy) < len(policy)
        assert sum(table["sampled"]) == len(src.frames)
    feats = info["features"]
    assert feats["observation.state"]["shape"] == [3] and feats["action"]["shape"] == [8]
    assert feats["observation.images.top"] == {
        "dtype": "image",
        "shape": [16, 16, 3],
        "names": ["height", "width", "channels"],
    }
    assert feats["sampled"]["dtype"] == "bool" and feats["authority"]["dtype"] == "int64"
    tasks = [json.loads(line) for line in (out / "meta" / "tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": "raise your left hand"}] and info["total_tasks"] == 1
    stats = [json.loads(line) for line in (out / "meta" / "episodes_stats.jsonl").read_text().splitlines()]
    assert stats[0]["stats"]["action"]["count"] == [episodes[0]["length"]]
    assert np.asarray(stats[0]["stats"]["observation.images.top"]["mean"]).shape == (3, 1, 1)


def set_length(out: Path, n: int) -> None:
    """A one-episode dataset's length, in episodes.jsonl and info.json."""
    entry = json.loads((out / "meta" / "episodes.jsonl").read_text())
    (out / "meta" / "episodes.jsonl").write_text(json.dumps({**entry, "length": n}) + "\n")
    info = json.loads((out / "meta" / "info.json").read_text())
    (out / "meta" / "info.json").write_text(json.dumps({**info, "total_frames": n}))


def test_the_rules_reject_one_row_per_recorded_observation(tmp_path):
    """The rules can fail: the recorded observations at their own stamps (Hi-ORS's two rates, one row per frame)
    are rejected at lerobot's tolerance, and so is an index that does not follow the rows."""
    ep = make_episode("ep-000000", steps=12)
    out = export_lerobot(write_run(tmp_path, [ep], {"ep-000000": 1}), tmp_path / "ds")
    check_lerobot_v2(out)
    path = out / "data" / "chunk-000" / "episode_000000.parquet"
    table = pq.read_table(path)
    per_frame = table.filter(table["sampled"])
    n = per_frame.num_rows
    stamps = pa.array([(f.stamp_ns - ep.frames[0].stamp_ns) / 1e9 for f in ep.frames], pa.float32())
    for name, col in (("timestamp", stamps), ("frame_index", pa.array(range(n))), ("index", pa.array(range(n)))):
        per_frame = per_frame.set_column(per_frame.schema.get_field_index(name), name, col)
    pq.write_table(per_frame, path)
    set_length(out, n)
    with pytest.raises(AssertionError, match="timestamp steps are not 1/fps"):
        check_lerobot_v2(out)
    skipping = pa.array([0, *range(2, table.num_rows + 1)])
    pq.write_table(table.set_column(table.schema.get_field_index("index"), "index", skipping), path)
    set_length(out, table.num_rows)
    with pytest.raises(AssertionError, match="index is not contiguous"):
        check_lerobot_v2(out)


def test_rows_start_at_the_first_recorded_observation(tmp_path):
    ep = make_episode("ep-000000", steps=12)
    ep.frames = [f for f in ep.frames if f.step != 0]  # the first observation came with step 3's command
    out = export_lerobot(write_run(tmp_path, [ep], {"ep-000000": 1}), tmp_path / "ds")
    check_lerobot_v2(out)
    table = read_episode(out, 0)
    assert table["frame_index"] == list(range(9))
    assert np.allclose(table["action"], [e.action for e in ep.executed[3:]])


def test_an_episode_without_a_recorded_observation_is_left_out_and_named(tmp_path):
    blind = make_episode("ep-000001", steps=6)
    blind.frames = []
    run = write_run(tmp_path, [make_episode("ep-000000"), blind], {"ep-000000": 1, "ep-000001": 1})
    said = []
    out = export_lerobot(run, tmp_path / "ds", say=said.append)
    assert check_lerobot_v2(out)["total_episodes"] == 1
    assert said == ["ep-000001: left out, no observation was recorded before its last command"]


def test_commands_that_skip_a_control_step_are_named(tmp_path):
    ep = make_episode("ep-000000", steps=12)
    ep.executed = [e for e in ep.executed if e.step != 5]
    with pytest.raises(HiorsError, match="ep-000000: executed commands go from step 4 to step 6"):
        export_lerobot(write_run(tmp_path, [ep], {"ep-000000": 1}), tmp_path / "ds")


def test_all_episodes_on_request_and_never_over_an_existing_dataset(run):
    out = export_lerobot(run, run / "ds", accepted_only=False)
    assert json.loads((out / "meta" / "info.json").read_text())["total_episodes"] == 3
    assert len((out / "meta" / "episodes.jsonl").read_text().splitlines()) == 3
    with pytest.raises(HiorsError, match="not overwriting"):
        export_lerobot(run, run / "ds")


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(HiorsError, match="not a `hiors up` run folder"):
        export_lerobot(tmp_path)
    with pytest.raises(HiorsError, match="not a `hiors up` run folder"):
        export_lerobot(tmp_path / "missing")


def test_a_run_without_accepted_episodes_exports_nothing(run):
    with open(run / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EPISODE_FIELDS, restval="0")
        w.writeheader()
        w.writerow({"index": 1, "episode_id": "ep-000001", "accepted": 0})
    with pytest.raises(HiorsError, match="no accepted episodes"):
        export_lerobot(run, run / "ds")
    assert not (run / "ds").exists()
