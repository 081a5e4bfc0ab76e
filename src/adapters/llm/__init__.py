"""memoryd.adapters.llm."""
