"""Coconut <-> Microsoft 365 calendar sync: the product code (pure core plus adapters)."""
