"""Coconut, the appointment-scheduling system: its webhook payloads (`webhook_models`) and the
client of its API (`api`: roster, listings, busy blocks), with Coconut's failures mapped into
the service's error vocabulary."""
