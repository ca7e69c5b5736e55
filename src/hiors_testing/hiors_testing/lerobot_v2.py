"""LeRobot v2.x dataset rules, re-implemented from what lerobot's v2.1 loader (`LeRobotDataset`, codebase v2.1)
reads and checks, without lerobot: `check_lerobot_v2(root)` raises AssertionError naming the first broken rule.

- meta/info.json: the fields `create_empty_dataset_info` writes; every feature with a dtype, a shape and names, the
  default features (timestamp float32, frame/episode/index/task_index int64, shape (1,)); images (h, w, 3).
- meta/tasks.jsonl, meta/episodes.jsonl: indices 0..n-1, totals as info.json says, every episode's task listed.
- data/: one parquet file per episode at `data_path` with chunk = episode_index // chunks_size, and no others
  (the loader reads every parquet file under data/); its columns are the non-video features, castable to the
  Hugging Face features lerobot derives from info.json (`get_hf_features_from_features`), and the schema's
  `huggingface` metadata names those features (`datasets.load_dataset("parquet")` decodes images by it).
- indices: episode_index constant, frame_index 0..length-1, index contiguous over the dataset in episode order.
- timestamps: lerobot's `check_timestamps_sync` on every row at the default tolerance_s = 1e-4: consecutive
  timestamps within an episode differ by 1/fps.
- meta/episodes_stats.jsonl (v2.1): per episode, min/max/mean/std/count for each feature, shaped as lerobot's
  `aggregate_stats` asserts ((3, 1, 1) for images, count (1,)).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance_s
INFO_KEYS = {
    "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "total_videos",
    "total_chunks", "chunks_size", "fps", "splits", "data_path", "video_path", "features",
}  # fmt: skip
DEFAULT_FEATURES = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}


def _jsonl(path: Path) -> list[dict]:
    assert path.is_file(), f"{path} is missing"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_timestamps_sync(timestamps: np.ndarray, lengths: list[int], fps: float, tolerance_s: float) -> None:
    """lerobot's check: within each episode, |t[i+1] - t[i] - 1/fps| <= tolerance_s (boundaries are skipped)."""
    diffs = np.diff(timestamps)
    within = np.abs(diffs - 1.0 / fps) <= tolerance_s
    mask = np.ones(len(diffs), dtype=bool)
    ends = np.cumsum(lengths)[:-1] - 1  # the diff that crosses from one episode into the next
    mask[ends] = False
    bad = np.nonzero(~within & mask)[0]
    assert not len(bad), (
        f"{len(bad)} timestamp steps are not 1/fps = {1.0 / fps:.6f} s within {tolerance_s} s, the first at row "
        f"{bad[0]}: {timestamps[bad[0]]} -> {timestamps[bad[0] + 1]}"
    )


def _check_feature(name: str, ft: dict) -> None:
    assert {"dtype", "shape", "names"} <= set(ft), f"feature {name} lacks dtype, shape or names: {ft}"
    shape = ft["shape"]
    assert isinstance(shape, list) and 1 <= len(shape) <= 5 and all(isinstance(d, int) and d > 0 for d in shape), (
        f"feature {name}: bad shape {shape}"
    )
    if ft["dtype"] in ("image", "video"):
        assert len(shape) == 3, f"image feature {name} must be (h, w, c), is {shape}"
        names = ft["names"]
        assert isinstance(names, list) and len(names) == 3, f"image feature {name}: names {names}"
        c = shape[2] if names[2] in ("channel", "channels") else shape[0]
        assert c == 3, f"image feature {name}: {c} channels"
    elif ft["dtype"] != "string":
        np.dtype(ft["dtype"])  # a numpy dtype name, as lerobot requires
        if ft["names"] is not None and len(shape) == 1 and shape != [1]:
            assert len(ft["names"]) == shape[0], f"feature {name}: {len(ft['names'])} names for shape {shape}"


