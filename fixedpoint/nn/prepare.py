"""`prepare_network`: make a float network ready for quantization without changing its function
(the counterpart of MATLAB's prepareNetwork).

1. Dropout and identity layers are dropped (they are the identity at inference).
2. A batch normalization directly after a convolution or fully connected layer whose output feeds
   only that batch normalization is folded into it:
   ``g = scale / sqrt(var + eps);  W' = g W (per output channel);  b' = offset + g (b - mean)``.
3. Every other batch normalization becomes an equivalent per-channel scale and shift: a depthwise
   1×1 convolution on NCHW data, a diagonal fully connected layer on NC data.
4. Optionally, cross-layer equalization (Nagel et al. 2019): for two weight layers joined only by
   per-channel positively homogeneous layers (ReLU, leaky ReLU, max or average pooling), output
   channel c of the first is divided by s_c = sqrt(r1_c / r2_c) and the weights of the second that
   read channel c are multiplied by s_c, where r1_c and r2_c are the channels' weight ranges
   (max |w|).
   Both ranges become sqrt(r1_c r2_c); sweeps repeat until the scales settle.

All arithmetic is in float64, rounded once to float32. The result's `origin` maps every layer to the
original layers it stands for.
"""
from __future__ import annotations

import numpy as np

from .layers import (AveragePooling2DLayer, BatchNormalizationLayer, Convolution2DLayer,
                     DropoutLayer, FullyConnectedLayer, IdentityLayer, LeakyReLULayer,
                     MaxPooling2DLayer, ReLULayer)
from .network import Network

WEIGHT_LAYERS = (Convolution2DLayer, FullyConnectedLayer)
HOMOGENEOUS_LAYERS = (ReLULayer, LeakyReLULayer, MaxPooling2DLayer, AveragePooling2DLayer)
EQUALIZATION_SWEEPS = 20
EQUALIZATION_TOLERANCE = 1e-6


def prepare_network(net: Network, *, cross_layer_equalization: bool = False) -> Network:
    """A new, independent network with batch normalization folded or replaced, dropout and
    identity layers removed and, if asked, cross-layer equalization applied."""
    work = net.copy()
    for layer in net.layers:
        if isinstance(layer, (DropoutLayer, IdentityLayer)):
            work = work.remove_layer(layer.name)
    ranks = {name: len(shape) for name, shape in net.shapes(batch_size=1).items()}
    for layer in net.layers:
        if isinstance(layer, BatchNormalizationLayer):
            work = _fold_or_replace(work, work.layer(layer.name), ranks[layer.name])
    if cross_layer_equalization:
        equalize_layers(work)
    return work


def _fold_or_replace(work: Network, bn: BatchNormalizationLayer, rank: int) -> Network:
    source = work.layer(work.layer_inputs(bn.name)[0])
    gain, shift = bn.affine()
    foldable = (isinstance(source, WEIGHT_LAYERS) and work.layer_consumers(source.name) == [bn.name]
                and source.name not in work.output_names)
    if foldable:
        origin = work.origin[source.name] + work.origin[bn.name]
        weights = source.weights.astype(np.float64)
        scaled_weights = weights * gain.reshape((-1,) + (1,) * (weights.ndim - 1))
        bias = shift + gain * source.bias.astype(np.float64)
        folded = type(source).from_config(source.name, source.config(),
                                          {"Weights": scaled_weights, "Bias": bias})
        work = work.replace_layer(source.name, folded).remove_layer(bn.name)
        work.origin[source.name] = origin
        return work
    if rank == 4:
        channels = bn.num_channels
        scale = Convolution2DLayer(bn.name, gain.reshape(channels, 1, 1, 1), shift, groups=channels)
    elif rank == 2:
        scale = FullyConnectedLayer(bn.name, np.diag(gain), shift)
    else:
        return work  # no per-channel weight layer for this rank: kept as it is
    return work.replace_layer(bn.name, scale)


def _equalization_pairs(net: Network) -> list[tuple[str, str]]:
    """(first, second) weight layers joined by a single-consumer chain of homogeneous layers."""
    pairs = []
    for layer in net.layers:
        if not isinstance(layer, WEIGHT_LAYERS):
            continue
        name = layer.name
        while True:
            consumers = net.layer_consumers(name)
            if len(consumers) != 1 or name in net.output_names:
                break
            name = consumers[0]
            following = net.layer(name)
            if isinstance(following, WEIGHT_LAYERS):
                same_kind = isinstance(following, Convolution2DLayer) == isinstance(
                    layer, Convolution2DLayer)
                if same_kind:
                    pairs.append((layer.name, name))
                break
            if not isinstance(following, HOMOGENEOUS_LAYERS):
                break
    return pairs


def _input_channel_ranges(layer) -> np.ndarray:
    """max |w| over the weights reading each input channel."""
    weights = np.abs(layer.weights.astype(np.float64))
    if isinstance(layer, FullyConnectedLayer):
        return weights.max(axis=0)
    groups = layer.groups
    per_group = weights.reshape(groups, -1, *weights.shape[1:])   # (G, Og, Cg, kh, kw)
    return per_group.max(axis=(1, 3, 4)).reshape(-1)


def _scale_input_channels(layer, scales: np.ndarray) -> np.ndarray:
    weights = layer.weights.astype(np.float64)
    if isinstance(layer, FullyConnectedLayer):
        return weights * scales[None, :]
    groups = layer.groups
    shaped = weights.reshape(groups, -1, *weights.shape[1:])
    return (shaped * scales.reshape(groups, 1, -1, 1, 1)).reshape(weights.shape)


def equalize_layers(net: Network) -> list[tuple[str, str]]:
    """Cross-layer equalization in place (see the module docstring); returns the pairs equalized."""
    pairs = _equalization_pairs(net)
    for _ in range(EQUALIZATION_SWEEPS):
        largest_change = 0.0
        for first_name, second_name in pairs:
            first, second = net.layer(first_name), net.layer(second_name)
            w1 = first.weights.astype(np.float64)
            r1 = np.abs(w1).reshape(w1.shape[0], -1).max(axis=1)
            r2 = _input_channel_ranges(second)
            scales = np.ones_like(r1)
            valid = (r1 > 0) & (r2 > 0)
            scales[valid] = np.sqrt(r1[valid] / r2[valid])
            first.learnables["Weights"] = (w1 / scales.reshape((-1,) + (1,) * (w1.ndim - 1))
                                           ).astype(np.float32)
            first.learnables["Bias"] = (first.bias.astype(np.float64) / scales).astype(np.float32)
            second.learnables["Weights"] = _scale_input_channels(second, scales).astype(np.float32)
            largest_change = max(largest_change, float(np.abs(np.log(scales)).max()))
        if largest_change < EQUALIZATION_TOLERANCE:
            break
    return pairs
