"""`python -m chaos`: run the chaos suite and print its figures; exit 1 on any difference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chaos.run import ChaosConfig, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--outlook-edits", type=int, default=200)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--settle", type=float, default=300.0, help="seconds allowed to settle")
    parser.add_argument("--host-log", type=Path, default=Path(".local-data/chaos-host.log"))
    args = parser.parse_args(argv)
    args.host_log.parent.mkdir(parents=True, exist_ok=True)
    args.host_log.write_text("")
    config = ChaosConfig(
        seed=args.seed,
        changes=args.changes,
        staff=args.staff,
        outlook_edits=args.outlook_edits,
        kills=args.kills,
        settle_seconds=args.settle,
        host_log=args.host_log,
    )
    report = run_chaos(config)
    for line in report.lines():
        print(line)
    if not report.verdict.ok or report.undelivered:
        for label, items in (
            ("missing", report.verdict.missing),
            ("duplicate", report.verdict.duplicates),
            ("unexpected", report.verdict.unexpected),
            ("stale", report.verdict.stale),
        ):
            for item in items[:20]:
                print(f"  {label}: {item}")
        print("FAILED: the calendars or Coconut differ from the final state")
        return 1
    print("OK: every calendar and Coconut hold exactly the final state")
    return 0


if __name__ == "__main__":
    sys.exit(main())
