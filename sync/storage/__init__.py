"""Azure Table and Queue Storage adapters (Azurite locally) for the storage ports: the `items`,
`staffitems` and `staff` tables and the `staff-sync` queue. Table column names live here and
nowhere else."""
