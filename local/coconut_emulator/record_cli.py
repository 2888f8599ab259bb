"""`python -m local.coconut_emulator record ...`: change Coconut's record in a running emulator
without sending a webhook (standing for a lost one), through the control API.

Prints one line per change (kind, id, revision), never the item's content.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from local.coconut_emulator.control_client import ControlClient


def add_record_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `record` and its changes to the CLI's subcommands; `common` carries `--url`."""
    record = commands.add_parser("record", help="change Coconut's record without a webhook")
    changes = record.add_subparsers(dest="change", required=True)

    book = changes.add_parser("book", parents=[common], help="create an appointment")
    book.add_argument("--staff", action="append", required=True, help="user id; repeatable")
    _period(book, required=True)
    book.add_argument("--service-id", default="S-1")
    book.add_argument("--service-name", default="Appointment")
    book.add_argument("--meeting-method", type=int, default=1, help="1 at a location, 2 phone, …")
    book.add_argument("--location-id")
    book.add_argument("--location-name", default="Branch")
    book.add_argument("--location-address", default="")
    book.add_argument("--notes")
    book.add_argument("--timezone")
    book.add_argument("--id", dest="item_id")

    reschedule = changes.add_parser("reschedule", parents=[common], help="move an appointment")
    reschedule.add_argument("item_id", metavar="appointment_id")
    _period(reschedule, required=True)

    reassign = changes.add_parser("reassign", parents=[common], help="give it to other staff")
    reassign.add_argument("item_id", metavar="appointment_id")
    reassign.add_argument("--staff", action="append", required=True, help="user id; repeatable")

    for name, text in (("cancel", "cancel an appointment"), ("delete", "delete an appointment")):
        command = changes.add_parser(name, parents=[common], help=text)
        command.add_argument("item_id", metavar="appointment_id")

    absence = changes.add_parser("absence", parents=[common], help="create an absence")
    absence.add_argument("--staff", required=True, help="user id")
    _period(absence, required=True)
    absence.add_argument("--title", default="Vacation")
    absence.add_argument("--all-day", action="store_true")
    absence.add_argument("--timezone")
    absence.add_argument("--id", dest="item_id")

    change = changes.add_parser("change-absence", parents=[common], help="change an absence")
    change.add_argument("item_id", metavar="absence_id")
    _period(change, required=False)
    change.add_argument("--title")
    change.add_argument("--all-day", action=argparse.BooleanOptionalAction, default=None)

    delete = changes.add_parser("delete-absence", parents=[common], help="delete an absence")
    delete.add_argument("item_id", metavar="absence_id")


def _period(parser: argparse.ArgumentParser, *, required: bool) -> None:
    when = "RFC 3339; without an offset, wall-clock time in the item's zone"
    parser.add_argument("--start", required=required, help=when)
    parser.add_argument("--end", required=required, help=when)


def run_record_change(args: argparse.Namespace, control: ControlClient, console: Console) -> int:
    envelope = _change(args, control)
    data = envelope["data"]
    console.print(
        f"{envelope['type']} {data['id']} revision {data['attributes']['revision']}: "
        "in the record, no webhook sent"
    )
    return 0


def _change(args: argparse.Namespace, control: ControlClient) -> dict[str, Any]:
    change: str = args.change
    if change == "book":
        draft: dict[str, Any] = {
            "staff": args.staff,
            "start": args.start,
            "end": args.end,
            "service": {"id": args.service_id, "name": args.service_name},
            "meeting_method": args.meeting_method,
            "notes": args.notes,
            "timezone": args.timezone,
            "id": args.item_id,
        }
        if args.location_id is not None:
            draft["location"] = {
                "id": args.location_id,
                "name": args.location_name,
                "address": args.location_address,
            }
        return control.book(draft)
    if change == "reschedule":
        return control.update_appointment(args.item_id, {"start": args.start, "end": args.end})
    if change == "reassign":
        return control.update_appointment(args.item_id, {"staff": args.staff})
    if change == "cancel":
        return control.update_appointment(args.item_id, {"status": "cancelled"})
    if change == "delete":
        return control.delete_appointment(args.item_id)
    if change == "absence":
        return control.record_absence(
            {
                "staff": args.staff,
                "start": args.start,
                "end": args.end,
                "title": args.title,
                "all_day": args.all_day,
                "timezone": args.timezone,
                "id": args.item_id,
            }
        )
    if change == "change-absence":
        given = {
            "title": args.title,
            "start": args.start,
            "end": args.end,
            "all_day": args.all_day,
        }
        return control.change_absence(
            args.item_id, {key: value for key, value in given.items() if value is not None}
        )
    return control.delete_absence(args.item_id)
