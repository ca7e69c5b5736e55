"""The driver `hiors bench reliability` calls: runs the suite, collects every test's counts into one table and CSV."""

import csv
import json
import os

from hiors_bench import reliability
from hiors_bench.reliability import FACTS_ENV, run_reliability, table_lines


def test_run_reliability_collects_the_counts_into_a_table_and_csv(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_pytest(cmd, env, cwd):  # what the suite's tests do: append their rows to the facts file
        calls.append(cmd)
        with open(env[FACTS_ENV], "a") as f:
            f.write(json.dumps({"section": "access", "check": "c1", "count": 8, "expected": 8, "ok": True}) + "\n")
            f.write(json.dumps({"section": "faults", "check": "c2", "count": 1, "expected": 0, "ok": False}) + "\n")
        return 0

    monkeypatch.setattr(reliability.subprocess, "call", fake_pytest)
    rc = run_reliability(tmp_path, full=False, tests=("test_rel_access.py",))
    out = capsys.readouterr().out
    assert rc == 1  # pytest passed, but a check did not hold
    assert calls[0][calls[0].index("-m", 3) + 1] == "not full" and calls[0][3].endswith(
        os.path.join("reliability", "test_rel_access.py")
    )
    with open(tmp_path / "reliability.csv") as f:
        table = list(csv.DictReader(f))
    assert [(r["section"], r["check"], r["count"], r["ok"]) for r in table] == [
        ("access", "c1", "8", "True"),
        ("faults", "c2", "1", "False"),
    ]
    assert "=== reliability ===" in out and "2 checks, 1 failed" in out
    run_reliability(tmp_path, full=True)
    assert calls[1][calls[1].index("-m", 3) + 1] == "full or not full" and calls[1][3].endswith("reliability")


def test_table_marks_what_did_not_hold():
    rows = [
        {"section": "fuzz", "check": "unsafe commands", "count": 0, "expected": 0, "ok": True},
        {"section": "faults", "check": "bags left open", "count": 1, "expected": 0, "ok": False},
    ]
    lines = table_lines(rows)
    assert lines[2].startswith("faults") and lines[2].endswith("NO") and lines[3].endswith("yes")
