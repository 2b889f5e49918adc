"""scikit-learn's ``MLPRegressor``, checked through the backprop it trains with.

``MLPRegressor._backprop`` returns the loss and its gradients for the weights
``coefs_`` (``W`` as ``(in, out)``) and ``intercepts_``; ``fit`` hands the pair to L-BFGS or
to its SGD and Adam solvers.  All hidden layers share one activation, the output layer is
the identity, and the loss is the squared error averaged over the batch.  ``alpha=0``
leaves out the L2 penalty, which crossgrad's losses do not have.
"""

import numpy as np
from sklearn.neural_network import MLPRegressor

from crossgrad.testing import Unsupported

ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


def backprop(net, params, x, y):
    """The glue: with weights="in_out", W arrives as (in, out), as ``coefs_`` holds it."""
    hidden = set(net.activations[:-1])
    if len(hidden) > 1:
        raise Unsupported("one activation for every hidden layer")
    if not hidden <= ACTIVATIONS.keys():
        raise Unsupported(f"no {hidden.pop()} in scikit-learn")
    if net.activations[-1] != "identity":
        raise Unsupported("an identity output layer")
    model = MLPRegressor(
        hidden_layer_sizes=net.sizes[1:-1],
        activation=ACTIVATIONS[hidden.pop() if hidden else "relu"],
        alpha=0.0,
    )
    model._random_state = np.random.RandomState(0)  # what fit sets before _initialize
    model._initialize(y, list(net.sizes), x.dtype)
    model.coefs_ = [np.array(W) for W in params.weights]
    model.intercepts_ = [np.array(b) for b in params.biases]
    activations = [x] + [None] * net.n_layers
    deltas = [None] * net.n_layers
    weight_grads = [np.empty_like(W) for W in model.coefs_]
    bias_grads = [np.empty_like(b) for b in model.intercepts_]
    return model._backprop(x, y, None, activations, deltas, weight_grads, bias_grads)
