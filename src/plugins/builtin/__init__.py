"""memoryd.plugins.builtin."""
