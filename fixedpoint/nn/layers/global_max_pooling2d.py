"""Global max pooling: (N, C, H, W) -> (N, C, 1, 1), the maximum over H and W."""
from __future__ import annotations

from .base import register_layer
from .global_pooling import GlobalPooling2DLayer


@register_layer
class GlobalMaxPooling2DLayer(GlobalPooling2DLayer):
    type_name = "GlobalMaxPooling2D"
    mode = "max"
