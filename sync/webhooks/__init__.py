"""Receiving Coconut's webhooks (contracts/coconut-webhooks.md)."""
