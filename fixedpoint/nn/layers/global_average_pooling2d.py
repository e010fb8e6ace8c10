"""Global average pooling: (N, C, H, W) -> (N, C, 1, 1), the mean over H and W."""
from __future__ import annotations

from .base import register_layer
from .global_pooling import GlobalPooling2DLayer


@register_layer
class GlobalAveragePooling2DLayer(GlobalPooling2DLayer):
    type_name = "GlobalAveragePooling2D"
    mode = "average"
