"""A PyTorch MLP as users write it: tanh hidden layers, a sigmoid output, and nn.BCELoss's
function on the probabilities (``bce``), or on the logits (``bce_with_logits``); autograd
gives the gradients.  ``W`` is ``(out, in)``, as crossgrad's and torch's ``nn.Linear``'s."""

import torch
import torch.nn.functional as F  # noqa: N812 (torch's own idiom)


def _backprop(net, params, x, y, on_logits):
    weights = [torch.tensor(W, requires_grad=True) for W in params.weights]
    biases = [torch.tensor(b, requires_grad=True) for b in params.biases]
    a = torch.tensor(x)
    for l, (W, b) in enumerate(zip(weights, biases, strict=True)):
        z = a @ W.T + b
        a = z if l == len(weights) - 1 else torch.tanh(z)
    target = torch.tensor(y)
    if on_logits:
        terms = F.binary_cross_entropy_with_logits(a, target, reduction="none")
    else:
        terms = F.binary_cross_entropy(torch.sigmoid(a), target, reduction="none")
    loss = terms.mean(dim=1).mean()  # crossgrad's binary_cross_entropy: mean over outputs
    loss.backward()
    return loss.item(), [W.grad.numpy() for W in weights], [b.grad.numpy() for b in biases]


def bce(net, params, x, y):
    return _backprop(net, params, x, y, on_logits=False)


def bce_with_logits(net, params, x, y):
    return _backprop(net, params, x, y, on_logits=True)
