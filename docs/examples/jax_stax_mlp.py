"""A JAX MLP as JAX's own examples build one: ``jax.example_libraries.stax``, Dense layers
(whose ``W`` is ``(in, out)``) between stax's activation layers, and ``jax.grad`` for the
gradients.  Squared-error losses on the output, or stax's ``LogSoftmax`` for cross-entropy."""

import jax
import jax.numpy as jnp
from jax.example_libraries import stax

from crossgrad.testing import Unsupported

ACTIVATIONS = {
    "identity": stax.Identity,
    "sigmoid": stax.Sigmoid,
    "tanh": stax.Tanh,
    "relu": stax.Relu,
    "leaky_relu": stax.LeakyRelu,
    "softplus": stax.Softplus,
    "elu": stax.Elu,
    "gelu": stax.Gelu,
}


def _loss(name, out, y):
    """The per-sample loss of the network's output ``out`` (``(batch, outputs)``)."""
    if name == "half_sse":
        return 0.5 * jnp.sum((out - y) ** 2, axis=1)
    if name == "mse":
        return jnp.mean((out - y) ** 2, axis=1)
    return -jnp.sum(y * out, axis=1)  # softmax_cross_entropy: out is stax.LogSoftmax's


def backprop(net, params, x, y):
    if net.loss == "binary_cross_entropy":
        raise Unsupported("no stax loss for binary_cross_entropy here")
    missing = sorted(set(net.activations) - set(ACTIVATIONS))
    if missing:
        raise Unsupported(f"no stax layer for {', '.join(missing)}")
    layers = []
    for width, activation in zip(net.sizes[1:], net.activations, strict=True):
        layers += [stax.Dense(width), ACTIVATIONS[activation]]
    if net.loss == "softmax_cross_entropy":
        layers.append(stax.LogSoftmax)
    _, apply = stax.serial(*layers)

    def loss(pairs):
        per_sample = _loss(net.loss, apply(pairs, jnp.asarray(x)), jnp.asarray(y))
        return jnp.mean(per_sample) if net.reduction == "mean" else jnp.sum(per_sample)

    pairs = []  # stax's params: (W, b) per Dense layer, () per activation layer
    for W, b in params:
        pairs += [(jnp.asarray(W), jnp.asarray(b)), ()]
    if net.loss == "softmax_cross_entropy":
        pairs.append(())
    value, grads = jax.value_and_grad(loss)(pairs)
    dense = grads[0 : 2 * net.n_layers : 2]
    return value, [W for W, _ in dense], [b for _, b in dense]
