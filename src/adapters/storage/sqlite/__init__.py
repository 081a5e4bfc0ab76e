"""memoryd.adapters.storage.sqlite."""
