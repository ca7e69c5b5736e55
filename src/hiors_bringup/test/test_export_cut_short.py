"""`hiors export --lerobot`: an episode cut short by the end of the run (or left unlabelled by an older recorder)
is never exported as a complete one, with or without --all."""

import csv
import json

from hiors_bringup.export import export_lerobot
from hiors_bringup.up import EPISODE_FIELDS
from hiors_core.episode_log import EpisodeLog
from hiors_testing.episodes import make_episode
from hiors_testing.lerobot_v2 import check_lerobot_v2


def test_cut_short_and_unlabelled_episodes_are_never_exported(tmp_path):
    log = EpisodeLog(tmp_path / "episodes")
    log.write_episode(make_episode("ep-000000", steps=12, reward=1.0))
    log.write_episode(make_episode("ep-000001", steps=12, reward=None))  # an older run's unlabelled last episode
    cut = make_episode("ep-000002", steps=6)
    w = log.open_writer(cut.meta)
    for e in cut.executed:
        w.write_executed(e)
    w.close_cut_short("the run ended while it was being recorded (6 steps, no label)")
    log.open_writer(make_episode("ep-000003").meta).close_cut_short("the run ended while it was being recorded")
    with open(tmp_path / "episodes.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EPISODE_FIELDS, restval="0")
        w.writeheader()
        w.writerows({"index": k + 1, "episode_id": f"ep-00000{k}", "accepted": 1} for k in range(4))
    for accepted_only in (True, False):
        out = export_lerobot(tmp_path, tmp_path / f"ds-{accepted_only}", accepted_only=accepted_only)
        rows = [json.loads(line) for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()]
        assert [r["hiors_episode_id"] for r in rows] == ["ep-000000"]
        assert check_lerobot_v2(out)["total_episodes"] == 1
