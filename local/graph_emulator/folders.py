"""The folders of one mailbox that hold events: its calendars and Deleted Items.

Every mailbox starts with the default calendar ("Calendar") and "Birthdays", as Exchange Online
creates them; tests add more. Deleted Items is a mail folder, not a calendar: `/calendars` does not
list it, but deleted events live there and keep their (immutable) ids.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from local.graph_emulator.errors import GraphError, item_not_found
from local.graph_emulator.model import User, new_change_key

DELETED_ITEMS = "deleteditems"  # Graph's well-known folder name, lower-cased


def new_folder_id() -> str:
    # Shaped like Exchange folder ids (base64, ending in the folder-id marker).
    return "AAMkAG" + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode() + "AAA="


@dataclass
class Folder:
    id: str
    name: str
    is_calendar: bool = True
    is_default: bool = False
    change_key: str = field(default_factory=new_change_key)

    def to_graph(self, owner: User) -> dict[str, Any]:
        """A calendar as `/calendars/{id}` answers it (Deleted Items answers in the same shape
        when a client expands an event's calendar)."""
        return {
            "@odata.etag": f'W/"{self.change_key}"',
            "id": self.id,
            "name": self.name,
            "color": "auto",
            "hexColor": "",
            "isDefaultCalendar": self.is_default,
            "changeKey": self.change_key,
            "canShare": self.is_calendar,
            "canViewPrivateItems": True,
            "canEdit": True,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "isTallyingResponses": self.is_calendar,
            "isRemovable": self.is_calendar and not self.is_default,
            "owner": {"name": owner.display_name, "address": owner.mail or ""},
        }

    def to_control(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "isCalendar": self.is_calendar,
            "isDefaultCalendar": self.is_default,
        }


class MailboxFolders:
    """The calendars (default first) and the Deleted Items folder of one mailbox."""

    def __init__(self) -> None:
        self.primary = Folder(new_folder_id(), "Calendar", is_default=True)
        self.deleted_items = Folder(new_folder_id(), "Deleted Items", is_calendar=False)
        self._calendars = [self.primary, Folder(new_folder_id(), "Birthdays")]

    def calendars(self) -> list[Folder]:
        return list(self._calendars)

    def add_calendar(self, name: str) -> Folder:
        if not name.strip():
            raise ValueError("a calendar needs a name")
        if any(c.name.lower() == name.strip().lower() for c in self._calendars):
            raise GraphError(
                409, "ErrorFolderExists", "A folder with the specified name already exists."
            )
        folder = Folder(new_folder_id(), name.strip())
        self._calendars.append(folder)
        return folder

    def find(self, key: str) -> Folder | None:
        """By id, by name (case-insensitive), or Deleted Items by its well-known name."""
        lowered = key.lower()
        if lowered == DELETED_ITEMS or key == self.deleted_items.id:
            return self.deleted_items
        for folder in self._calendars:
            if folder.id == key or folder.name.lower() == lowered:
                return folder
        return None

    def by_id(self, folder_id: str) -> Folder:
        if folder_id == self.deleted_items.id:
            return self.deleted_items
        for folder in self._calendars:
            if folder.id == folder_id:
                return folder
        raise KeyError(folder_id)

    def calendar(self, calendar_id: str) -> Folder:
        """A calendar addressed by id in a Graph URL; anything else is not found."""
        for folder in self._calendars:
            if folder.id == calendar_id:
                return folder
        raise item_not_found()
