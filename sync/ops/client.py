"""A small client for the ops HTTP API (used by the command line and the demo). It signs in with
the `auth` it is given (sync/ops/signin.py); the local host needs none."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT: Final = httpx.Timeout(60.0, connect=5.0)


# App Service Authentication refuses a bad token itself, without the API's JSON.
PLATFORM_REFUSALS: Final = {
    401: (
        "unauthenticated",
        "the app did not accept the sign-in: no token, an expired one, or one for another "
        "audience (check SYNC_OPS_AUDIENCE)",
    ),
    403: ("forbidden", "the app refused the signed-in caller"),
}


class OpsRefused(Exception):
    """The API answered with an error document (`{"error", "code"}`)."""

    def __init__(
        self, status: int, code: str, message: str, document: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message
        self.document = document or {}


def parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class OpsClient:
    """`OpsClient("https://func-x.azurewebsites.net", auth)`; the `api/ops` routes below it."""

    def __init__(
        self,
        app_url: str,
        auth: httpx.Auth | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._http = httpx.Client(
            base_url=app_url.rstrip("/") + "/api/ops",
            auth=auth,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def staff(self, status: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/staff", params={"status": status} if status else None)

    def detail(self, staff_id: str) -> dict[str, Any]:
        return self._call("GET", f"/staff/{_segment(staff_id)}")

    def command(self, staff_id: str, command: str) -> dict[str, Any]:
        return self._call("POST", f"/staff/{_segment(staff_id)}/{_segment(command)}")

    def resync(self, staff_ids: list[str] | None = None) -> dict[str, Any]:
        body = {"all": True} if staff_ids is None else {"staff_ids": staff_ids}
        return self._call("POST", "/resync", json=body)

    def poison(self) -> dict[str, Any]:
        return self._call("GET", "/poison")

    def replay(self, staff_id: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/poison/replay", json={"staff_id": staff_id} if staff_id else {})

    def rotate_data_key(self) -> dict[str, Any]:
        return self._call("POST", "/data-key/rotate")

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = self._http.request(method, path, params=params, json=json)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_error or not isinstance(body, dict):
            document = body if isinstance(body, dict) else {}
            code, message = PLATFORM_REFUSALS.get(
                response.status_code, ("http_error", response.reason_phrase or "no answer")
            )
            raise OpsRefused(
                response.status_code,
                str(document.get("code") or code),
                str(document.get("error") or message),
                document,
            )
        return body


def _segment(value: str) -> str:
    return quote(value, safe="")
