"""The full method: config (the schema), method (the registered object)."""
