"""Feature input: NC data with a fixed number of features."""
from __future__ import annotations

from .base import register_layer
from .input_normalization import InputLayer


@register_layer
class FeatureInputLayer(InputLayer):
    """`num_features` features per observation; statistics have shape (num_features,) or ()."""

    type_name = "FeatureInput"
    layout = "(N, C)"

    def __init__(self, name, num_features, normalization="none", mean=None, std=None, min=None,
                 max=None):
        if int(num_features) != num_features or num_features < 1:
            raise ValueError(f"feature input layer {name!r}: num_features must be a positive int, "
                             f"got {num_features!r}")
        super().__init__(name, (int(num_features),), normalization, mean, std, min, max)

    @property
    def num_features(self) -> int:
        return self.sample_shape[0]

    def config(self) -> dict:
        return {"num_features": self.num_features, "normalization": self.normalization}
