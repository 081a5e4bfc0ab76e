"""memoryd.adapters.embedding."""
