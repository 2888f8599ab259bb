"""Coconut in memory: the roster and each staff member's external events (busy blocks)
(`sync.ports.CoconutBusyTime`, `sync.ports.CoconutRoster`)."""

from __future__ import annotations

from typing import Any, Final

from sync.coconut.api import CoconutUser, UnknownCoconutUser
from sync.imports.busy_time import BusyBlock
from sync.memory.faults import Faults

COCONUT: Final = "coconut"


class MemoryCoconut:
    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults or Faults()
        self.users: dict[str, CoconutUser] = {}
        # User id -> external id -> the resource, as Coconut lists it.
        self.blocks: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests = 0

    def add_user(self, user_id: str, email: str, *, calendar_sync: bool = True) -> None:
        self.users[user_id] = CoconutUser(id=user_id, email=email, calendar_sync=calendar_sync)
        self.blocks.setdefault(user_id, {})

    async def roster(self) -> list[CoconutUser]:
        self._request()
        return list(self.users.values())

    async def busy_blocks(self, user_id: str) -> dict[str, dict[str, Any]]:
        self._request()
        return dict(self._held(user_id))

    async def put_busy_block(self, user_id: str, block: BusyBlock) -> bool:
        self._request()
        held = self._held(user_id)
        created = block.external_id not in held
        held[block.external_id] = block.coconut_data()
        return created

    async def delete_busy_block(self, user_id: str, external_id: str) -> None:
        self._request()
        self.blocks.get(user_id, {}).pop(external_id, None)  # 404 counts as done

    def _held(self, user_id: str) -> dict[str, dict[str, Any]]:
        if user_id not in self.users:
            raise UnknownCoconutUser(user_id)
        return self.blocks.setdefault(user_id, {})

    def _request(self) -> None:
        self.requests += 1
        self.faults.check(COCONUT)
