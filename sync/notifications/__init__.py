"""Graph change notifications: per-mailbox subscriptions and the endpoints Graph calls."""
