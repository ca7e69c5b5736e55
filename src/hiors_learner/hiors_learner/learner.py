"""The learner without ROS: buffer, threshold schedule, UTD pacing, training steps, weight versions,
checkpoints, resume and backfill from the episode log. The `learner` node wraps it; tests drive it directly.

The learner owns the threshold m: it alone decides whether an episode enters the training set (`offer`, at its m
at that moment) and its buffer re-applies m as m rises (`train_once`). The episode filter only computes R and
drops malformed, short and no-op data; it reports the learner's m and the verdict this rule gives at it.
Every decision is appended to run_dir/verdicts.csv (`VERDICT_FIELDS`): `admitted` or `rejected` at admission,
`left` when a higher m drops an admitted episode, so an episode is in the training set at the end when its last
row says `admitted`.

A restart in the same run folder (`resume`) continues from the last checkpoint: its weights, optimiser, step, m and
episode ids. The steps trained after that checkpoint are lost; their metrics.csv rows are dropped, so that the step
column stays the history of the weights in use, and m stays at least the highest m announced before the restart
(`resume_point`). A clean stop (`final_checkpoint`) loses nothing.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hiors_core.buffer import EpisodeBuffer
from hiors_core.episode_log import EpisodeLog
from hiors_core.errors import ConfigError, EpisodeLogError
from hiors_core.filters import (
    REASON_ACCEPTED,
    REASON_BELOW,
    REASON_NO_SAMPLES,
    FilterConfig,
    FilterResult,
    filter_episode,
)
from hiors_core.labelling import training_samples
from hiors_core.rejection import ThresholdConfig, ThresholdSchedule, indicator, sample_weight
from hiors_core.returns import ReturnConfig, episode_return
from hiors_core.robots import get_robot
from hiors_core.schema import TrainingSample
from hiors_core.weight_sync import MAX_TOPIC_BYTES, write_atomic

METRIC_FIELDS = (
    "step",
    "time",
    "loss",
    "lr",
    "threshold",
    "episodes_total",
    "episodes_accepted",
    "buffer_samples",
    "utd",
    "policy_version",
    "samples_per_second",
)
VERDICT_FIELDS = ("time", "step", "episode_id", "source", "episode_return", "threshold", "event", "reason")
METRICS_FILE = "metrics.csv"
CHECKPOINTS = "checkpoints"
# The highest m announced before a restart that lost steps (their metrics rows, which showed it, are dropped).
THRESHOLD_FILE = "threshold.json"


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    try:
        name = (ckpt_root / "latest").read_text().strip()
    except OSError:
        return None
    path = ckpt_root / name
    return path if name and (path / "state.json").exists() else None


def _metric_rows(path: Path) -> list[tuple[int, float, str]]:
    """(step, threshold, line) of every readable row of a metrics.csv (a row torn by a kill is skipped)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    if not lines:
        return []
    header = next(csv.reader([lines[0]]))
    if "step" not in header or "threshold" not in header:
        return []
    i_step, i_m = header.index("step"), header.index("threshold")
    rows = []
    for line in lines[1:]:
        cells = next(csv.reader([line]), [])
        try:
            rows.append((int(cells[i_step]), float(cells[i_m]), line))
        except (IndexError, ValueError):
            continue
    return rows


@dataclass(frozen=True)
class ResumePoint:
    """Where a learner restarting in a run folder continues (`resume_point`)."""

    checkpoint: Path | None
    step: int  # the checkpoint's step; 0 without one (the starting policy)
    m: float | None  # the highest m known from before: checkpoint, metrics rows, THRESHOLD_FILE (None: fresh)
    logged_step: int  # the highest step in metrics.csv
    episodes: int  # episode ids the checkpoint knows

    @property
    def lost_steps(self) -> int:
        """Steps trained after the checkpoint: lost with the restart."""
        return max(0, self.logged_step - self.step)

    @property
    def fresh(self) -> bool:
        return self.checkpoint is None and self.logged_step == 0 and self.m is None


