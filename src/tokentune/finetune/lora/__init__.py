"""The lora method: config (the schema), method (the registered object)."""
