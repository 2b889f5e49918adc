"""A user's Adam in the protocol of ``crossgrad check --optimizer adam --impl my_adam:step``."""

import numpy as np


def init(params):
    zeros = [np.zeros_like(p) for p in params]
    return {"t": 0, "m": zeros, "v": [z.copy() for z in zeros]}


def step(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    t = state["t"] + 1
    new, ms, vs = [], [], []
    for p, g, m, v in zip(params, grads, state["m"], state["v"], strict=True):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        new.append(p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
        ms.append(m)
        vs.append(v)
    return new, {"t": t, "m": ms, "v": vs}
