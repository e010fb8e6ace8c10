"""Float networks: the layer library, the `Network` graph, preparation for quantization, files."""
from . import layers
from .io import load_network, save_network
from .network import Network, NetworkError
from .prepare import prepare_network
