"""`python -m benchmarks [--quick] [--output BENCHMARKS.md] [--only NAME ...]`: run every
measurement, print the figures, and write the report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from benchmarks import (
    backlog_drain,
    burst,
    cold_start,
    graph_writes,
    history,
    import_latency,
    onboarding,
    quiet_cycle,
    scale_out,
    timer_fanout,
    webhook_latency,
)
from benchmarks.machine import Machine, reference_loop_seconds
from benchmarks.plan import FULL, QUICK, Plan
from benchmarks.report import Section, console_lines, render
from local.azurite import REPO_ROOT, Azurite

Measurement = Callable[[Azurite, Plan], Awaitable[Section]]

# Cold start first, on a machine not yet busy with the stack.
MEASUREMENTS: dict[str, Measurement] = {
    "cold_start": cold_start.measure,
    "webhooks": webhook_latency.measure,
    "graph_writes": graph_writes.measure,
    "import": import_latency.measure,
    "quiet_cycle": quiet_cycle.measure,
    "backlog": backlog_drain.measure,
    "burst": burst.measure,
    "history": history.measure,
    "onboarding": onboarding.measure,
    "scale_out": scale_out.measure,
    "fanout": timer_fanout.measure,
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small samples (about a minute)")
    parser.add_argument(
        "--output", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="report to write"
    )
    parser.add_argument(
        "--only", nargs="+", choices=sorted(MEASUREMENTS), help="run only these measurements"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the Functions hosts' logs here")
    return parser.parse_args(argv)


def _commands(args: argparse.Namespace) -> list[str]:
    command = ".venv/bin/python -m benchmarks" + (" --quick" if args.quick else "")
    if args.only:
        command += " --only " + " ".join(args.only)
    return ["make bench", command]


async def _run_one(name: str, measurement: Measurement, azurite: Azurite, plan: Plan) -> Section:
    started = time.monotonic()
    try:
        # A hung host must not hang the run: the section then says so.
        section = await asyncio.wait_for(measurement(azurite, plan), timeout=plan.time_limit)
    except TimeoutError:
        section = Section(name, name.replace("_", " "), failed=f"not done in {plan.time_limit:g} s")
    except Exception as error:  # one broken measurement must not lose the others' figures
        traceback.print_exc()
        section = Section(name, name.replace("_", " "), failed=f"{type(error).__name__}: {error}")
    section.seconds = time.monotonic() - started
    section.reference_after = reference_loop_seconds()
    return section


async def run(args: argparse.Namespace) -> list[Section]:
    plan = replace(QUICK if args.quick else FULL, log_dir=args.log_dir)
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    chosen = {n: m for n, m in MEASUREMENTS.items() if not args.only or n in args.only}
    sections = []
    azurite = Azurite().start()
    try:
        for name, measurement in chosen.items():
            print(f"-- {name} ...", flush=True)
            section = await _run_one(name, measurement, azurite, plan)
            print("\n".join(console_lines(section)), flush=True)
            sections.append(section)
    finally:
        azurite.stop()
    return sections


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    machine = Machine.current()
    sections = asyncio.run(run(args))
    args.output.write_text(
        render(sections, machine, _commands(args), quick=args.quick), encoding="utf-8"
    )
    print(f"wrote {args.output} in {time.monotonic() - started:.0f} s", flush=True)
    return 1 if any(section.failed for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
