"""Float networks: the layer library, the `Network` graph, preparation for quantization, files."""
from . import layers
from .network import Network, NetworkError
