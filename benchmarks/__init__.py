"""Benchmarks of the sync service on the local stack: `python -m benchmarks [--quick]` runs every
measurement and writes BENCHMARKS.md (generated, never edited by hand)."""
