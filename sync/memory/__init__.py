"""In-memory adapters for every port (`sync.ports`), behaving like the real ones where it
matters: ETag compare-and-swap with conflicts, `transactionId` idempotency, lost answers, 429
with `Retry-After`, and a process crash. The worker runs on them unchanged: unit tests and the
state-machine test (`tests/sync/test_worker_machine.py`) use them, and the contract suite
(`tests/contract/`) holds them to what the Azure, Graph and Coconut adapters do.
"""
