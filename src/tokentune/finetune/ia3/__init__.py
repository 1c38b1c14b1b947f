"""The ia3 method: config (the schema), method (the registered object), model (peft)."""
