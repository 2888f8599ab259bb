"""Names of the storage queues and tables the service uses.

Kept in one place because the Bicep templates (infra/) create the same queues and tables, and a
structural test checks that the two agree.
"""

from typing import Final

# One queue carries all per-staff work: "bring staff member X's calendar and busy time in step".
STAFF_SYNC_QUEUE: Final = "staff-sync"
STAFF_SYNC_POISON_QUEUE: Final = f"{STAFF_SYNC_QUEUE}-poison"

# Desired state of each Coconut appointment/absence; the highest revision wins.
# (PartitionKey = item key.)
ITEMS_TABLE: Final = "items"
# Per staff member: which items they should have and the Graph event each one maps to
# (PartitionKey = staff id, so one reconcile reads one partition).
STAFF_ITEMS_TABLE: Final = "staffitems"
# Per staff member: mailbox, time zone, lease, delta link, subscription, status.
STAFF_TABLE: Final = "staff"

QUEUES: Final = (STAFF_SYNC_QUEUE, STAFF_SYNC_POISON_QUEUE)
# Busy blocks need no table of their own: their Coconut ids derive from the Graph event ids.
TABLES: Final = (ITEMS_TABLE, STAFF_ITEMS_TABLE, STAFF_TABLE)
