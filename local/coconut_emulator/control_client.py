"""The control API from another process: for the CLI, and as the record a `WebhookSender` keeps in
step when the emulator runs elsewhere (`python -m local.coconut_emulator serve`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from local.coconut_emulator.paths import encode_segment


class ControlError(Exception):
    """The control API refused; the message holds its status and fixed-text details only."""

    def __init__(self, status: int, details: tuple[str, ...]) -> None:
        super().__init__(f"the emulator answered {status}: {'; '.join(details) or 'no detail'}")
        self.status = status
        self.details = details


class ControlClient:
    def __init__(
        self,
        url: str = "http://127.0.0.1:8082",
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`url` is the emulator's root (no `/_emulator`, no API base path)."""
        self._client = httpx.Client(
            base_url=f"{url.rstrip('/')}/_emulator", timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- roster -----------------------------------------------------------------------------

    def set_calendar_sync(self, user_id: str, enabled: bool) -> dict[str, Any]:
        path = f"/users/{encode_segment(user_id)}"
        return self._json("PATCH", path, {"calendar_sync": enabled})

    def external_events(self, user_id: str) -> dict[str, Any]:
        path = f"/users/{encode_segment(user_id)}/external-events"
        events: dict[str, Any] = self._json("GET", path)["external_events"]
        return events

    # --- Coconut's record -------------------------------------------------------------------

    def appointments(self, user_id: str) -> list[dict[str, Any]]:
        path = f"/users/{encode_segment(user_id)}/appointments"
        items: list[dict[str, Any]] = self._json("GET", path)["appointments"]
        return items

    def unavailabilities(self, user_id: str) -> list[dict[str, Any]]:
        path = f"/users/{encode_segment(user_id)}/unavailabilities"
        items: list[dict[str, Any]] = self._json("GET", path)["unavailabilities"]
        return items

    def book(self, draft: Mapping[str, Any]) -> dict[str, Any]:
        """Create an appointment without a webhook; the envelope Coconut would have sent."""
        return self._json("POST", "/appointments", draft)

    def update_appointment(self, appointment_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", f"/appointments/{encode_segment(appointment_id)}", changes)

    def delete_appointment(self, appointment_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/appointments/{encode_segment(appointment_id)}")

    def record_absence(self, draft: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/unavailabilities", draft)

    def change_absence(self, absence_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._json("PATCH", f"/unavailabilities/{encode_segment(absence_id)}", changes)

    def delete_absence(self, absence_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/unavailabilities/{encode_segment(absence_id)}")

    def apply(self, envelope: Mapping[str, Any]) -> bool:
        """Record what an envelope says (`EnvelopeRecord`); True when it changed the record."""
        return bool(self._json("POST", "/envelopes", envelope)["recorded"])

    def _json(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self._client.request(method, path, json=body)
        if not response.is_success:
            raise ControlError(response.status_code, _details(response))
        document: dict[str, Any] = response.json()
        return document


def _details(response: httpx.Response) -> tuple[str, ...]:
    try:
        errors = response.json().get("errors", [])
    except (ValueError, AttributeError):
        return ()
    details: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        source = error.get("source") or {}
        where = source.get("pointer", source.get("parameter")) if isinstance(source, dict) else None
        detail = str(error.get("detail", ""))
        details.append(f"{where}: {detail}" if where else detail)
    return tuple(details)
