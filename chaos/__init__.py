"""The chaos suite: a seeded random workload on the local stack under injected faults and host
crashes, then a check that Exchange and Coconut hold exactly what Coconut's final state requires.

Run `python -m chaos` (see `--help`); `make test` runs a short version (tests/chaos/)."""
