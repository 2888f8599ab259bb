"""Coconut, the appointment-scheduling system: what it sends us and how we read it."""
