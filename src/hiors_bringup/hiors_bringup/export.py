"""`hiors export --lerobot <run>`: a run's accepted episodes as a LeRobot v2.1 dataset (no lerobot dependency).

Layout: `meta/info.json`, `meta/episodes.jsonl`, `meta/tasks.jsonl`, `meta/episodes_stats.jsonl`,
`data/chunk-NNN/episode_NNNNNN.parquet`. LeRobot's loader wants one row per period of `fps`
(consecutive timestamps 1/fps apart within 1e-4 s), while Hi-ORS records observations at two rates (every step
while the human drives, once per chunk while the policy drives) and a command at every control step. So the
dataset has one row per control step, from the episode's first recorded observation to its last command:
`action` (the command executed at that step, whoever drove), `observation.state` and
`observation.images.<camera>` (the latest observation recorded at or before that step; PNG in the `image` feature,
so no video encoder is needed), `timestamp` = frame_index / fps, the usual indices, `sampled` (true where the
observation was recorded at this very step: the Hi-ORS training samples) and `authority` (0 hold, 1 policy,
2 human). `fps` is the control rate.
Accepted = the episode filter's verdict at the time (`accepted` in the run's `episodes.csv`); `--all` takes every
labelled, complete episode, never one cut short by the end of the run. Every recorded step of an episode is
exported (the learner's no-op filter is not applied).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import HiorsError
from hiors_core.schema import EpisodeData, Executed, Frame

CODEBASE_VERSION = "v2.1"
CHUNKS_SIZE = 1000  # episodes per data/chunk-NNN folder, as LeRobot writes them
DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
INDEX_COLUMNS = ("frame_index", "episode_index", "index", "task_index")


def accepted_ids(run: Path) -> list[str]:
    with open(run / "episodes.csv", newline="") as f:
        return [r["episode_id"] for r in csv.DictReader(f) if r["accepted"] == "1"]


def _png(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))  # RGB -> BGR for OpenCV
    if not ok:
        raise HiorsError("PNG encoding failed")
    return buf.tobytes()


def control_steps(ep: EpisodeData) -> list[tuple[Executed, Frame, bool]]:
    """One entry per control step, from the first recorded observation to the last command: the command executed
    at that step, the latest observation recorded at or before it, and whether that observation was recorded at this
    very step (a Hi-ORS sample)."""
    executed = sorted(ep.executed, key=lambda e: e.step)
    for a, b in zip(executed, executed[1:], strict=False):
        if b.step != a.step + 1:
            raise HiorsError(
                f"{ep.meta.episode_id}: executed commands go from step {a.step} to step {b.step}; "
                "a LeRobot dataset needs one command per control period"
            )
    frames = {f.step: f for f in ep.frames}
    steps, latest = [], None
    for e in executed:
        fr = frames.get(e.step)
        if fr is not None:
            latest = fr
        if latest is not None:
            steps.append((e, latest, fr is not None))
    return steps


def _instruction(ep: EpisodeData) -> str:
    """What the policy was told: the frames carry it even when the episode started before the first observation."""
    return next((f.instruction for f in ep.frames if f.instruction), ep.meta.instruction)


def _state_names(ep: EpisodeData) -> list[str]:
    return list(next((f.state_names for f in ep.frames if f.state_names), ep.meta.state_names))


def _features(ep: EpisodeData) -> dict:
    """info.json's `features`: every parquet column with its dtype, shape and names (the one description the
    parquet schema is derived from)."""
    h, w = next(iter(ep.frames[0].images.values())).shape[:2]
    feats = {
        "observation.state": {"dtype": "float32", "shape": [len(_state_names(ep))], "names": _state_names(ep)},
        "action": {"dtype": "float32", "shape": [len(ep.meta.action_names)], "names": list(ep.meta.action_names)},
    }
    for c in ep.meta.camera_names:
        feats[f"observation.images.{c}"] = {
            "dtype": "image",
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
        }
    feats["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    for name in INDEX_COLUMNS:
        feats[name] = {"dtype": "int64", "shape": [1], "names": None}
    feats["sampled"] = {"dtype": "bool", "shape": [1], "names": None}
    feats["authority"] = {"dtype": "int64", "shape": [1], "names": None}  # 0 hold, 1 policy, 2 human
    return feats


def _schema(features: dict):
    """The parquet schema as LeRobot writes it through Hugging Face `datasets`: a scalar per shape-[1] feature, a
    fixed-size list per vector, the `image` feature's struct of PNG bytes and path, and the `datasets` features in the
    schema's metadata. LeRobot's loader reads the files with `datasets.load_dataset("parquet")`, which takes the
    features from that metadata: without it an image comes back as a dict of bytes, not a picture."""
    import pyarrow as pa

    fields, hf = [], {}
    for name, ft in features.items():
        if ft["dtype"] == "image":
            fields.append((name, pa.struct([("bytes", pa.binary()), ("path", pa.string())])))
            hf[name] = {"_type": "Image"}
            continue
        scalar = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
        value = {"dtype": ft["dtype"], "_type": "Value"}
        if ft["shape"] == [1]:
            fields.append((name, scalar))
            hf[name] = value
        else:
            fields.append((name, pa.list_(scalar, ft["shape"][0])))
            hf[name] = {"feature": value, "length": ft["shape"][0], "_type": "Sequence"}
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": hf}})})


def _episode(
    ep: EpisodeData, steps, episode_index: int, task_index: int, first_index: int, fps: float, features: dict
) -> tuple[dict[str, list], dict]:
    """The episode's parquet columns and its per-feature stats (LeRobot v2.1's episodes_stats.jsonl entry)."""
    cams = ep.meta.camera_names
    cols: dict[str, list] = {name: [] for name in features}
    held: dict[int, list] = {}  # frame step -> [frame, {camera: png}, rows showing it]: a held frame is encoded once
    for k, (e, fr, sampled) in enumerate(steps):
        if fr.step not in held:
            held[fr.step] = [fr, {c: _png(fr.images[c]) for c in cams}, 0]
        held[fr.step][2] += 1
        cols["observation.state"].append(np.asarray(fr.state, np.float32).tolist())
        cols["action"].append(np.asarray(e.action, np.float32).tolist())
        for c in cams:
            cols[f"observation.images.{c}"].append({"bytes": held[fr.step][1][c], "path": None})
        cols["timestamp"].append(k / fps)
        cols["frame_index"].append(k)
        cols["episode_index"].append(episode_index)
        cols["index"].append(first_index + k)
        cols["task_index"].append(task_index)
        cols["sampled"].append(sampled)
        cols["authority"].append(int(e.authority))
    stats = {}
    for name, ft in features.items():
        if ft["dtype"] == "image":
            cam = name.removeprefix("observation.images.")
            stats[name] = _image_stats([(f.images[cam], n) for f, _, n in held.values()])
        else:
            x = np.asarray(cols[name], dtype=np.float32 if name == "timestamp" else None).astype(np.float64)
            x = x.reshape(len(x), -1)
            stats[name] = {
                "min": x.min(0).tolist(),
                "max": x.max(0).tolist(),
                "mean": x.mean(0).tolist(),
                "std": x.std(0).tolist(),
                "count": [len(x)],
            }
    return cols, stats


def _image_stats(images: list[tuple[np.ndarray, int]]) -> dict:
    """Per-channel min, max, mean and std of HxWx3 uint8 images scaled to [0, 1], each weighted by its number of
    rows, shaped (3, 1, 1) as LeRobot keeps image stats; count is the number of rows."""
    total = sum(n for _, n in images)
    s, ss, lo, hi = np.zeros(3), np.zeros(3), np.full(3, np.inf), np.full(3, -np.inf)
    for img, n in images:
        x = img.reshape(-1, 3).astype(np.float64) / 255.0
        s += n * x.mean(0)
        ss += n * (x * x).mean(0)
        lo, hi = np.minimum(lo, x.min(0)), np.maximum(hi, x.max(0))
    mean = s / total
    std = np.sqrt(np.maximum(ss / total - mean * mean, 0.0))
    return {
        **{k: v.reshape(3, 1, 1).tolist() for k, v in (("min", lo), ("max", hi), ("mean", mean), ("std", std))},
        "count": [total],
    }


def export_lerobot(
    run: str | Path, out: str | Path = "", accepted_only: bool = True, say: Callable[[str], None] = print
) -> Path:
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
    episodes = []
    for ep in (log.read(i) for i in sorted(set(ids))):
        steps = control_steps(ep)
        if steps:
            episodes.append((ep, steps))
        else:
            say(f"{ep.meta.episode_id}: left out, no observation was recorded before its last command")
    if not episodes:
        raise HiorsError(f"{run}: no {'accepted ' if accepted_only else ''}episodes to export")
    first = episodes[0][0]
    layout = (first.meta.robot, first.meta.action_names, first.meta.camera_names, first.meta.control_rate_hz)
    for ep, _ in episodes:
        if (ep.meta.robot, ep.meta.action_names, ep.meta.camera_names, ep.meta.control_rate_hz) != layout or (
            _state_names(ep) != _state_names(first)
        ):
            raise HiorsError(
                f"{ep.meta.episode_id}: robot, state, actions, cameras or control rate differ from "
                f"{first.meta.episode_id}"
            )
    fps = first.meta.control_rate_hz
    fps = int(fps) if float(fps).is_integer() else fps
    features = _features(first)
    schema = _schema(features)
    (out / "meta").mkdir(parents=True, exist_ok=True)
    tasks: dict[str, int] = {}
    total = 0
    with open(out / "meta" / "episodes.jsonl", "w") as ej, open(out / "meta" / "episodes_stats.jsonl", "w") as sj:
        for i, (ep, steps) in enumerate(episodes):
            task_index = tasks.setdefault(_instruction(ep), len(tasks))
            cols, stats = _episode(ep, steps, i, task_index, total, fps, features)
            path = out / DATA_PATH.format(episode_chunk=i // CHUNKS_SIZE, episode_index=i)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(cols, schema=schema), path)
            n = len(steps)
            total += n
            entry = {
                "episode_index": i,
                "tasks": [_instruction(ep)],
                "length": n,
                "hiors_episode_id": ep.meta.episode_id,
            }
            ej.write(json.dumps(entry) + "\n")
            sj.write(json.dumps({"episode_index": i, "stats": stats}) + "\n")
    with open(out / "meta" / "tasks.jsonl", "w") as tj:
        for text, k in tasks.items():
            tj.write(json.dumps({"task_index": k, "task": text}) + "\n")
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": first.meta.robot,
        "total_episodes": len(episodes),
        "total_frames": total,
        "total_tasks": len(tasks),
        "total_videos": 0,
        "total_chunks": (len(episodes) - 1) // CHUNKS_SIZE + 1,
        "chunks_size": CHUNKS_SIZE,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": None,
        "features": features,
    }
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return out
