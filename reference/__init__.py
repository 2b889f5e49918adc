"""crossgrad's reference: backpropagation for multilayer perceptrons in plain NumPy.

The truth every other backend is measured against.  Parameters are plain data, the network is
an immutable description, and every function is pure::

    from crossgrad import reference

    net = reference.Network((4, 3, 2), activation="sigmoid", loss="half_sse")
    params = reference.init_params(net, seed=0)
    out = reference.backprop(net, params, x, y)     # x: (batch, 4), y: (batch, 2)
    new = reference.sgd_step(params, out.grads, lr=0.1)

Read it top to bottom: ``activations`` (each ``f`` beside its ``f'``), ``losses`` (each loss
beside its gradient), ``network`` (``Network``, ``Params``, ``init_params``), ``validation``
(the checks at the public boundary) and ``backpropagation`` (the forward loop, the backward
loop and the SGD step); ``worked_example`` holds the document the project started from.
"""

from . import activations, backpropagation, losses, network, optimizers, validation, worked_example
from .activations import ACTIVATIONS, Activation
from .backpropagation import BackpropResult, backprop, forward, loss, predict, sgd_step, train_step
from .losses import LOSSES, REDUCTIONS, Loss
from .network import Network, Params, init_params
from .training import Trajectory, train
from .validation import check_inputs, check_lr

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "REDUCTIONS",
    "Activation",
    "BackpropResult",
    "Loss",
    "Network",
    "Params",
    "Trajectory",
    "activations",
    "backprop",
    "backpropagation",
    "check_inputs",
    "check_lr",
    "forward",
    "init_params",
    "loss",
    "losses",
    "network",
    "optimizers",
    "predict",
    "sgd_step",
    "train",
    "train_step",
    "validation",
    "worked_example",
]
