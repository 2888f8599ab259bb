"""What an ops request can be refused for. Each error knows its HTTP status and a stable code;
messages name staff by Coconut id only."""

from __future__ import annotations


class OpsError(Exception):
    status = 400
    code = "bad_input"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(OpsError):
    """The request itself is malformed (unknown status, invalid body)."""


class UnknownStaff(OpsError):
    status = 404
    code = "unknown_staff"

    def __init__(self, staff_id: str) -> None:
        super().__init__(f"no staff member {staff_id!r} is known to the sync")
        self.staff_id = staff_id


class UnknownCommand(OpsError):
    status = 404
    code = "unknown_command"


class StaffLeased(OpsError):
    """A worker holds the staff member's lease right now; the change would race with it."""

    status = 409
    code = "leased"

    def __init__(self, staff_id: str, retry_after: float) -> None:
        super().__init__(
            f"staff member {staff_id!r} is being synced right now; "
            f"try again in a few seconds ({retry_after:.0f} s)"
        )
        self.retry_after = retry_after


class WrongState(OpsError):
    """The command does not apply to the staff member as they are (e.g. resync when
    disconnected)."""

    status = 409
    code = "wrong_state"
