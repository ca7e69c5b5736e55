"""`hiors export --lerobot`: accepted episodes of a run become a LeRobot v2.0 dataset that reads back intact."""

import csv
import json

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from hiors_bringup.export import export_lerobot
from hiors_bringup.up import EPISODE_FIELDS
from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import HiorsError
from hiors_testing.episodes import make_episode


@pytest.fixture
def run(tmp_path):
    """A run folder as `hiors up` leaves it: an episode log and episodes.csv (the monitor's columns) with the
    verdicts. The rejected episode has a success reward: only the verdict decides."""
    log = EpisodeLog(tmp_path / "episodes")
    verdicts = {"ep-000000": 1, "ep-000001": 0, "ep-000002": 1}
    for k, eid in enumerate(verdicts):
        log.write_episode(make_episode(eid, steps=12 + k, seed=k, reward=1.0))
    with open(tmp_path / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EPISODE_FIELDS, restval="0")
        w.writeheader()
        w.writerows(
            {"index": k + 1, "episode_id": eid, "accepted": acc} for k, (eid, acc) in enumerate(verdicts.items())
        )
    return tmp_path


def test_accepted_episodes_read_back_frame_for_frame(run):
    out = export_lerobot(run, run / "ds")
    info = json.loads((out / "meta" / "info.json").read_text())
    episodes = [json.loads(line) for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert info["codebase_version"] == "v2.0" and info["total_episodes"] == 2
    assert [e["hiors_episode_id"] for e in episodes] == ["ep-000000", "ep-000002"]  # the rejected one is left out
    log = EpisodeLog(run / "episodes")
    index = 0
    for e in episodes:
        src = log.read(e["hiors_episode_id"])
        table = pq.read_table(out / "data" / "chunk-000" / f"episode_{e['episode_index']:06d}.parquet").to_pydict()
        assert len(table["index"]) == e["length"] == len(src.frames)
        assert table["index"] == list(range(index, index + e["length"]))
        index += e["length"]
        by_step = {x.step: x for x in src.executed}
        for k, fr in enumerate(src.frames):
            assert np.allclose(table["observation.state"][k], fr.state)
            assert np.allclose(table["action"][k], by_step[fr.step].action)
            assert table["authority"][k] == by_step[fr.step].authority
            png = np.frombuffer(table["observation.images.top"][k]["bytes"], np.uint8)
            assert np.array_equal(cv2.imdecode(png, cv2.IMREAD_COLOR)[..., ::-1], fr.images["top"])
        assert table["timestamp"][0] == 0.0 and table["timestamp"] == sorted(table["timestamp"])
    assert info["total_frames"] == index
    feats = info["features"]
    assert feats["observation.state"]["shape"] == [3] and feats["action"]["shape"] == [8]
    assert feats["observation.images.top"]["dtype"] == "image" and feats["observation.images.top"]["shape"] == [
        16,
        16,
        3,
    ]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert feats[key]["shape"] == [1]
    tasks = [json.loads(line) for line in (out / "meta" / "tasks.jsonl").read_text().splitlines()]
    assert tasks == [{"task_index": 0, "task": "raise your left hand"}] and info["total_tasks"] == 1
    stats = json.loads((out / "meta" / "stats.json").read_text())
    assert len(stats["action"]["mean"]) == 8 and len(stats["observation.state"]["std"]) == 3
    assert sorted(p.name for p in (out / "data" / "chunk-000").iterdir()) == [
        "episode_000000.parquet",
        "episode_000001.parquet",
    ]
    schema = pq.read_schema(out / "data" / "chunk-000" / "episode_000000.parquet")
    assert set(schema.names) == set(feats) and str(schema.field("timestamp").type) == "float"


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
