"""Faults: SIGKILL of the policy node, the learner, the recorder and the sim at seeded random moments of a running
`hiors up`-style loop (separate node processes), each restarted. Afterwards: every finished episode is on disk and
readable, none lost, none in the learner's buffer twice; the learner resumed from its last checkpoint and has every
episode finished before its restart; the arbiter held the robot within two control periods of running out of the
dead policy's actions; and the loop went on (new verdicts, the policy driving again on current weights).

CI: one short round (policy once, learner once, two more episodes). Full (marked `full`): repeated rounds over all
four nodes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from rel_support import record

from hiors_bench.reliability import FaultRun, FaultRunOptions, hold_after_policy_loss
from hiors_core.episode_log import STATUS_ACKED, STATUS_COMPLETE, STATUS_INCOMPLETE, STATUS_RECORDING, EpisodeLog
from hiors_core.labelling import training_samples
from hiors_core.schema import AUTHORITY_POLICY

pytestmark = pytest.mark.e2e
K_AUTO = 12  # config/tora_one.yaml: policy steps executed per chunk
HORIZON = 16  # config/tora_one.yaml: the recorder's (and the learner's) label horizon
OVERRIDES = (
    ("learner", "publish_every", 5),
    ("learner", "checkpoint_every", 5),
    ("episode_runner", "episode_time_s", 8.0),
)


def ckpt_state(run_dir: Path) -> dict | None:
    root = run_dir / "learner" / "checkpoints"
    try:
        name = (root / "latest").read_text().strip()
        return json.loads((root / name / "state.json").read_text())
    except (OSError, ValueError):
        return None


def metric_steps(run_dir: Path) -> list[int]:
    try:
        rows = (run_dir / "learner" / "metrics.csv").read_text().splitlines()[1:]
    except OSError:
        return []
    return [int(r.split(",")[0]) for r in rows if r[:1].isdigit()]


class Ledger:
    """What happened to each kill, for the checks and the table."""

    def __init__(self):
        self.rows: list[dict] = []

    def add(self, **row) -> dict:
        self.rows.append(row)
        return row


def kill_policy(run: FaultRun, ledger: Ledger) -> None:
    run.wait_policy_driving()
    versions_before = max((v for _, v in run.watch.chunks), default=0)
    k = run.kill("policy", max_delay_s=0.6)
    # The arbiter runs what it holds of the last chunks, then holds (or the operator takes over).
    run.wait(
        lambda: hold_after_policy_loss(run.watch.executed, k)["next_authority"] >= 0,
        120,
        "a command other than the policy's after the policy was killed",
    )
    first_other = next((e for e in run.watch.since(k.wall) if e[2] != AUTHORITY_POLICY), None)
    downtime = run.rng.uniform(0.5, 2.0)
    time.sleep(downtime)  # the robot stands without a policy for a while (fault injection, not a wait for an event)
    held = hold_after_policy_loss(run.watch.executed, k)  # the stream from the kill up to the restart
    run.restart(k)
    run.wait_node_up("policy")
    t = time.monotonic()
    run.wait(lambda: any(e[2] == AUTHORITY_POLICY for e in run.watch.since(t)), 180, "the restarted policy driving")

    def current():
        with run.watch.lock:
            return [v for w, v in run.watch.chunks if w >= t]

    # The learner published nothing new meanwhile: the restarted actor gets the current version from the learner's
    # transient-local weights history.
    run.wait(lambda: any(v >= versions_before for v in current()), 180, "the restarted policy on the current weights")
    after = current()
    ledger.add(
        node="policy",
        gap_steps=held["gap_steps"],
        policy_steps_after_kill=held["policy_steps_after_kill"],
        hold_ok=held["ok"],
        next_authority=held["next_authority"],
        kill_to_other_s=round(first_other[0] - k.wall, 3) if first_other else None,
        version_before=versions_before,
        version_after=max(after),
        stale_chunks=sum(v < versions_before for v in after[: after.index(max(after))]),
    )


def kill_learner(run: FaultRun, ledger: Ledger) -> None:
    run.wait(lambda: ckpt_state(run.run_dir) is not None, 240, "a learner checkpoint")
    log = run.run_dir / "logs" / "learner.log"
    k = run.kill("learner", max_delay_s=2.0)
    at_kill = ckpt_state(run.run_dir)
    verdicts_at_kill = run.verdicts()
    log_offset = log.stat().st_size
    time.sleep(run.rng.uniform(0.5, 3.0))  # the learner stays dead for a while (episodes go on meanwhile)
    finished_before_restart = set(EpisodeLog(run.run_dir / "episodes").trainable_ids())
    run.restart(k)
    run.wait(
        lambda: re.search(r"resumed from \S+ at step \d+", log.read_bytes()[log_offset:].decode(errors="replace")),
        180,
        "the learner to resume",
    )
    m = re.search(r"resumed from (\S+) at step (\d+)", log.read_bytes()[log_offset:].decode(errors="replace"))
    ledger.add(
        node="learner",
        ckpt_step_at_kill=at_kill["step"],
        resumed_step=int(m.group(2)),
        verdicts_at_kill=verdicts_at_kill,
        finished_before_restart=sorted(finished_before_restart),
        steps_at_kill=len(metric_steps(run.run_dir)),
    )


def kill_recorder(run: FaultRun, ledger: Ledger) -> None:
    run.wait(lambda: run.monitor.node.count_publishers("/episode_status") > 0, 60, "the recorder")
    k = run.kill("recorder", max_delay_s=3.0)
    recording = [e for e, v in EpisodeLog(run.run_dir / "episodes").entries().items() if v.status == STATUS_RECORDING]
    time.sleep(run.rng.uniform(0.5, 2.0))
    run.restart(k)
    run.wait_node_up("recorder")
    ledger.add(node="recorder", recording_at_kill=recording)


def kill_sim(run: FaultRun, ledger: Ledger) -> None:
    k = run.kill("sim", max_delay_s=3.0)
    time.sleep(run.rng.uniform(0.5, 2.0))
    run.restart(k)
    run.wait_node_up("sim")
    ledger.add(node="sim")


KILLERS = {"policy": kill_policy, "learner": kill_learner, "recorder": kill_recorder, "sim": kill_sim}


def check_run(run: FaultRun, ledger: Ledger, label: str) -> None:
    """The guarantees, checked after the graph stopped; every count goes to the table."""
    run_dir = run.run_dir
    log = EpisodeLog(run_dir / "episodes")
    recovered = log.recover()  # the graph is stopped: any bag still 'recording' had its writer die
    entries = log.entries()
    verdict_ids = [v.episode_id for v in run.monitor.verdicts]
    unreadable = []
    for eid, e in entries.items():
        if e.status in (STATUS_COMPLETE, STATUS_ACKED):
            try:
                log.read(eid)
            except Exception as err:  # counted
                unreadable.append(f"{eid}: {err}")
    missing = [eid for eid in verdict_ids if entries.get(eid) is None or entries[eid].status == STATUS_INCOMPLETE]
    still_recording = [eid for eid, e in entries.items() if e.status == STATUS_RECORDING]
    # (The episode the graph's stop cut short is incomplete too, with its reason, and not a kill's doing.)
    ended = {eid for eid, e in entries.items() if e.reason.startswith("the run ended")}
    cut_off = sorted(eid for eid, e in entries.items() if e.status == STATUS_INCOMPLETE and eid not in ended)
    expected_cut = sorted({eid for r in ledger.rows if r["node"] == "recorder" for eid in r["recording_at_kill"]})
    finished = [eid for eid, e in entries.items() if e.status in (STATUS_COMPLETE, STATUS_ACKED)]
    no_verdict = sorted(set(finished) - set(verdict_ids))
    record("faults", f"{label}: kills", len(ledger.rows), detail=", ".join(r["node"] for r in ledger.rows))
    record("faults", f"{label}: episodes with a verdict", len(verdict_ids))
    record(
        "faults", f"{label}: finished episodes on disk", len(finished), detail=f"{len(no_verdict)} awaiting a verdict"
    )
    record("faults", f"{label}: finished episodes unreadable", len(unreadable), expected=0, ok=not unreadable)
    record("faults", f"{label}: episodes with a verdict but no bag", len(missing), expected=0, ok=not missing)
    record("faults", f"{label}: bags left open", len(still_recording), expected=0, ok=not still_recording)
    record(
        "faults",
        f"{label}: episodes cut off by a recorder kill (salvaged, never trained)",
        len(cut_off),
        expected=len(expected_cut),
        ok=set(cut_off) <= set(expected_cut) | {r.episode_id for r in recovered},
        detail=", ".join(cut_off),
    )
    assert not unreadable and not missing and not still_recording, (unreadable, missing, still_recording)
    assert len(set(verdict_ids)) == len(verdict_ids)

    # The learner: no episode twice, resumed from its last checkpoint, nothing finished before a restart lost.
    state = ckpt_state(run_dir)
    learner_log = (run_dir / "logs" / "learner.log").read_text(errors="replace")
    dupes = learner_log.count("already in the buffer, ignored")
    assert state is not None
    twice = len(state["seen"]) - len(set(state["seen"])) + len(state["active"]) - len(set(state["active"]))
    # Samples counted into the training set can be at most every sample of every episode the learner has seen once
    # (an episode taken twice, by topic and by backfill or a re-send, would count its samples twice).
    demos = EpisodeLog(run_dir / "demos")
    available = 0
    for eid in state["seen"]:
        src = log if eid in entries else demos
        if eid in src.entries() and src.entries()[eid].status in (STATUS_COMPLETE, STATUS_ACKED):
            available += len(training_samples(src.read(eid), HORIZON))
    received = int(state["pacer"]["received"])  # samples counted in, over every restart (the UTD denominator)
    record("faults", f"{label}: episodes in the learner's buffer twice", twice, expected=0, ok=twice == 0)
    record(
        "faults",
        f"{label}: samples in the learner's training set",
        received,
        expected=f"<= {available} (each seen episode once)",
        ok=received <= available,
    )
    record("faults", f"{label}: re-sent episodes the learner ignored (deduplicated)", dupes)
    assert twice == 0 and set(state["active"]) <= set(state["seen"])
    assert received <= available, f"{received} samples counted, only {available} in the episodes seen"
    for i, r in enumerate(r for r in ledger.rows if r["node"] == "learner"):
        lost = sorted(set(r["finished_before_restart"]) - set(state["seen"]))
        ok = r["resumed_step"] == r["ckpt_step_at_kill"]
        record(
            "faults",
            f"{label}: learner kill {i + 1}: resumed from its last checkpoint (step)",
            r["resumed_step"],
            expected=r["ckpt_step_at_kill"],
            ok=ok,
        )
        record("faults", f"{label}: learner kill {i + 1}: episodes lost to it", len(lost), expected=0, ok=not lost)
        assert ok, r
        assert not lost, f"finished before the learner's restart but not in its buffer: {lost}"
    steps = metric_steps(run_dir)
    resumed = [r["resumed_step"] for r in ledger.rows if r["node"] == "learner"]
    for n in resumed:  # after each restart, training went on at the checkpoint's next step
        assert n + 1 in steps or n == max(steps, default=0), f"no step {n + 1} after resuming at {n}"

    # The arbiter and the policy.
    for i, r in enumerate(r for r in ledger.rows if r["node"] == "policy"):
        record(
            "faults",
            f"{label}: policy kill {i + 1}: control periods from its last action to hold",
            r["gap_steps"],
            expected="<= 2",
            ok=r["hold_ok"],
            detail=f"{r['policy_steps_after_kill']} planned policy steps ran after the kill; "
            f"kill -> other authority {r['kill_to_other_s']} s (wall)",
        )
        record(
            "faults",
            f"{label}: policy kill {i + 1}: planned policy steps run after it died",
            r["policy_steps_after_kill"],
            expected=f"<= {3 * K_AUTO}",
            ok=r["policy_steps_after_kill"] <= 3 * K_AUTO,
            detail="the current chunk, one pending (a chunk in flight may replace it), and what the observer lags",
        )
        record(
            "faults",
            f"{label}: policy kill {i + 1}: restarted on the current weights (version)",
            r["version_after"],
            expected=f">= {r['version_before']}",
            ok=r["version_after"] >= r["version_before"],
            detail=f"{r['stale_chunks']} chunk(s) on the initial weights before the swap",
        )
        assert r["hold_ok"], r
        assert r["policy_steps_after_kill"] <= 3 * K_AUTO, r
        assert r["version_after"] >= r["version_before"], r


def run_rounds(tmp_path, order, seed, after_each=1, final=2) -> None:
    opts = FaultRunOptions(robot="tora_one", run_dir=str(tmp_path / "run"), demos=2, seed=seed, overrides=OVERRIDES)
    ledger = Ledger()
    run = FaultRun(opts)
    with run:
        run.wait_verdicts(1)
        for name in order:
            KILLERS[name](run, ledger)
            run.wait_verdicts(run.verdicts() + after_each)
        run.wait_verdicts(run.verdicts() + final - after_each)
        last = max([r["resumed_step"] for r in ledger.rows if r["node"] == "learner"], default=-1)
        run.wait(lambda: (ckpt_state(run.run_dir) or {}).get("step", -1) > last, 240, "a checkpoint after a restart")
        n = run.verdicts()
    check_run(run, ledger, f"round x{len(order)}")
    record("faults", f"round x{len(order)}: loop went on after the restarts", n, expected=">= 1 + kills")


@pytest.mark.timeout(600)
def test_kill_policy_and_learner_then_loop_goes_on(tmp_path):
    run_rounds(tmp_path, ["policy", "learner"], seed=1, after_each=0, final=2)


@pytest.mark.full
@pytest.mark.timeout(3600)
def test_repeated_kills_of_every_node(tmp_path):
    import random

    rng = random.Random(2)
    order = []
    for _ in range(3):
        names = list(KILLERS)
        rng.shuffle(names)
        order += names
    run_rounds(tmp_path, order, seed=2, after_each=1, final=2)
