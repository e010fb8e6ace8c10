"""Small random networks for the quantization tests: a chain of layers and a seeded convolution."""
from fixedpoint.nn import Network
from fixedpoint.nn.layers.base import make_layer


def chain(layers, extra=()):
    """The layers connected in order, plus `extra` (source, destination) connections."""
    names = [layer.name for layer in layers]
    return Network(layers, list(zip(names[:-1], names[1:])) + list(extra))


def conv(name, rng, out, inp, k=3, scale=0.4, **kw):
    """A k x k convolution with N(0, scale) weights and N(0, 0.2) bias drawn from `rng`."""
    return make_layer("Convolution2D", name, weights=rng.normal(0, scale, (out, inp, k, k)),
                      bias=rng.normal(0, 0.2, out), **kw)
