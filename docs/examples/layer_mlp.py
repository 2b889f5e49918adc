"""A from-scratch NumPy MLP as third-party code writes it, and the glue that checks it.

``W`` is ``(in, out)``, ``z = x W + b`` with ``(1, out)`` biases, relu hidden layers and an
identity output layer, loss ``0.5 * Σ (ŷ − y)² / batch``.
"""

import numpy as np


class MLP:
    def __init__(self, weights, biases):
        self.W, self.b = weights, biases

    def forward(self, x):
        self.inputs, self.zs = [], []
        a = x
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            self.inputs.append(a)
            z = a @ W + b
            self.zs.append(z)
            a = z if i == len(self.W) - 1 else np.maximum(z, 0)
        return a

    def loss(self, yhat, y):
        return 0.5 * np.sum((yhat - y) ** 2) / len(y)

    def backward(self, yhat, y):
        delta = (yhat - y) / len(y)
        dWs, dbs = [], []
        for i in reversed(range(len(self.W))):
            dWs.insert(0, self.inputs[i].T @ delta)
            dbs.insert(0, delta.sum(axis=0, keepdims=True))
            if i > 0:
                delta = (delta @ self.W[i].T) * (self.zs[i - 1] > 0)
        return dWs, dbs


def backprop(net, params, x, y):
    """The glue: with weights="in_out", W arrives as (in, out), and so do the gradients."""
    mlp = MLP(list(params.weights), [b.reshape(1, -1) for b in params.biases])
    yhat = mlp.forward(x)
    dWs, dbs = mlp.backward(yhat, y)
    return mlp.loss(yhat, y), dWs, dbs


def backprop_mean_loss(net, params, x, y):
    """A library whose loss averages over the outputs too: np.mean((ŷ − y) ** 2) / 2."""
    mlp = MLP(list(params.weights), [b.reshape(1, -1) for b in params.biases])
    yhat = mlp.forward(x)
    dWs, dbs = mlp.backward(yhat, y)
    return 0.5 * np.mean((yhat - y) ** 2), dWs, dbs
