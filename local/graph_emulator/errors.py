"""Graph's error responses: `{"error": {"code", "message", "innerError"}}` with the HTTP status."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class GraphError(Exception):
    """An error answered the way Graph answers it. Messages never carry personal data."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        return error_body(self.code, self.message, request_id)


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id or str(uuid.uuid4()),
                "client-request-id": request_id or str(uuid.uuid4()),
            },
        }
    }


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def invalid_body(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def user_not_found() -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        "Resource does not exist or one of its queried reference-property objects are not present.",
    )


def invalid_user() -> GraphError:
    return GraphError(404, "ErrorInvalidUser", "The requested user is invalid.")


def throttled(retry_after: float, message: str) -> GraphError:
    return GraphError(
        429, "ApplicationThrottled", message, {"Retry-After": format_retry_after(retry_after)}
    )


def format_retry_after(seconds: float) -> str:
    # Graph sends whole seconds for Outlook; keep fractions only when configured that way.
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0")


# What a mailbox endpoint answers for a user whose mailbox Graph cannot serve (on-premises in a
# hybrid tenant, unlicensed, inactive, soft-deleted): microsoft-graph-docs issues 5888, 6305.
MAILBOX_ERRORS = {
    "MailboxNotEnabledForRESTAPI": (
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
    ),
    "ResourceNotFound": "Resource could not be discovered.",
}


def mailbox_unavailable(code: str) -> GraphError:
    return GraphError(404, code, MAILBOX_ERRORS[code])


def access_denied() -> GraphError:
    # The mailbox is outside the app's Exchange RBAC scope (application-rbac).
    return GraphError(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def invalid_token() -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
        {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def internal_server_error() -> GraphError:
    return GraphError(
        500,
        "ErrorInternalServerError",
        "An internal server error occurred. The operation failed.",
    )


def duplicate_transaction() -> GraphError:
    # The wording real tenants answer with (alcionai/corso#2490).
    return GraphError(
        400,
        "ErrorDuplicateTransactionId",
        "Your request can't be completed. The TransactionId specified in the request has "
        "already been used to create a different event.",
    )
