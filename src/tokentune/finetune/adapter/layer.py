"""The bottleneck adapter and the wrapper that puts it behind a sublayer's output."""
from __future__ import annotations

import torch
from torch import nn

_NON_LINEARITIES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "swish": nn.SiLU,
    "tanh": nn.Tanh,
}


class BottleneckAdapter(nn.Module):
    """h + up(f(down(h))): a residual bottleneck MLP.

    `up` starts at zero, so a freshly injected adapter is exactly the identity and training
    starts from the pretrained model's function (Houlsby et al. 2019, near-identity init).
    `down` keeps a zero bias: a random negative bias can switch a ReLU unit off for every token
    when the sublayer's output is small, and such a unit never gets a gradient.
    """

    def __init__(self, hidden_size: int, bottleneck: int, non_linearity: str = "relu"):
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = _NON_LINEARITIES[non_linearity]()
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.up(self.act(self.down(hidden_states)))


class AdapterLayer(nn.Module):
    """Runs `base_layer`, then the adapter on its output.

    The base layer is the sublayer's output dropout, the last op before the residual add and
    LayerNorm in BERT and GPT-2; wrapping it (rather than a weight-carrying layer) leaves every
    pretrained weight under its original name.
    """

    def __init__(self, base_layer: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.base_layer = base_layer
        self.adapter = adapter

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.base_layer(hidden_states))
