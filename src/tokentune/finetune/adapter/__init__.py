"""Bottleneck adapters, shaped like a peft tuner: config, layer (the module), model (injection),
and method (the registered object).

peft has no bottleneck adapter (peft #244) and AdapterHub pins an older transformers. Import-light:
the layer and the injection (torch) are imported from their modules.
"""
