"""Backprops written the way third-party code is, for the checker's tests to run on.

None of them knows crossgrad's conventions: ``LayerMLP`` stores ``W`` as ``(in, out)`` with
``z = x W + b`` and ``(1, out)`` biases, like most from-scratch code and most libraries; the
``column_*`` functions use the textbook's column vectors, ``x`` ``(in, batch)``, biases
``(out, 1)``.  Each ``wrap_*`` is the glue a user writes: a few lines that hand crossgrad's
case to the code and return ``(loss, weight_grads, bias_grads)``.  Some carry a planted bug,
named by the function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crossgrad.reference import Network, Params

Array = np.ndarray[Any, Any]


def _relu(z: Array) -> Array:
    return np.maximum(z, 0.0)


def _sigmoid(z: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-z))


class LayerMLP:
    """relu hidden layers, an identity output layer, ``0.5 * Σ (ŷ − y)² / batch``.

    ``relu_at_zero`` is the derivative it takes at an exact 0; ``relu_twice`` squares the
    relu derivative (harmless: it is 0 or 1); ``average_outputs`` divides the loss (only) by
    the number of outputs, as a library that averages over every entry does.
    """

    def __init__(self, weights: list[Array], biases: list[Array]) -> None:
        self.W = weights  # (in, out)
        self.b = biases  # (1, out)

    def forward(self, x: Array) -> Array:
        self.inputs, self.zs = [], []
        a = x
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            self.inputs.append(a)
            z = a @ W + b
            self.zs.append(z)
            a = z if i == len(self.W) - 1 else _relu(z)
        return a

    def loss(self, yhat: Array, y: Array) -> float:
        return float(0.5 * np.sum((yhat - y) ** 2) / y.shape[0])

    def backward(self, yhat: Array, y: Array, relu_at_zero: float = 0.0) -> tuple[list, list]:
        delta = (yhat - y) / y.shape[0]
        dWs: list[Array] = []
        dbs: list[Array] = []
        for i in reversed(range(len(self.W))):
            dWs.insert(0, self.inputs[i].T @ delta)
            dbs.insert(0, delta.sum(axis=0, keepdims=True))
            if i > 0:
                z = self.zs[i - 1]
                d = np.where(z > 0, 1.0, np.where(z == 0, relu_at_zero, 0.0)).astype(z.dtype)
                delta = (delta @ self.W[i].T) * d
        return dWs, dbs


def wrap_layer_mlp(net: Network, params: Params, x: Array, y: Array) -> Any:
    """The glue for ``weights="in_out"``: W arrives ``(in, out)``, b as ``(out,)``."""
    mlp = LayerMLP(list(params.weights), [b.reshape(1, -1) for b in params.biases])
    yhat = mlp.forward(x)
    return (mlp.loss(yhat, y), *mlp.backward(yhat, y))


def wrap_layer_mlp_tie_split(net: Network, params: Params, x: Array, y: Array) -> Any:
    """Takes relu'(0) = 0.5, as a ``maximum`` that splits ties between its arguments does."""
    mlp = LayerMLP(list(params.weights), [b.reshape(1, -1) for b in params.biases])
    yhat = mlp.forward(x)
    return (mlp.loss(yhat, y), *mlp.backward(yhat, y, relu_at_zero=0.5))


def wrap_layer_mlp_loss_over_outputs(net: Network, params: Params, x: Array, y: Array) -> Any:
    """Its loss averages over the outputs too; its gradients are those of ½‖ŷ − y‖²."""
    loss, dWs, dbs = wrap_layer_mlp(net, params, x, y)
    return loss / y.shape[1], dWs, dbs


def wrap_layer_mlp_half_mean(net: Network, params: Params, x: Array, y: Array) -> Any:
    """``0.5 * mean((ŷ − y)**2)`` over samples and outputs, with its own gradients."""
    loss, dWs, dbs = wrap_layer_mlp(net, params, x, y)
    n = y.shape[1]
    return loss / n, [g / n for g in dWs], [g / n for g in dbs]


def wrap_layer_mlp_other_function(net: Network, params: Params, x: Array, y: Array) -> Any:
    """The right loss, and the gradients of some other function (an off-by-something bug)."""
    loss, dWs, dbs = wrap_layer_mlp(net, params, x, y)
    return loss, [2 * g + 0.125 for g in dWs], dbs


def wrap_layer_mlp_transposed(net: Network, params: Params, x: Array, y: Array) -> Any:
    """Glue that transposes ∂L/∂W back to ``(out, in)`` although ``W`` came ``(in, out)``."""
    loss, dWs, dbs = wrap_layer_mlp(net, params, x, y)
    return loss, [g.T for g in dWs], dbs


def column_sigmoid(net: Network, params: Params, x: Array, y: Array, *, twice: bool = False) -> Any:
    """The textbook, in columns: ``z = W a + b``, sigmoid everywhere, ``½‖ŷ − y‖²`` averaged.

    ``twice`` applies the output layer's σ' a second time (the bug)."""
    a, acts = x, [x]
    for W, b in params:
        a = _sigmoid(W @ a + b)
        acts.append(a)
    n = x.shape[1]
    loss = 0.5 * float(np.sum((a - y) ** 2)) / n
    delta = (a - y) * a * (1 - a) / n
    if twice:
        delta = delta * a * (1 - a)
    dWs: list[Array] = [np.empty(0)] * (len(acts) - 1)
    dbs: list[Array] = [np.empty(0)] * (len(acts) - 1)
    for l in reversed(range(len(acts) - 1)):
        dWs[l] = delta @ acts[l].T
        dbs[l] = delta.sum(axis=1, keepdims=True)
        if l > 0:
            s = acts[l]
            delta = (params.weights[l].T @ delta) * s * (1 - s)
    return loss, dWs, dbs


def column_sigmoid_twice(net: Network, params: Params, x: Array, y: Array) -> Any:
    return column_sigmoid(net, params, x, y, twice=True)


def column_sigmoid_bias_per_sample(net: Network, params: Params, x: Array, y: Array) -> Any:
    """The textbook in columns, but the last layer's ∂L/∂b is δ itself, one column per sample
    (the sum over the batch left out)."""
    loss, dWs, dbs = column_sigmoid(net, params, x, y)
    a = x
    for W, b in params:
        a = _sigmoid(W @ a + b)
    dbs[-1] = (a - y) * a * (1 - a) / x.shape[1]
    return loss, dWs, dbs


def leaky_relu_zero_at_kink(net: Network, params: Params, x: Array, y: Array) -> Any:
    """leaky_relu layers and ``half_sse``, in rows and crossgrad's layout, leaky'(0) = 0."""
    a, inputs, zs = x, [], []
    for W, b in params:
        inputs.append(a)
        z = a @ W.T + b
        zs.append(z)
        a = np.where(z > 0, z, z.dtype.type(0.01) * z)
    n = x.shape[0]
    loss = 0.5 * float(np.sum((a - y) ** 2)) / n
    delta = (a - y) / n
    dWs: list[Array] = [np.empty(0)] * len(zs)
    dbs: list[Array] = [np.empty(0)] * len(zs)
    for l in reversed(range(len(zs))):
        slope = np.where(zs[l] > 0, 1.0, np.where(zs[l] == 0, 0.0, 0.01))
        delta = delta * slope.astype(zs[l].dtype)
        dWs[l] = delta.T @ inputs[l]
        dbs[l] = delta.sum(axis=0)
        delta = delta @ params.weights[l]
    return loss, dWs, dbs
