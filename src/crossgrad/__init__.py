"""crossgrad: know that backpropagation is right.

``crossgrad.reference`` is a textbook NumPy backpropagation for multilayer perceptrons;
``crossgrad.adapters`` runs the same network in PyTorch autograd, JAX and finite differences
and cross-checks them.  Importing crossgrad imports neither torch nor jax.
"""

from importlib.metadata import PackageNotFoundError, version

from . import reference
from .reference import Network, Params, backprop, init_params, sgd_step, train_step

try:
    __version__ = version("crossgrad")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Network",
    "Params",
    "__version__",
    "backprop",
    "init_params",
    "reference",
    "sgd_step",
    "train_step",
]
