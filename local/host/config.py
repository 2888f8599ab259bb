"""host.json and local.settings.json, read the way the Functions host reads them."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")


def parse_timespan(value: str) -> float:
    """A .NET TimeSpan ("[d.]hh:mm:ss[.fff]") in seconds."""
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"not a TimeSpan (expected [d.]hh:mm:ss): {value!r}")
    days, hours, minutes, seconds = match.groups()
    return ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with Azure's documented defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: Literal["base64", "none"] = "base64"

    @classmethod
    def from_json(cls, section: dict[str, Any]) -> QueueOptions:
        batch_size = int(section.get("batchSize", 16))
        if not 1 <= batch_size <= 32:
            raise ValueError("host.json extensions.queues.batchSize must be 1..32")
        polling = parse_timespan(str(section.get("maxPollingInterval", "00:01:00")))
        encoding = str(section.get("messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise ValueError("host.json extensions.queues.messageEncoding must be base64 or none")
        return cls(
            batch_size=batch_size,
            new_batch_threshold=int(section.get("newBatchThreshold", batch_size // 2)),
            max_dequeue_count=int(section.get("maxDequeueCount", 5)),
            visibility_timeout=parse_timespan(str(section.get("visibilityTimeout", "00:00:00"))),
            max_polling_interval=max(polling, 0.1),
            message_encoding="base64" if encoding == "base64" else "none",
        )


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)

    @classmethod
    def load(cls, script_root: Path) -> HostConfig:
        path = script_root / "host.json"
        if not path.exists():
            return cls()
        document = json.loads(path.read_text(encoding="utf-8"))
        extensions = document.get("extensions", {})
        prefix = str(extensions.get("http", {}).get("routePrefix", "api")).strip("/")
        return cls(route_prefix=prefix, queues=QueueOptions.from_json(extensions.get("queues", {})))


def apply_local_settings(script_root: Path) -> None:
    """Copy `Values` of local.settings.json into the environment where it has no value yet."""
    path = script_root / "local.settings.json"
    if not path.exists():
        return
    values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    for name, value in values.items():
        os.environ.setdefault(name, str(value))


def resolve_app_setting(value: str) -> str:
    """Replace a whole `%NAME%` reference with the app setting, as the host does for bindings."""
    match = re.fullmatch(r"%([^%]+)%", value.strip())
    if match is None:
        return value
    name = match.group(1)
    if name not in os.environ:
        raise KeyError(f"app setting {name} referenced by a binding is not set")
    return os.environ[name]
