"""Import: a staff member's own Exchange busy time becomes "Busy" external events in Coconut."""
