"""`python -m chaos`: run the chaos suite and print its figures; exit 1 on any difference.

`--seeds 1 2 3` runs several seeds one after the other; `--report CHAOS.md` writes their figures
as a Markdown table (what `make chaos` does)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.hosts import host_logs
from chaos.report import write_report
from chaos.run import ChaosConfig, ChaosReport, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds, one after another")
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--outlook-edits", type=int, default=200)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--hosts", type=int, default=2, help="Functions hosts on one storage")
    parser.add_argument(
        "--lost-webhooks", type=float, default=0.05, help="share of webhooks lost for good"
    )
    parser.add_argument(
        "--fault-tail", type=float, default=120.0, help="seconds to settle with the faults on"
    )
    parser.add_argument("--settle", type=float, default=300.0, help="seconds allowed to settle")
    parser.add_argument("--host-log", type=Path, default=Path(".local-data/chaos-host.log"))
    parser.add_argument("--report", type=Path, help="write the figures here (Markdown)")
    args = parser.parse_args(argv)
    args.host_log.parent.mkdir(parents=True, exist_ok=True)
    reports: list[ChaosReport] = []
    for seed in args.seeds or [args.seed]:
        host_log = args.host_log
        if args.seeds:
            host_log = host_log.with_name(f"{host_log.stem}-seed{seed}{host_log.suffix}")
        for path in host_logs(host_log, args.hosts):
            path.write_text("")
        config = ChaosConfig(
            seed=seed,
            changes=args.changes,
            staff=args.staff,
            outlook_edits=args.outlook_edits,
            kills=args.kills,
            hosts=args.hosts,
            lost_webhook_rate=args.lost_webhooks,
            fault_tail_seconds=args.fault_tail,
            settle_seconds=args.settle,
            host_log=host_log,
        )
        report = run_chaos(config)
        reports.append(report)
        _print(report)
        if args.report is not None:
            write_report(args.report, reports)
    return 0 if all(report.ok for report in reports) else 1


def _print(report: ChaosReport) -> None:
    for line in report.lines():
        print(line)
    if report.ok:
        print("OK: every calendar and Coconut hold exactly the final state")
        return
    for label, items in (
        ("missing", report.verdict.missing),
        ("duplicate", report.verdict.duplicates),
        ("unexpected", report.verdict.unexpected),
        ("stale", report.verdict.stale),
    ):
        for item in items[:20]:
            print(f"  {label}: {item}")
    for busy in report.verdict.busy[:20]:
        print(f"  {busy.line()}")
    for line in report.diagnosis:
        print(line)
    print("FAILED: the calendars, Coconut or the statuses differ from the final state")


if __name__ == "__main__":
    sys.exit(main())
