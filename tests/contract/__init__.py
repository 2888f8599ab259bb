"""One contract suite per port (`sync.ports`), run on the in-memory adapter and on the real one.

Each test body runs once on `sync.memory` and once on the adapter the service deploys: Table and
Queue Storage on Azurite, `GraphCalendar` through msgraph-sdk against the Graph emulator,
`CoconutApi` against the Coconut emulator. The real half is marked `integration`, so
`make unit` still holds the memory adapters to the contract. Tests share the servers and keep
apart by unique ids (staff ids, item keys, users).
"""
