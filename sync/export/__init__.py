"""Export: Coconut appointments and absences written to staff members' Exchange calendars.
`rendering` and `planning` are pure; `calendar_writer` applies a plan through the
`MailboxCalendar` port and keeps the item links."""
