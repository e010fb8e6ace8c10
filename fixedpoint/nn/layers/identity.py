"""Identity: passes its input through unchanged."""
from __future__ import annotations

from .base import Layer, register_layer


@register_layer
class IdentityLayer(Layer):
    type_name = "Identity"

    def forward(self, x):
        return x
