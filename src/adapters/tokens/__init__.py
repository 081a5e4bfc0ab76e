"""memoryd.adapters.tokens."""
