"""memoryd.adapters.http."""
