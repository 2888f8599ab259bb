"""Cold start: importing `function_app` in a fresh interpreter, and that process's peak RSS.

Each run is a new `python -c` with the required app settings set (loopback values; nothing is
contacted at import). `python -X importtime` names the slowest imports.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys

from benchmarks.plan import Plan
from benchmarks.report import Figure, Section, number
from local.azurite import REPO_ROOT, Azurite
from sync.content_cipher import new_data_key

TARGET_SECONDS = 1.5
TARGET_RSS_MB = 150

PROBE = """
import json, resource, time
started = time.perf_counter()
import function_app
seconds = time.perf_counter() - started
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "rss_mb": rss_kib / 1024}))
"""

SETTINGS = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0",
    "GRAPH_AUTH": "none",
    "COCONUT_API_BASE_URL": "http://127.0.0.1:9/api/v2",
    "COCONUT_API_KEY": "cold-start-key",
    "COCONUT_WEBHOOK_SECRET": "cold-start-secret",
    "SYNC_DATA_KEY": new_data_key(),
}


async def _python(*args: str) -> tuple[str, str]:
    environment = {**os.environ, **SETTINGS, "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=REPO_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"importing function_app failed: {err.decode()[-500:]}")
    return out.decode(), err.decode()


def slowest_imports(importtime: str, count: int = 6) -> list[tuple[str, float]]:
    """The modules `function_app` imports directly, slowest first (cumulative seconds), from
    `-X importtime` output (children are indented two spaces below their parent)."""
    found: list[tuple[str, float]] = []
    for line in importtime.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2].rstrip()
        if name.startswith("   ") and not name.startswith("    "):
            found.append((name.strip(), int(parts[1]) / 1e6))
    return sorted(found, key=lambda item: -item[1])[:count]


async def measure(azurite: Azurite, plan: Plan) -> Section:
    runs = []
    for _ in range(plan.cold_start_runs):
        out, _ = await _python("-c", PROBE)
        runs.append(json.loads(out.strip().splitlines()[-1]))
    _, importtime = await _python("-X", "importtime", "-c", "import function_app")
    seconds = statistics.median(r["seconds"] for r in runs)
    rss = max(r["rss_mb"] for r in runs)
    section = Section(
        "cold_start",
        "Cold start",
        method=__doc__ or "",
        figures=[
            Figure(
                f"import function_app (median of {len(runs)})",
                seconds,
                "s",
                f"≤ {TARGET_SECONDS:g} s",
                seconds <= TARGET_SECONDS,
            ),
            Figure(
                "peak RSS after the import",
                rss,
                "MB",
                f"≤ {TARGET_RSS_MB} MB",
                rss <= TARGET_RSS_MB,
            ),
        ],
        table_header=("slowest imports of function_app", "cumulative (s)"),
        table_rows=[(name, number(s)) for name, s in slowest_imports(importtime)],
    )
    section.notes.append(
        "runs: " + ", ".join(f"{r['seconds']:.2f} s / {r['rss_mb']:.0f} MB" for r in runs)
    )
    return section
