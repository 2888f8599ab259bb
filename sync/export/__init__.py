"""Export: Coconut appointments and absences written to staff members' Exchange calendars."""
