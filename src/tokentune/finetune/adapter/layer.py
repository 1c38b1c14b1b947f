"""The bottleneck adapter and the wrapper that adds its update to a sublayer's output."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

_NON_LINEARITIES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "swish": nn.SiLU,
    "tanh": nn.Tanh,
}


class BottleneckAdapter(nn.Module):
    """up(f(down(x))): the bottleneck MLP whose output AdapterLayer adds to a sublayer's output.

    `up` starts at zero, so a freshly injected adapter adds nothing and training starts from the
    pretrained model's function (Houlsby et al. 2019, near-identity init; AdapterHub's default
    draws `up` as `down`, N(0, 0.02)). `down` keeps a zero bias: a random negative bias can switch
    a ReLU unit off for every token when its input is small, and such a unit never gets a gradient.
    """

    def __init__(self, hidden_size: int, bottleneck: int, non_linearity: str = "relu"):
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = _NON_LINEARITIES[non_linearity]()
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(x)))


class AdapterLayer(nn.Module):
    """Runs `base_layer` and adds the adapter's update to its output h.

    The base layer is the sublayer's last module before the block's residual add (BERT's and
    GPT-2's output dropout); wrapping it (rather than a weight-carrying layer) leaves every
    pretrained weight under its original name. The adapter reads h itself, or, with `residual_arg`
    (AdapterHub's original_ln_before), the stream as the block's add and `norm` would leave it:
    norm(h + residual), the residual taken by `keep_residual`, a forward pre-hook on the module the
    block hands it to (as that module's positional argument `residual_arg`). The block then adds
    and normalizes h + update as it would h.
    """

    def __init__(self, base_layer: nn.Module, adapter: BottleneckAdapter,
                 residual_arg: Optional[int] = None, norm: Optional[nn.Module] = None):
        super().__init__()
        self.base_layer = base_layer
        self.adapter = adapter
        self.residual_arg = residual_arg
        # a plain attribute, not a submodule: the block owns the norm, whose weights keep one name
        self.__dict__["norm"] = norm
        self.residual: Optional[torch.Tensor] = None

    def keep_residual(self, module: nn.Module, args: tuple) -> None:
        self.residual = args[self.residual_arg]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(hidden_states)
        if self.residual_arg is None:
            return out + self.adapter(out)
        stream = out + self.residual
        self.residual = None  # held no longer than the block's forward
        if self.norm is not None:
            stream = self.norm(stream)
        return out + self.adapter(stream)
