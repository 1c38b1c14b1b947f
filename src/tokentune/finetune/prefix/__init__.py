"""The prefix method: config (the schema), method (the registered object)."""
