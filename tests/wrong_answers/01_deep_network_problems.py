"""Typical wrong answers for chapter 01's graded task.

Each entry redefines the answer function wrongly (a "shortcut" calls the
library's version, which the tests make unavailable); tests/test_assignments.py
checks that the test cell after the answer fails with it.
"""

from functools import partial

_TEMPLATE = '''
def weight_grad_norms(net, X, y):
{reset}    loss = {loss}
    loss.backward()
    norms = {{name: {value}
             for name, module in net.named_modules()
             if isinstance(module, {types})}}
    return {result}
'''

_GOOD = dict(reset="    net.zero_grad(set_to_none=True)\n",
             loss="F.cross_entropy(net(X), y)",
             value="module.weight.grad.norm().item()",
             types="(nn.Linear, nn.Conv2d)", result="norms")


_answer = partial(_TEMPLATE.format, **_GOOD)


WRONG = {
    "ch01_grad_norms": {
        "norm of the weight, not of its gradient":
            _answer(value="module.weight.norm().item()"),
        "gradients not reset (they accumulate)": _answer(reset=""),
        "summed instead of mean cross-entropy":
            _answer(loss="F.cross_entropy(net(X), y, reduction='sum')"),
        "squared norm":
            _answer(value="module.weight.grad.pow(2).sum().item()"),
        "mean absolute gradient":
            _answer(value="module.weight.grad.abs().mean().item()"),
        "output layer first": _answer(result="dict(reversed(norms.items()))"),
        "linear layers only": _answer(types="nn.Linear"),
        "tensors instead of floats":
            _answer(value="module.weight.grad.norm()"),
        "gradient of the bias":
            _answer(value="module.bias.grad.norm().item()"),
        "all parameters, biases included": '''
def weight_grad_norms(net, X, y):
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(X), y).backward()
    return {name: p.grad.norm().item() for name, p in net.named_parameters()}
''',
        "takes an SGD step": '''
def weight_grad_norms(net, X, y):
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(X), y).backward()
    norms = {name: m.weight.grad.norm().item()
             for name, m in net.named_modules()
             if isinstance(m, (nn.Linear, nn.Conv2d))}
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    return norms
''',
        "shortcut: the library's gradient_norms_at_init": '''
def weight_grad_norms(net, X, y):
    return gradient_norms_at_init(net, X, y)
''',
    },
}
