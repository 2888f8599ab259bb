"""The short chaos run of the test command: a seeded workload with duplicated, reordered,
concurrent and lost-for-good deliveries over two hosts (each killed once), Outlook edits
(including edits, deletions and moves of the service's own events), Graph 429s/503s/lost
answers/slow answers, Coconut 429s/5xx, a staff member without a Microsoft 365 user, one whose
mailbox Graph cannot serve, and an event Graph keeps failing on. It must end with every calendar
and Coconut holding exactly the final state, and statuses naming each cause. `python -m chaos`
runs the full size."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.run import ChaosConfig, run_chaos

pytestmark = pytest.mark.integration


def test_short_chaos_run_converges_exactly(tmp_path: Path) -> None:
    config = ChaosConfig(
        seed=7,
        changes=150,
        staff=6,
        outlook_edits=40,
        kills=2,
        hosts=2,
        reconcile_seconds=15,
        settle_seconds=150,
        fault_tail_seconds=90,
        host_log=tmp_path / "host.log",
    )
    report = run_chaos(config)
    summary = "\n".join(report.lines() + report.diagnosis)
    print(summary)
    assert report.undelivered == 0, "Coconut gave up on a delivery"
    assert report.kills == [1, 0], "each host killed once"
    assert report.lost_webhooks > 0
    assert report.failing is not None, "Graph never failed on an event"
    assert report.verdict.expected_events > 0
    verdict = report.verdict
    differences = (verdict.missing, verdict.duplicates, verdict.unexpected, verdict.stale)
    assert differences == ([], [], [], []), summary
    assert (verdict.missing_busy, verdict.extra_busy) == (0, 0), summary
    assert [s.cause for s in report.statuses] == [
        "Graph fails on one event",
        "mailbox not enabled",
        "no Microsoft 365 user",
    ]
    assert [s.line() for s in report.statuses if not s.ok] == [], summary