def _check_column(name: str, ft: dict, column: pa.ChunkedArray) -> None:
    """The column casts to the Hugging Face feature lerobot builds from `ft` (Value, Sequence(length) or Image)."""
    t = column.type
    if ft["dtype"] == "image":
        assert pa.types.is_struct(t) and {t.field(i).name for i in range(t.num_fields)} == {"bytes", "path"}, (
            f"column {name}: an image is a struct of bytes and path, not {t}"
        )
        img = cv2.imdecode(np.frombuffer(column[0].as_py()["bytes"], np.uint8), cv2.IMREAD_UNCHANGED)
        assert img is not None and list(img.shape) == ft["shape"], f"column {name}: first image does not decode"
        return
    want = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
    if ft["shape"] == [1]:
        assert t == want, f"column {name} is {t}, its feature says {ft['dtype']}"
        return
    assert len(ft["shape"]) == 1, f"column {name}: only vectors are checked here, shape {ft['shape']}"
    assert pa.types.is_list(t) or pa.types.is_fixed_size_list(t), f"column {name} is {t}, not a list"
    assert t.value_type == want, f"column {name} holds {t.value_type}, its feature says {ft['dtype']}"
    lengths = {len(v) for v in column.to_pylist()}
    assert lengths <= {ft["shape"][0]}, f"column {name}: rows of lengths {sorted(lengths)}, shape {ft['shape']}"


def hf_features(features: dict) -> dict:
    """The Hugging Face `datasets` features (as `Features.to_dict()` writes them) that lerobot's
    `get_hf_features_from_features` makes of info.json's features, for the columns lerobot reads from parquet."""
    out = {}
    for name, ft in features.items():
        if ft["dtype"] == "video":
            continue
        if ft["dtype"] == "image":
            out[name] = {"_type": "Image"}
        elif ft["shape"] == [1]:
            out[name] = {"dtype": ft["dtype"], "_type": "Value"}
        elif len(ft["shape"]) == 1:
            out[name] = {
                "feature": {"dtype": ft["dtype"], "_type": "Value"},
                "length": ft["shape"][0],
                "_type": "Sequence",
            }
        else:
            raise AssertionError(f"feature {name}: Array{len(ft['shape'])}D features are not checked here")
    return out


def _check_stats(name: str, ft: dict, stats: dict, length: int) -> None:
    assert {"min", "max", "mean", "std", "count"} <= set(stats), f"stats of {name}: {sorted(stats)}"
    for k, v in stats.items():
        a = np.asarray(v)
        assert a.ndim >= 1, f"stats {name}/{k} must be at least 1-D"
        if k == "count":
            assert a.shape == (1,) and 0 < a[0] <= length, f"stats {name}/count {v} for {length} rows"
        elif ft["dtype"] in ("image", "video"):
            assert a.shape == (3, 1, 1), f"image stats {name}/{k} must be (3, 1, 1), are {a.shape}"
        else:
            assert a.shape == tuple(ft["shape"]), f"stats {name}/{k} {a.shape} for shape {ft['shape']}"
            assert np.all(np.isfinite(a)), f"stats {name}/{k} not finite"


