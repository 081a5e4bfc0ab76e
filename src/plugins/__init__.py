"""memoryd.plugins."""
