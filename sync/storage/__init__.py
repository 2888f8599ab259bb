"""Azure Table and Queue Storage adapters (Azurite locally)."""
