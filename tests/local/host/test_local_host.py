"""The local host runs a function app like the Functions host: HTTP, timers, queues, poison."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from local.azurite import REPO_ROOT, Azurite
from local.host.principal import DEFAULT_ROLES, LocalPrincipal
from local.host_process import HostProcess, process_tree
from sync.content_cipher import new_data_key

pytestmark = pytest.mark.integration

SAMPLE_APP = Path(__file__).parent / "sample_app"
REQUIRED = {
    "COCONUT_API_BASE_URL": "http://127.0.0.1:9/api/v2",
    "COCONUT_API_KEY": "test-key",
    "COCONUT_WEBHOOK_SECRET": "test-secret",
    "GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0",
    "GRAPH_AUTH": "none",
    "SYNC_DATA_KEY": new_data_key(),
}


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sample") / "events.jsonl"


@pytest.fixture(scope="module")
def host(
    azurite: Azurite, events_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostProcess]:
    env = {
        **REQUIRED,
        "AzureWebJobsStorage": azurite.connection_string,
        "SAMPLE_EVENTS_FILE": str(events_file),
        "SAMPLE_TIMER": "*/2 * * * * *",
    }
    # With a log file, not a pipe: HostProcess never reads nor closes its stderr pipe.
    log = tmp_path_factory.mktemp("host") / "host.log"
    process = HostProcess(env=env, script_root=SAMPLE_APP, log_path=log).start()
    yield process
    assert process.stop() == 0, "the host stops cleanly on SIGTERM"


def read_events(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def what_ran(path: Path) -> list[dict[str, object]]:
    """The events, without the process that ran each."""
    return [{k: v for k, v in event.items() if k != "pid"} for event in read_events(path)]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def queue(azurite: Azurite, name: str) -> QueueClient:
    client = QueueClient.from_connection_string(azurite.connection_string, name)
    with contextlib.suppress(ResourceExistsError):  # the host may have made it already
        client.create_queue()
    return client


def send_base64(client: QueueClient, text: str) -> None:
    client.send_message(base64.b64encode(text.encode()).decode())


def test_health_answers_once_triggers_run(host: HostProcess) -> None:
    response = httpx.get(f"{host.base_url}/api/health")
    assert response.status_code == 200


def test_http_route_answers_with_route_and_query_parameters(host: HostProcess) -> None:
    response = httpx.get(f"{host.base_url}/api/hello/world", params={"q": "x"})
    assert response.status_code == 200
    assert response.json() == {"hello": "world", "q": "x"}


def test_async_http_function_gets_the_raw_body(host: HostProcess) -> None:
    body = bytes(range(256))
    response = httpx.post(f"{host.base_url}/api/echo", content=body)
    assert response.status_code == 201
    assert response.content == body


def test_a_function_gets_the_invocations_trace_context_as_from_the_worker(
    host: HostProcess,
) -> None:
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    first = httpx.get(f"{host.base_url}/api/context", headers={"traceparent": caller}).json()
    # The host's invocation span: a child of the caller's, in the caller's trace.
    assert first["function_name"] == "invocation"
    version, trace_id, span_id, flags = first["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert span_id != "00f067aa0ba902b7"
    # Without one, each invocation starts a trace of its own.
    second = httpx.get(f"{host.base_url}/api/context").json()["traceparent"]
    third = httpx.get(f"{host.base_url}/api/context").json()["traceparent"]
    assert second.split("-")[1] != third.split("-")[1]


def test_unknown_route_and_wrong_method(host: HostProcess) -> None:
    assert httpx.get(f"{host.base_url}/api/nowhere").status_code == 404
    assert httpx.delete(f"{host.base_url}/api/hello/world").status_code == 405


def test_the_host_signs_callers_in_as_app_service_authentication_would(
    host: HostProcess,
) -> None:
    forged = LocalPrincipal(("Sync.Operate",), object_id="11111111-1111-4111-8111-111111111111")
    seen = httpx.get(
        f"{host.base_url}/api/whoami",
        headers={**forged.headers(), "X-MS-TOKEN-AAD-ACCESS-TOKEN": "forged"},
    ).json()
    # The default principal (LOCAL_PRINCIPAL_ROLES unset), never the caller's own headers.
    assert seen["headers"] == LocalPrincipal(DEFAULT_ROLES).headers()
    assert seen["authentication"] == "True"


def test_with_no_principal_a_callers_identity_headers_are_dropped(
    azurite: Azurite, events_file: Path
) -> None:
    env = {
        **REQUIRED,
        "AzureWebJobsStorage": azurite.connection_string,
        "SAMPLE_EVENTS_FILE": str(events_file),
        "SAMPLE_TIMER": "0 0 0 1 1 *",
        "LOCAL_PRINCIPAL_ROLES": "none",
    }
    with HostProcess(env=env, script_root=SAMPLE_APP) as anonymous:
        forged = LocalPrincipal(DEFAULT_ROLES).headers()
        seen = httpx.get(f"{anonymous.base_url}/api/whoami", headers=forged).json()
    assert seen == {"headers": {}, "authentication": "True"}


def test_timer_fires_on_a_seconds_schedule(host: HostProcess, events_file: Path) -> None:
    def ticks() -> int:
        return sum(1 for e in read_events(events_file) if e["function"] == "tick")

    before = ticks()
    wait_until(lambda: ticks() >= before + 2, timeout=10)


def test_queue_message_is_processed_and_output_binding_written(
    host: HostProcess, azurite: Azurite, events_file: Path
) -> None:
    send_base64(queue(azurite, "work"), "hello")
    done = queue(azurite, "done")
    received: list[str] = []

    def arrived() -> bool:
        received.extend(base64.b64decode(m.content).decode() for m in done.receive_messages())
        return "done:hello" in received

    wait_until(arrived)
    processed = [e for e in what_ran(events_file) if e.get("body") == "hello"]
    assert processed == [{"function": "work", "body": "hello", "dequeue_count": 1}]
    assert queue(azurite, "work").peek_messages() == []


def test_failing_message_goes_to_poison_after_max_dequeue_count(
    host: HostProcess, azurite: Azurite, events_file: Path
) -> None:
    send_base64(queue(azurite, "work"), "fail")
    poison = queue(azurite, "work-poison")
    wait_until(lambda: len(poison.peek_messages()) == 1)
    attempts = [e["dequeue_count"] for e in read_events(events_file) if e.get("body") == "fail"]
    assert attempts == [1, 2, 3], "maxDequeueCount (3) attempts, each seeing its dequeue count"
    [message] = poison.peek_messages()
    assert base64.b64decode(message.content).decode() == "fail"
    # Not retried forever: no further attempt once it is in the poison queue.
    time.sleep(1.5)
    attempts_after = [e for e in read_events(events_file) if e.get("body") == "fail"]
    assert len(attempts_after) == 3
    assert queue(azurite, "work").peek_messages() == []


# --- processes: HTTP apart from the timer and queue triggers, as Flex Consumption scales them ---


def test_http_functions_and_triggers_run_in_processes_of_their_own(
    host: HostProcess, events_file: Path
) -> None:
    served_by = httpx.get(f"{host.base_url}/api/context").json()["pid"]
    wait_until(lambda: any(e["function"] == "tick" for e in read_events(events_file)))
    ticked_in = {e["pid"] for e in read_events(events_file) if e["function"] == "tick"}

    assert served_by == host.pid
    [timer_process] = ticked_in
    assert timer_process != host.pid, "timers run in the other process"
    assert timer_process in process_tree(host.pid or 0)


@pytest.fixture
def own_host(azurite: Azurite, tmp_path: Path) -> Iterator[HostProcess]:
    env = {
        **REQUIRED,
        "AzureWebJobsStorage": azurite.connection_string,
        "SAMPLE_EVENTS_FILE": str(tmp_path / "events.jsonl"),
        "SAMPLE_TIMER": "0 0 0 1 1 *",
    }
    process = HostProcess(env=env, script_root=SAMPLE_APP, log_path=tmp_path / "host.log")
    yield process.start()
    process.stop()


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_a_killed_host_takes_its_trigger_process_with_it(own_host: HostProcess) -> None:
    processes = process_tree(own_host.pid or 0)
    assert len(processes) == 2

    own_host.kill()

    wait_until(lambda: _gone(processes), timeout=5)


def test_a_stopped_host_stops_its_trigger_process_too(own_host: HostProcess) -> None:
    processes = process_tree(own_host.pid or 0)

    assert own_host.stop() == 0

    wait_until(lambda: _gone(processes), timeout=5)


def test_a_trigger_process_that_dies_takes_the_host_down(own_host: HostProcess) -> None:
    host_pid = own_host.pid or 0
    [trigger_process] = [pid for pid in process_tree(host_pid) if pid != host_pid]

    os.kill(trigger_process, signal.SIGKILL)

    wait_until(lambda: _gone([host_pid]) or _zombie(host_pid), timeout=10)
    assert own_host.stop() == 1, "a host that lost its triggers exits with an error"


def _zombie(pid: int) -> bool:
    """Exited, not yet reaped by the test (its parent)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


def test_bad_setting_stops_start_up_naming_the_setting(azurite: Azurite, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    env.update({k: v for k, v in REQUIRED.items() if k != "COCONUT_API_KEY"})
    env.update(
        {
            "AzureWebJobsStorage": azurite.connection_string,
            "SAMPLE_EVENTS_FILE": str(tmp_path / "e"),
            "SAMPLE_TIMER": "*/2 * * * * *",
            "GRAPH_AUTH": "carrier-pigeon",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.pop("COCONUT_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "local.host", "--port", "0", "--script-root", str(SAMPLE_APP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SAMPLE_APP,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "GRAPH_AUTH" in lines[0] or "COCONUT_API_KEY" in lines[0]


def test_invalid_timer_schedule_stops_start_up(azurite: Azurite, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **REQUIRED,
        "AzureWebJobsStorage": azurite.connection_string,
        "SAMPLE_EVENTS_FILE": str(tmp_path / "e"),
        "SAMPLE_TIMER": "every five minutes",
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "local.host", "--port", "0", "--script-root", str(SAMPLE_APP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SAMPLE_APP,
    )
    assert result.returncode != 0
    assert "schedule" in result.stderr
