"""`hiors up`'s summary (hiors_bringup.report): the count of failed episodes the operator never stepped into."""

from __future__ import annotations

from hiors_bringup.report import summary_lines, unattended_failures


def test_summary_counts_failures_without_intervention(tmp_path):
    (tmp_path / "episodes.csv").write_text(
        "index,episode_id,return,success,accepted,reason,threshold,human_share,interventions\n"
        "1,a,1.0,1,1,ok,0.5,0.0,0\n"  # success on its own
        "2,b,0.0,0,0,low,0.5,0.0,0\n"  # failed, nobody stepped in
        "3,c,0.0,0,0,low,0.5,0.3,1\n"  # failed after a takeover
        "4,d,0.0,0,0,low,0.5,0.0,0\n"
    )
    lines = summary_lines(tmp_path)
    assert "failed without any intervention: 2/3 failed episodes" in lines
    assert unattended_failures([{"success": "0"}]) == 0  # an older run's rows without the column
