"""Bottleneck adapters, shaped like a peft tuner: config, layer (the module), model (injection).

peft has no bottleneck adapter (peft #244) and AdapterHub pins an older transformers.
"""
from .config import AdapterConfig
from .layer import AdapterLayer, BottleneckAdapter
from .model import bottleneck_size, inject_adapters

__all__ = ["AdapterConfig", "AdapterLayer", "BottleneckAdapter", "bottleneck_size", "inject_adapters"]
