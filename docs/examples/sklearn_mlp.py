"""scikit-learn's ``MLPRegressor`` and ``MLPClassifier``, checked through the backprop they
train with.

``_backprop`` returns the loss and its gradients for the weights ``coefs_`` (``W`` as
``(in, out)``) and ``intercepts_``; ``fit`` hands the pair to L-BFGS or to its SGD and Adam
solvers.  All hidden layers share one activation.  The regressor's output layer is the
identity, with the squared error averaged over the batch; the classifier's, for targets in
``[0, 1]`` per output, is the logistic, with the binary log loss.  ``alpha=0`` leaves out the
L2 penalty, which crossgrad's losses do not have.
"""

import types

import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from crossgrad.testing import Unsupported

ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


def backprop(net, params, x, y):
    """The regressor.  With weights="in_out", W arrives as (in, out), as ``coefs_`` holds it."""
    if net.activations[-1] != "identity":
        raise Unsupported("an identity output layer")
    return _backprop(MLPRegressor, net, params, x, y)


def classifier_backprop(net, params, x, y):
    """The classifier, its targets taken as independent labels (a logistic output layer)."""
    return _backprop(MLPClassifier, net, params, x, y)


def _backprop(kind, net, params, x, y):
    hidden = set(net.activations[:-1])
    if len(hidden) > 1:
        raise Unsupported("one activation for every hidden layer")
    if not hidden <= ACTIVATIONS.keys():
        raise Unsupported(f"no {hidden.pop()} in scikit-learn")
    model = kind(
        hidden_layer_sizes=net.sizes[1:-1],
        activation=ACTIVATIONS[hidden.pop() if hidden else "relu"],
        alpha=0.0,
    )
    # What fit sets before _initialize: the random state, and for a classifier the kind of
    # targets (independent labels: a logistic output layer and the binary log loss).
    model._random_state = np.random.RandomState(0)
    model._label_binarizer = types.SimpleNamespace(y_type_="multilabel-indicator")
    model._initialize(y, list(net.sizes), x.dtype)
    model.coefs_ = [np.array(W) for W in params.weights]
    model.intercepts_ = [np.array(b) for b in params.biases]
    activations = [x] + [None] * net.n_layers
    deltas = [None] * net.n_layers
    weight_grads = [np.empty_like(W) for W in model.coefs_]
    bias_grads = [np.empty_like(b) for b in model.intercepts_]
    return model._backprop(x, y, None, activations, deltas, weight_grads, bias_grads)
