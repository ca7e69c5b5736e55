"""Soak (full runs only): the simulated loop for a long time (HIORS_SOAK_S seconds, an hour by default) with the RSS
and the open file descriptors (/proc/<pid>/fd) of every node process sampled throughout. After warm-up both stay
flat within a tolerance; the learner's RSS may grow only with the samples it holds (its buffer keeps every accepted
episode's frames by design), so it is checked against that."""

from __future__ import annotations

import os
import time

import pytest
from rel_support import record

from hiors_bench.reliability import FaultRun, FaultRunOptions, growth, process_sample

pytestmark = [pytest.mark.e2e, pytest.mark.full]
SOAK_S = float(os.environ.get("HIORS_SOAK_S", "3600"))
SAMPLE_EVERY_S = max(5.0, SOAK_S / 200)
RSS_TOLERANCE = 64 * 2**20
FD_TOLERANCE = 8
SAMPLE_BYTES = 2 * 224 * 224 * 3 + 1024  # one buffered training sample: two camera frames and the rest


@pytest.mark.timeout(int(SOAK_S) + 1200)
def test_soak_rss_and_file_handles_stay_flat(tmp_path):
    opts = FaultRunOptions(robot="tora_one", run_dir=str(tmp_path / "run"), demos=2, seed=3)
    series: dict[str, list[dict]] = {}
    buffer_samples: list[int] = []
    with FaultRun(opts) as run:
        run.wait_verdicts(1)
        end = time.monotonic() + SOAK_S
        while time.monotonic() < end:
            for name, pid in run.pids().items():
                try:
                    series.setdefault(name, []).append(process_sample(pid))
                except Exception:  # a process that just exited: the next wait reports it
                    pass
            st = run.watch.status
            buffer_samples.append(int(st.buffer_samples) if st is not None else 0)
            nxt = time.monotonic() + SAMPLE_EVERY_S
            run.wait(lambda n=nxt: time.monotonic() >= n, SAMPLE_EVERY_S + 60, "the next sample")  # checks for deaths
        episodes = run.verdicts()
    record("soak", "duration (s)", int(SOAK_S), detail=f"{episodes} episodes, {len(buffer_samples)} samples per node")
    failures = []
    for name, samples in sorted(series.items()):
        base, rss_growth = growth([s["rss"] for s in samples])
        _, fd_growth = growth([s["fds"] for s in samples])
        allowed = RSS_TOLERANCE
        if name == "learner":
            _, more = growth(buffer_samples)
            allowed += max(0, more) * SAMPLE_BYTES * 2
        ok_rss, ok_fd = rss_growth <= allowed, fd_growth <= FD_TOLERANCE
        record(
            "soak",
            f"{name}: RSS growth after warm-up (MiB)",
            round(rss_growth / 2**20, 1),
            expected=f"<= {allowed / 2**20:.0f}",
            ok=ok_rss,
            detail=f"{base / 2**20:.0f} MiB after warm-up",
        )
        record("soak", f"{name}: open files growth", fd_growth, expected=f"<= {FD_TOLERANCE}", ok=ok_fd)
        if not (ok_rss and ok_fd):
            failures.append(
                f"{name}: RSS +{rss_growth / 2**20:.1f} MiB (allowed {allowed / 2**20:.0f}), fds +{fd_growth}"
            )
    assert episodes > 1
    assert not failures, failures
