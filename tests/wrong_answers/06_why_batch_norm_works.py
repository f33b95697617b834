"""Typical wrong answers for chapter 06's graded tasks.

Each entry redefines an answer function wrongly (a "shortcut" calls the
library's measurements, which the tests make unavailable);
tests/test_assignments.py checks that the test cell after the answer fails
with it.
"""

_CHANGE = '''
def gradient_change(net, X, y, lr, layer):
    import copy
    model = {copy}
    weight = model.get_submodule(layer).weight
    params = list(model.parameters())
    below = {below}
    loss = torch.nn.functional.cross_entropy(model(X), y)
    *grads, G = torch.autograd.grad(loss, below + [weight])
    with torch.no_grad():
        for p, g in zip(below, grads):
            p -= lr * g
    loss = torch.nn.functional.cross_entropy(model(X), y)
    G_after, = torch.autograd.grad(loss, [weight])
    cos = (G * G_after).sum() / (G.norm() * G_after.norm())
    return (G - G_after).norm().item(), cos.item()
'''

_GOOD_CHANGE = dict(copy="copy.deepcopy(net).train()",
                    below="params[:[p is weight for p in params].index(True)]")


def _change(**changes):
    return _CHANGE.format(**{**_GOOD_CHANGE, **changes})


_RANGE = '''
def loss_range(net, X, y, steps):
    import copy
    model = copy.deepcopy(net).train()
    params = list(model.parameters())
    start = [p.detach().clone() for p in params]
    loss = torch.nn.functional.cross_entropy(model(X), y)
    grads = torch.autograd.grad(loss, params)
    losses = {first}
    with torch.no_grad():
        for eta in steps:
            for p, p0, g in zip(params, start, grads):
                p.copy_({moved})
            loss = torch.nn.functional.cross_entropy(model(X), y)
            losses.append(loss.item())
    return {result}
'''

_GOOD_RANGE = dict(first="[loss.item()]", moved="p0 - eta * g",
                   result="max(losses) - min(losses)")


def _range(**changes):
    return _RANGE.format(**{**_GOOD_RANGE, **changes})


WRONG = {
    "ch06_gradient_change": {
        "shortcut: the library's gradient_shift": '''
def gradient_change(net, X, y, lr, layer):
    out = gradient_shift(net, X, y, lr, layer)
    return out["l2"], out["cos"]
''',
        "no step below: G' at the same weights":
            _change(below="params[:0]"),
        "the layer itself takes the step too":
            _change(below="params[:[p is weight for p in params].index(True)"
                          " + 1][:-1] + [weight]"),
        "every parameter steps, also those above":
            _change(below="[p for p in params if p is not weight]"),
        "eval mode: running statistics instead of the batch's":
            _change(copy="copy.deepcopy(net).eval()"),
        "no copy: the net itself is changed":
            _change(copy="net.train()"),
    },
    "ch06_loss_range": {
        "shortcut: the library's landscape_probe": '''
def loss_range(net, X, y, steps):
    return landscape_probe(net, X, y, steps)["loss_range"]
''',
        "leaves out the loss at eta = 0": _range(first="[]"),
        "steps uphill, W + eta g": _range(moved="p0 + eta * g"),
        "steps from the last point, not from W": _range(moved="p - eta * g"),
        "largest loss, not the range": _range(result="max(losses)"),
    },
}
