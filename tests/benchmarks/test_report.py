"""The benchmark command runs end to end (quick version) and writes a complete report.

Checks the report's shape — every section there, each with measured numbers — not whether the
numbers meet their targets (a quick run on a busy CI machine proves nothing about those).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from local.azurite import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.benchmark]

SECTIONS = (
    "Cold start",
    "Webhook 202 → event visible in Graph",
    "Graph writes per change",
    "Exchange change → Coconut busy time",
    "Quiet timer cycles",
    "Backlog drain under throttling",
    "Timer fan-out for",
)
MEASURED = re.compile(r"^\| [^|]+ \| -?\d+(\.\d+)?( (s|MB|%))? \|", re.MULTILINE)


def _sections(report: str) -> dict[str, str]:
    parts = re.split(r"^## ", report, flags=re.MULTILINE)[1:]
    return {part.splitlines()[0]: part for part in parts}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    output = tmp_path_factory.mktemp("bench") / "BENCHMARKS.md"
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return output.read_text(encoding="utf-8"), finished.stdout


def test_every_measurement_has_a_section_with_measured_numbers(
    quick_report: tuple[str, str],
) -> None:
    report, _ = quick_report
    sections = _sections(report)
    for title in SECTIONS:
        [body] = [text for heading, text in sections.items() if heading.startswith(title)]
        assert "measurement failed" not in body
        assert MEASURED.search(body), f"no measured figure in section {title!r}"
        # The machine's speed as the section ended: a run on a machine that slowed down shows.
        assert re.search(r"reference loop right after: \d+ ms\._$", body, re.MULTILINE), title


def test_report_states_the_machine_the_commands_and_targets(
    quick_report: tuple[str, str],
) -> None:
    report, _ = quick_report
    machine = _sections(report)["Machine"]
    for row in ("CPUs available", "memory", "Python", "OS"):
        assert re.search(rf"^\| {row} \| \S", machine, re.MULTILINE), row
    assert re.search(r"^\| reference Python loop .* \| \d+ ms \|", machine, re.MULTILINE)
    assert "python -m benchmarks --quick" in _sections(report)["Commands"]
    summary = _sections(report)["Summary"]
    for target in ("≤ 2 s at 10/s", "1.0", "≤ 5 s", "≤ 1.5 s", "≤ 150 MB", "≤ 10 s", "≥ 90%"):
        assert target in summary, target
    assert "5 min on average, up to 60 min" in summary


def test_figures_are_printed_as_well(quick_report: tuple[str, str]) -> None:
    _, printed = quick_report
    for title in SECTIONS:
        assert f"== {title}" in printed, title
    assert re.search(r"Graph writes per effective change: \d", printed)
    assert re.search(r"import function_app \(median of \d+\): \d", printed)