def check_lerobot_v2(root: str | Path, tolerance_s: float = TOLERANCE_S) -> dict:
    """Every rule above on the dataset at `root`; returns its info.json."""
    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    assert INFO_KEYS <= set(info), f"info.json lacks {sorted(INFO_KEYS - set(info))}"
    version = info["codebase_version"]
    assert version in ("v2.0", "v2.1"), f"codebase_version {version} is not a LeRobot v2 dataset"
    fps = info["fps"]
    assert isinstance(fps, int | float) and fps > 0, f"fps {fps}"
    features = info["features"]
    for name, ft in features.items():
        _check_feature(name, ft)
    for name, dtype in DEFAULT_FEATURES.items():
        assert name in features, f"default feature {name} is missing"
        assert features[name]["dtype"] == dtype and features[name]["shape"] == [1], f"{name}: {features[name]}"
    videos = [n for n, ft in features.items() if ft["dtype"] == "video"]
    assert not videos or info["video_path"], f"video features {videos} without a video_path"
    assert info["total_videos"] == len(videos) * info["total_episodes"]

    tasks = _jsonl(root / "meta" / "tasks.jsonl")
    assert sorted(t["task_index"] for t in tasks) == list(range(len(tasks))), "task indices are not 0..n-1"
    assert all(isinstance(t["task"], str) and t["task"] for t in tasks)
    assert len(tasks) == info["total_tasks"], f"{len(tasks)} tasks, info.json says {info['total_tasks']}"
    task_text = {t["task_index"]: t["task"] for t in tasks}

    episodes = sorted(_jsonl(root / "meta" / "episodes.jsonl"), key=lambda e: e["episode_index"])
    assert [e["episode_index"] for e in episodes] == list(range(len(episodes))), "episode indices are not 0..n-1"
    assert len(episodes) == info["total_episodes"], f"{len(episodes)} episodes, info says {info['total_episodes']}"
    assert info["splits"] == {"train": f"0:{len(episodes)}"}, f"splits {info['splits']}"
    for e in episodes:
        assert isinstance(e["length"], int) and e["length"] > 0, f"episode {e['episode_index']}: length {e['length']}"
        assert e["tasks"] and set(e["tasks"]) <= set(task_text.values()), f"episode {e['episode_index']}: tasks"
    lengths = [e["length"] for e in episodes]
    assert sum(lengths) == info["total_frames"], f"{sum(lengths)} rows in episodes, info says {info['total_frames']}"

    chunks = info["chunks_size"]
    paths = [root / info["data_path"].format(episode_chunk=i // chunks, episode_index=i) for i in range(len(lengths))]
    on_disk = sorted((root / "data").rglob("*.parquet"))
    assert on_disk == sorted(paths), f"data/ holds {[str(p) for p in on_disk]}, info.json names {paths}"
    assert info["total_chunks"] == len({p.parent for p in paths}), f"total_chunks {info['total_chunks']}"
    columns = {n for n, ft in features.items() if ft["dtype"] != "video"}
    timestamps, start = [], 0
    for e, path in zip(episodes, paths, strict=True):
        table = pq.read_table(path)
        assert set(table.column_names) == columns, (
            f"{path.name}: columns {sorted(set(table.column_names) ^ columns)} differ from the features"
        )
        for name in columns:
            _check_column(name, features[name], table[name])
        meta = json.loads((table.schema.metadata or {}).get(b"huggingface", b"{}"))
        assert meta.get("info", {}).get("features") == hf_features(features), (
            f"{path.name}: the schema's huggingface features differ from info.json's: {meta}"
        )
        n, i = e["length"], e["episode_index"]
        assert table.num_rows == n, f"{path.name}: {table.num_rows} rows, episodes.jsonl says {n}"
        col = {k: np.asarray(table[k].to_pylist()) for k in ("episode_index", "frame_index", "index", "task_index")}
        assert np.all(col["episode_index"] == i), f"{path.name}: episode_index is not {i} throughout"
        assert np.array_equal(col["frame_index"], np.arange(n)), f"{path.name}: frame_index is not 0..{n - 1}"
        assert np.array_equal(col["index"], np.arange(start, start + n)), f"{path.name}: index is not contiguous"
        assert all(task_text.get(t) in e["tasks"] for t in col["task_index"]), f"{path.name}: task_index"
        timestamps.append(np.asarray(table["timestamp"].to_pylist(), dtype=np.float32))
        start += n
    check_timestamps_sync(np.concatenate(timestamps), lengths, fps, tolerance_s)

    if version == "v2.1":
        stats = sorted(_jsonl(root / "meta" / "episodes_stats.jsonl"), key=lambda s: s["episode_index"])
        assert [s["episode_index"] for s in stats] == list(range(len(episodes))), "episodes_stats indices"
        for s, n in zip(stats, lengths, strict=True):
            assert set(s["stats"]) <= set(features), f"stats of unknown features {set(s['stats']) - set(features)}"
            for name, st in s["stats"].items():
                _check_stats(name, features[name], st, n)
    else:
        assert (root / "meta" / "stats.json").is_file(), "a v2.0 dataset needs meta/stats.json"
    return info