def resume_point(run_dir: str | Path) -> ResumePoint:
    """What a learner restarting in `run_dir` (its own folder: checkpoints/, metrics.csv) starts from; read
    without loading anything, so that `hiors up` can say it before the learner starts."""
    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir / CHECKPOINTS)
    step, episodes, ms = 0, 0, []
    if ckpt is not None:
        try:
            state = json.loads((ckpt / "state.json").read_text())
            step, episodes = int(state["step"]), len(state.get("seen", []))
            ms.append(float(state["threshold"]["current"]))
        except (OSError, ValueError, KeyError, TypeError):
            ckpt = None
    rows = _metric_rows(run_dir / METRICS_FILE)
    ms += [m for _, m, _ in rows]
    try:
        ms.append(float(json.loads((run_dir / THRESHOLD_FILE).read_text())["m"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    ms = [m for m in ms if math.isfinite(m)]
    logged = max((s for s, _, _ in rows), default=0)
    return ResumePoint(ckpt, step, max(ms) if ms else None, logged, episodes)


@functools.cache
def task_time_limit_s(task: str) -> float:
    """The task's time limit (s), from its scene definition (`hiors_sim.tasks`, imported only when needed)."""
    from hiors_sim.tasks import make_task

    return float(make_task(task).time_limit)


def return_from_label(
    reward: float,
    success: bool,
    robot: str,
    task: str,
    control_steps: int,
    human_steps: int,
    config: ReturnConfig,
    time_limit_s: float = 0.0,
) -> float:
    """R of one labelled episode (`hiors_core.returns`) from its facts: the episode filter's R of a message and the
    learner's R of an episode read back from the log are this one function. `time_limit_s` 0 = the task's own.
    Raises ConfigError when a graded success's robot or task is unknown."""
    rate = limit = 0.0
    if config.mode == "graded" and success and math.isfinite(float(reward)):
        try:
            rate = get_robot(robot).control_rate_hz
            limit = time_limit_s if time_limit_s > 0 else task_time_limit_s(task)
        except KeyError as e:  # unknown robot or task
            raise ConfigError(f"graded return: {e.args[0] if e.args else e}; or set return_time_limit_s") from None
    return episode_return(reward, bool(success), int(control_steps), int(human_steps), rate, limit, config)


def admission(episode_return: float, m: float) -> str:
    """The learner's rule for an episode that passed the filter's checks: REASON_ACCEPTED when R >= m (I_m)."""
    return REASON_ACCEPTED if indicator(episode_return, m) else REASON_BELOW


@dataclass(frozen=True)
class LearnerConfig:
    run_dir: str
    log_dir: str = ""  # the recorder's episode log: resume re-reads and backfills from it
    demo_log_dir: str = ""  # initial demonstrations
    horizon: int = 50
    batch_size: int = 8
    utd_target: float = 0.0  # gradient steps per received sample; 0 = unpaced (hiors_learner.pacing)
    utd_cap: float = 0.0
    idle_after_s: float = 10.0
    publish_every: int = 50
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    keep_weight_files: int = 3
    local_weights: bool = True  # write each published version to run_dir/weights (the shared-disk fast path)
    max_steps: int = 0  # 0 = no limit
    seed: int = 0
    filters: FilterConfig = field(default_factory=FilterConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    # R of the episodes re-read from the online log (resume, backfill), as the episode filter computes it
    returns: ReturnConfig = field(default_factory=ReturnConfig)
    return_time_limit_s: float = 0.0  # 0 = the task's time limit


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Learner:
    def __init__(self, config: LearnerConfig, engine, publish=None, logger=None):
        from .pacing import UTDPacer

        self.cfg = config
        self.engine = engine
        self.publish = publish  # callable(version, step, blob, path, sha256, size) or None; blob None: by path
        self.log = logger or (lambda msg: None)
        self.run_dir = Path(config.run_dir)
        self.ckpt_root = self.run_dir / CHECKPOINTS
        self.weights_dir = self.run_dir / "weights"
        self.ckpt_root.mkdir(parents=True, exist_ok=True)
        self.buffer = EpisodeBuffer()
        self.schedule = ThresholdSchedule(config.threshold)
        self.pacer = UTDPacer(config.utd_target, config.utd_cap, config.idle_after_s)
        self.rng = np.random.default_rng(config.seed)
        self.policy_version = 0
        self.last_loss = float("nan")
        self.last_lr = 0.0
        self.samples_per_second = 0.0
        self.resumed_from: str | None = None
        self.checkpointed_step = -1  # the step of the last checkpoint written or loaded
        self._known: set[str] = set()  # episode ids of the checkpoint restored
        self._metrics = None
        self._verdicts = None

    # --- data in ------------------------------------------------------------------------------------------------
    @property
    def m(self) -> float:
        return self.schedule.current

    def offer(
        self,
        episode_id: str,
        samples: list[TrainingSample],
        episode_return: float,
        control_mode: int,
        prefiltered: bool = False,
        source: str = "online",
        count: bool = True,
    ) -> FilterResult | None:
        """One episode in, judged at the learner's m now. Deduped by id (None when known). `prefiltered` episodes
        (from episode_filter) passed its checks (label, short, no-op samples removed): only m decides."""
        if episode_id in self.buffer:
            return None
        m = self.m
        if prefiltered:
            reason = admission(episode_return, m) if samples else REASON_NO_SAMPLES
            ok = reason == REASON_ACCEPTED
            w = sample_weight(episode_return, m, self.cfg.filters.weighting, self.cfg.filters.reward_scale)
            for s in samples:
                s.weight = w
            res = FilterResult(ok, reason, episode_return, m, len(samples))
            res.samples = list(samples) if ok else []
        else:
            res = filter_episode(samples, episode_return, m, control_mode, self.cfg.filters)
        if count:  # an episode re-read on resume is in the checkpoint's schedule state already
            self.schedule.observe(episode_return, res.accepted)
        self._record(episode_id, source, episode_return, m, "admitted" if res.accepted else "rejected", res.reason)
        if res.accepted:
            self.buffer.add(episode_id, res.samples, episode_return, m, source)
            if not count:  # re-read on resume: it was counted before the restart
                self.buffer.samples_received -= len(res.samples)
            else:
                self.pacer.on_data(len(res.samples), time.monotonic())
        else:
            self.buffer.mark_seen(episode_id)
        return res

    def load_log(self, log_dir: str, source: str, skip_count: set[str] = frozenset()) -> int:
        """Offer every complete episode of a log that the buffer does not know. Returns how many were new."""
        if not log_dir:
            return 0
        log = EpisodeLog(log_dir)
        n = 0
        for eid in log.trainable_ids():
            if eid in self.buffer:
                continue
            try:
                ep = log.read(eid)
                ret = self.return_of(ep) if source != "demo" else ep.episode_return
            except (EpisodeLogError, ConfigError) as e:
                self.log(f"skipping {eid}: {e}")
                self.buffer.mark_seen(eid)
                continue
            samples = training_samples(ep, self.cfg.horizon)
            self.offer(eid, samples, ret, ep.meta.control_mode, source=source, count=eid not in skip_count)
            n += eid not in skip_count
        return n

    def return_of(self, ep) -> float:
        """R of an online episode read back from the log, as the episode filter computed it when it was live.
        (Demonstrations keep their label's reward: a person drove them on purpose, and the graded return's human
        share would rank the whole base data set below every autonomous success.)"""
        label = ep.label
        if label is None:
            return float("nan")
        m = ep.meta
        return return_from_label(
            label.reward,
            label.success,
            m.robot,
            m.task,
            len(ep.executed),
            int(ep.human_mask.sum()),
            self.cfg.returns,
            self.cfg.return_time_limit_s,
        )

    def in_training_set(self, episode_id: str) -> bool:
        ep = self.buffer.episodes.get(episode_id)
        return ep is not None and ep.active

    # --- training -----------------------------------------------------------------------------------------------
    def ready(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.cfg.max_steps and self.engine.step >= self.cfg.max_steps:
            return False
        return self.buffer.num_samples > 0 and self.pacer.may_train(now)

    def train_once(self) -> dict:
        t0 = time.monotonic()
        samples = self.buffer.sample(self.cfg.batch_size, self.rng)
        out = self.engine.train_step(samples)
        dt = time.monotonic() - t0
        self.samples_per_second = len(samples) / dt if dt > 0 else 0.0
        self.pacer.on_step()
        self.last_loss, self.last_lr = out["loss"], out["lr"]
        step = self.engine.step
        old = self.m
        if self.schedule.value(step) > old:
            left = self.buffer.refilter(self.m)
            for eid in left:
                ep = self.buffer.episodes[eid]
                self._record(eid, ep.source, ep.episode_return, self.m, "left", REASON_BELOW)
            if left:
                self.log(f"m {old:.3f} -> {self.m:.3f}: {len(left)} episode(s) left the training set")
        self._write_metrics()
        if self.cfg.publish_every and step % self.cfg.publish_every == 0:
            self.publish_weights()
        if self.cfg.checkpoint_every and step % self.cfg.checkpoint_every == 0:
            self.checkpoint()
        return out

    # --- weights out --------------------------------------------------------------------------------------------
    def _version_file(self) -> Path:
        return self.weights_dir / "published_version"

    def publish_weights(self) -> int:
        """A new, strictly larger version (persisted before it is announced, so a restart never reuses one)."""
        self.weights_dir.mkdir(parents=True, exist_ok=True)
        self.policy_version = max(self.policy_version, self._published_on_disk()) + 1
        write_atomic(self._version_file(), str(self.policy_version).encode())
        blob, path, digest, size = None, "", "", 0
        if self.cfg.local_weights:
            # Streamed from the model (no blob of it in memory); a sync file, so not fsync'd: after a crash the
            # learner publishes again, and a receiver checks the sha256 whatever it reads.
            p = self.weights_dir / f"policy-v{self.policy_version:08d}.safetensors"
            digest, size = self.engine.policy.write_weights_file(p, durable=False)
            path = str(p.resolve())
            old = sorted(self.weights_dir.glob("policy-v*.safetensors"))[: -self.cfg.keep_weight_files]
            for f in old:
                f.unlink(missing_ok=True)
        if self.publish is not None:
            if not path:
                blob = self.engine.weights_blob()
            elif size <= MAX_TOPIC_BYTES:  # small enough for the topic too: the file's bytes
                blob = Path(path).read_bytes()
            # (above MAX_TOPIC_BYTES the version goes by its file alone: no blob of the model is ever built)
            self.publish(self.policy_version, self.engine.step, blob, path, digest, size)
        return self.policy_version

    def _published_on_disk(self) -> int:
        try:
            return int(self._version_file().read_text().strip())
        except (OSError, ValueError):
            return 0

    # --- metrics ------------------------------------------------------------------------------------------------
    def status(self) -> dict:
        total = len(self.buffer.seen)
        acc = self.buffer.num_active
        return {
            "step": self.engine.step,
            "loss": self.last_loss,
            "lr": self.last_lr,
            "threshold": self.m,
            "episodes_total": total,
            "episodes_accepted": acc,
            "episodes_rejected": total - acc,
            "buffer_samples": self.buffer.num_samples,
            "utd": self.pacer.achieved,
            "samples_per_second": self.samples_per_second,
            "policy_version": self.policy_version,
            "engine": self.engine.name,
        }

    def _write_metrics(self) -> None:
        path = self.run_dir / METRICS_FILE
        if self._metrics is None:
            new = not path.exists()
            self._metrics = open(path, "a", newline="", encoding="utf-8")
            if new:
                csv.writer(self._metrics).writerow(METRIC_FIELDS)
        s = self.status()
        s["time"] = time.time()
        csv.writer(self._metrics).writerow([s[k] for k in METRIC_FIELDS])
        self._metrics.flush()

    def _record(self, episode_id: str, source: str, ret: float, m: float, event: str, reason: str) -> None:
        path = self.run_dir / "verdicts.csv"
        if self._verdicts is None:
            new = not path.exists()
            self._verdicts = open(path, "a", newline="", encoding="utf-8")
            if new:
                csv.writer(self._verdicts).writerow(VERDICT_FIELDS)
        row = (time.time(), self.engine.step, episode_id, source, f"{ret:.4f}", f"{m:.4f}", event, reason)
        csv.writer(self._verdicts).writerow(row)
        self._verdicts.flush()

    # --- checkpoints --------------------------------------------------------------------------------------------
    def checkpoint(self) -> Path:
        """model.safetensors + optimizer state + state.json (buffer index, threshold, step, version), atomically:
        written into a temporary directory, fsynced, renamed, then the `latest` pointer is replaced."""
        step = self.engine.step
        final = self.ckpt_root / f"ckpt-{step:08d}"
        tmp = self.ckpt_root / f".tmp-ckpt-{step:08d}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        self.engine.policy.write_weights_file(tmp / "model.safetensors")
        self.engine.save(tmp)
        state = {
            "step": step,
            "policy_version": max(self.policy_version, self._published_on_disk()),
            "threshold": self.schedule.state_dict(),
            "seen": sorted(self.buffer.seen),
            "active": sorted(self.buffer.active_ids),
            "samples_received": self.buffer.samples_received,
            "pacer": {"steps": self.pacer.steps, "received": self.pacer.received},
            "engine": self.engine.name,
            "time": time.time(),
        }
        write_atomic(tmp / "state.json", json.dumps(state).encode())
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.ckpt_root)
        write_atomic(self.ckpt_root / "latest", final.name.encode())
        for old in sorted(self.ckpt_root.glob("ckpt-*"))[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        self.checkpointed_step = step
        return final

    def final_checkpoint(self) -> Path | None:
        """On a clean stop: a checkpoint of the steps trained since the last one (None when there are none)."""
        if self.engine.step <= max(self.checkpointed_step, 0):
            return None
        return self.checkpoint()

    def latest_checkpoint(self) -> Path | None:
        return latest_checkpoint(self.ckpt_root)

    def resume(self) -> bool:
        """Load the last checkpoint if any; then (always) load demos and backfill from the log."""
        resumed = self.restore()
        self.load_data()
        return resumed

    def restore(self) -> bool:
        """The state of the last checkpoint, if any (weights, optimiser, step, m, episode ids), without the episode
        data (`load_data`): the node announces its weights and m in between, before the slow part."""
        point = resume_point(self.run_dir)
        ckpt = point.checkpoint
        known: set[str] = set()
        if ckpt is not None:
            state = json.loads((ckpt / "state.json").read_text())
            self.engine.policy.load_safetensors_bytes((ckpt / "model.safetensors").read_bytes())
            self.engine.load(ckpt, int(state["step"]))
            self.schedule.load_state_dict(state["threshold"])
            self.policy_version = max(int(state["policy_version"]), self._published_on_disk())
            self.pacer.steps = int(state["step"])  # one gradient step per engine step (also in older checkpoints)
            self.pacer.received = int(state["pacer"]["received"])
            known = set(state["seen"])
            self.resumed_from = str(ckpt)
            self.checkpointed_step = int(state["step"])
        if point.m is not None:
            self.schedule.raise_to(point.m)  # never below an m announced before the restart
            write_atomic(self.run_dir / THRESHOLD_FILE, json.dumps({"m": self.m}).encode())
        if point.lost_steps:
            self._drop_metrics_after(point.step)
        if not point.fresh:
            where = f"{ckpt} at step {point.step}" if ckpt is not None else "the starting policy (no checkpoint yet)"
            self.log(
                f"resumed from {where}, m={self.m:.3f}, {len(known)} episode ids; lost the {point.lost_steps} "
                f"step(s) trained after it (steps {point.step + 1}-{point.logged_step} dropped from {METRICS_FILE})"
                if point.lost_steps
                else f"resumed from {where}, m={self.m:.3f}, {len(known)} episode ids; no steps lost"
            )
        self._known = known
        return ckpt is not None

    def load_data(self) -> None:
        """The demonstrations, and the episode log's episodes (those of the checkpoint and those logged since)."""
        known = self._known
        self.load_log(self.cfg.demo_log_dir, "demo", skip_count=known)
        added = self.load_log(self.cfg.log_dir, "backfill", skip_count=known)
        if added:
            self.log(f"backfilled {added} episode(s) from {self.cfg.log_dir}")
        # checkpointed ids whose bags are gone stay known, so they are never added twice
        for eid in known:
            self.buffer.mark_seen(eid)
        if self.pacer.last_data_time == 0.0:
            self.pacer.last_data_time = time.monotonic()

    def _drop_metrics_after(self, step: int) -> None:
        """Rewrite metrics.csv without the rows of steps after `step` (trained, then lost with a restart)."""
        path = self.run_dir / METRICS_FILE
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for s, _, line in _metric_rows(path) if s <= step]
        write_atomic(path, ("\n".join(lines[:1] + kept) + "\n").encode())

    def close(self) -> None:
        for f in (self._metrics, self._verdicts):
            if f is not None:
                f.close()
        self._metrics = self._verdicts = None
