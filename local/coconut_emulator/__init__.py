"""Local stand-in for Coconut: the API the sync service calls, and the webhooks Coconut sends.

`CoconutEmulator` serves contracts/coconut-api.md on loopback; `local.coconut_emulator.webhooks`
builds, signs and delivers the payloads of contracts/coconut-webhooks.md.
"""

from local.coconut_emulator.faults import FaultPlan
from local.coconut_emulator.server import DEFAULT_API_KEY, BackgroundServer, CoconutEmulator
from local.coconut_emulator.state import RequestKey, StaffUser

__all__ = [
    "DEFAULT_API_KEY",
    "BackgroundServer",
    "CoconutEmulator",
    "FaultPlan",
    "RequestKey",
    "StaffUser",
]
