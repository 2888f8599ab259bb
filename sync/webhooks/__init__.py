"""Receiving Coconut's webhooks (contracts/coconut-webhooks.md): signature, checks in the
contract's order, recording the desired state, asking for the staff syncs."""
