"""`hiors export --lerobot <run>`: a run's accepted episodes as a LeRobot v2.0 dataset (no lerobot dependency).

Layout: `meta/info.json`, `meta/episodes.jsonl`, `meta/tasks.jsonl`, `meta/stats.json` (mean/std/min/max of
`observation.state` and `action`; none for images), `data/chunk-000/episode_NNNNNN.parquet`.
One parquet row per recorded frame: `observation.state`, `action` (the command executed at that frame's step),
`observation.images.<camera>` as PNG (the `image` feature: a struct of bytes and path, so no video encoder is
needed), `timestamp` (s since the episode's first frame), the usual indices, and `authority` (0 hold,
1 policy, 2 human). Hi-ORS records at two rates, so timestamps are irregular; `fps` is the control rate.
Accepted = the episode filter's verdict at the time (`accepted` in the run's `episodes.csv`); `--all` takes every
labelled, complete episode, never one cut short by the end of the run. Every recorded frame of an episode is
exported (the learner's no-op filter is not applied).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import HiorsError
from hiors_core.schema import EpisodeData

CHUNK = "chunk-000"


def accepted_ids(run: Path) -> list[str]:
    with open(run / "episodes.csv", newline="") as f:
        return [r["episode_id"] for r in csv.DictReader(f) if r["accepted"] == "1"]


def _png(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))  # RGB -> BGR for OpenCV
    if not ok:
        raise HiorsError("PNG encoding failed")
    return buf.tobytes()


def _rows(ep: EpisodeData, episode_index: int, task_index: int, first_index: int) -> dict[str, list]:
    by_step = {e.step: e for e in ep.executed}
    cols: dict[str, list] = {
        "observation.state": [],
        "action": [],
        **{f"observation.images.{c}": [] for c in ep.meta.camera_names},
        "timestamp": [],
        "frame_index": [],
        "episode_index": [],
        "index": [],
        "task_index": [],
        "authority": [],
    }
    frames = [f for f in ep.frames if f.step in by_step]  # a frame after the last command has no action
    t0 = frames[0].stamp_ns if frames else 0
    for k, fr in enumerate(frames):
        e = by_step[fr.step]
        cols["observation.state"].append(np.asarray(fr.state, np.float32).tolist())
        cols["action"].append(np.asarray(e.action, np.float32).tolist())
        for c in ep.meta.camera_names:
            cols[f"observation.images.{c}"].append({"bytes": _png(fr.images[c]), "path": None})
        cols["timestamp"].append((fr.stamp_ns - t0) / 1e9)
        cols["frame_index"].append(k)
        cols["episode_index"].append(episode_index)
        cols["index"].append(first_index + k)
        cols["task_index"].append(task_index)
        cols["authority"].append(int(e.authority))
    return cols


def _instruction(ep: EpisodeData) -> str:
    """What the policy was told: the frames carry it even when the episode started before the first observation."""
    return next((f.instruction for f in ep.frames if f.instruction), ep.meta.instruction)


def _state_names(ep: EpisodeData) -> list[str]:
    return list(next((f.state_names for f in ep.frames if f.state_names), ep.meta.state_names))


def _schema(ep: EpisodeData):
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # the `image` feature's storage
    fields = [("observation.state", pa.list_(pa.float32())), ("action", pa.list_(pa.float32()))]
    fields += [(f"observation.images.{c}", image) for c in ep.meta.camera_names]
    fields += [("timestamp", pa.float32())]
    fields += [(n, pa.int64()) for n in ("frame_index", "episode_index", "index", "task_index", "authority")]
    return pa.schema(fields)


def _features(ep: EpisodeData) -> dict:
    h, w = next(iter(ep.frames[0].images.values())).shape[:2] if ep.frames else (0, 0)
    feats = {
        "observation.state": {
            "dtype": "float32",
            "shape": [len(_state_names(ep))],
            "names": _state_names(ep),
        },
        "action": {"dtype": "float32", "shape": [len(ep.meta.action_names)], "names": list(ep.meta.action_names)},
    }
    for c in ep.meta.camera_names:
        feats[f"observation.images.{c}"] = {
            "dtype": "image",
            "shape": [h, w, 3],
            "names": ["height", "width", "channel"],
        }
    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64")):
        feats[name] = {"dtype": dtype, "shape": [1], "names": None}
    for name in ("index", "task_index", "authority"):
        feats[name] = {"dtype": "int64", "shape": [1], "names": None}
    return feats


def export_lerobot(run: str | Path, out: str | Path = "", accepted_only: bool = True) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    run = Path(run)
    if not (run / "episodes").is_dir() or not (run / "episodes.csv").is_file():
        raise HiorsError(f"{run} is not a `hiors up` run folder (needs episodes/ and episodes.csv)")
    out = Path(out) if out else run / "lerobot"
    if out.exists() and any(out.iterdir()):
        raise HiorsError(f"{out} exists and is not empty; not overwriting it")
    log = EpisodeLog(run / "episodes")
    # Only episodes closed with a label: one cut short by the end of the run (incomplete) or left unlabelled by an
    # older recorder (complete, no reward) is never exported, even when its id made it into episodes.csv.
    finished = set(log.trainable_ids())
    ids = [i for i in accepted_ids(run) if i in finished] if accepted_only else sorted(finished)
    if not ids:
        raise HiorsError(f"{run}: no {'accepted ' if accepted_only else ''}episodes to export")
    episodes = [log.read(i) for i in sorted(set(ids))]
    first = episodes[0].meta
    for ep in episodes:
        if (ep.meta.robot, ep.meta.action_names, ep.meta.camera_names) != (
            first.robot,
            first.action_names,
            first.camera_names,
        ):
            raise HiorsError(f"{ep.meta.episode_id}: robot, actions or cameras differ from {first.episode_id}")
    (out / "meta").mkdir(parents=True, exist_ok=True)
    (out / "data" / CHUNK).mkdir(parents=True, exist_ok=True)
    tasks: dict[str, int] = {}
    total = 0
    with open(out / "meta" / "episodes.jsonl", "w") as ej:
        for i, ep in enumerate(episodes):
            task_index = tasks.setdefault(_instruction(ep), len(tasks))
            cols = _rows(ep, i, task_index, total)
            pq.write_table(pa.table(cols, schema=_schema(ep)), out / "data" / CHUNK / f"episode_{i:06d}.parquet")
            n = len(cols["index"])
            total += n
            ej.write(
                json.dumps(
                    {
                        "episode_index": i,
                        "tasks": [_instruction(ep)],
                        "length": n,
                        "hiors_episode_id": ep.meta.episode_id,
                    }
                )
                + "\n"
            )
    with open(out / "meta" / "tasks.jsonl", "w") as tj:
        for text, k in tasks.items():
            tj.write(json.dumps({"task_index": k, "task": text}) + "\n")
    info = {
        "codebase_version": "v2.0",
        "robot_type": first.robot,
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": len(tasks),
        "total_videos": 0,
        "total_chunks": 1,
        "chunks_size": 1000,
        "fps": first.control_rate_hz,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": None,
        "features": _features(episodes[0]),
    }
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    (out / "meta" / "stats.json").write_text(json.dumps(_stats(out), indent=2))
    return out


def _stats(out: Path) -> dict:
    """Per-dimension mean, std, min and max of the vector features over every exported frame."""
    import pyarrow.parquet as pq

    stats = {}
    for key in ("observation.state", "action"):
        parts = [pq.read_table(f, columns=[key])[key].to_pylist() for f in sorted((out / "data").rglob("*.parquet"))]
        x = np.asarray([v for part in parts for v in part], dtype=np.float64)
        if x.ndim != 2 or not len(x):
            continue
        stats[key] = {
            "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(),
            "min": x.min(0).tolist(),
            "max": x.max(0).tolist(),
        }
    return stats
