"""Import: a staff member's own Exchange busy time becomes "Busy" external events in Coconut.
`busy_time` is pure; `delta_import` runs the delta rounds through the ports."""
